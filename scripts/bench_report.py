"""Benchmark of the report page on a long run: how long ``nlp-cv-tricks report RUN_DIR`` takes for a history of
``--steps`` logged steps (a train row every step, a dev evaluation with per-class scores every ``--eval-every``
steps, gradient norms of six layer groups), with the curves downsampled (the default 2,000 points per curve)
and without downsampling, side by side in one process.

    python scripts/bench_report.py [--steps 100000] [--eval-every 1000] [--rounds 3] [--json out.json]

The history is synthetic (a decaying loss with noise, a saturating accuracy); what is measured is reading it,
the doctor, drawing every figure and writing the page. matplotlib is imported once before timing. Prints a
markdown table (wall and CPU time: on a shared machine the CPU time is the steadier number).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_run(run: Path, steps: int, eval_every: int, seed: int = 0) -> int:
    """A run directory with ``history.jsonl`` (returns its size in bytes), ``recipe.yaml`` and ``metrics.json``."""
    import random

    import yaml

    rng = random.Random(seed)
    groups = ["embeddings", "encoder.layer.0", "encoder.layer.1", "encoder.layer.2", "pooler", "classifier"]
    run.mkdir(parents=True, exist_ok=True)
    best, best_step = -1.0, None
    with open(run / "history.jsonl", "w", encoding="utf-8") as f:
        for s in range(1, steps + 1):
            t = s / steps
            row = {"step": s, "epoch": round(3 * t, 4), "train/loss": (0.6 * math.exp(-4 * t) + 0.1)
                   * (1 + 0.1 * rng.gauss(0, 1)), "train/lr": 5e-5 * (1 - t), "train/grad_norm": 1 + 0.2 * rng.random()}
            row.update({f"train/grad_norm/{g}": (0.05 + 0.1 * i) * (1 + 0.2 * rng.random())
                        for i, g in enumerate(groups)})
            f.write(json.dumps(row) + "\n")
            if s % eval_every == 0:
                acc = 0.9 - 0.2 * math.exp(-5 * t) + 0.003 * rng.gauss(0, 1)
                if acc > best:
                    best, best_step = acc, s
                ev = {"step": s, "epoch": round(3 * t, 4), "eval/loss": 0.25 + 0.3 * math.exp(-5 * t),
                      "eval/accuracy": acc, "eval/f1_macro": acc - 0.01, "best/eval/accuracy": best}
                for c in ("negative", "positive"):
                    ev.update({f"eval/precision/{c}": acc, f"eval/recall/{c}": acc, f"eval/f1/{c}": acc,
                               f"eval/support/{c}": 436})
                f.write(json.dumps(ev) + "\n")
    (run / "recipe.yaml").write_text(yaml.safe_dump({"name": "bench", "train": {"epochs": 3, "learning_rate": 5e-5,
                                                                                  "metric": "accuracy"}}))
    (run / "metrics.json").write_text(json.dumps({"global_step": steps, "best_metric": best, "best_step": best_step,
                                                  "metric": "eval/accuracy", "train_seconds": 0.0}))
    return (run / "history.jsonl").stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from nlp_cv_tricks.report import write_report
    from nlp_cv_tricks.report._mpl import pyplot

    pyplot()  # the import is a one-off per process, not part of a report
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        size = make_run(run, args.steps, args.eval_every)
        results = {}
        for label, points in (("downsampled (2,000 points per curve)", 2000), ("not downsampled", 10 ** 9)):
            times, cpu = [], []
            for _ in range(args.rounds):
                t0, c0 = time.perf_counter(), time.process_time()
                res = write_report(run, max_points=points, log=lambda m: None)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            results[label] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                              "cpu_median_s": statistics.median(cpu), "figures": len(res["figures"]),
                              "html_bytes": os.path.getsize(res["html"])}
    print(f"\nhistory: {args.steps:,} steps, an evaluation every {args.eval_every:,} ({size / 2 ** 20:.1f} MiB of "
          f"history.jsonl); {args.rounds} rounds; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| curves | wall time (median, s) | min–max (s) | CPU time (median, s) | figures | report.html |\n"
          "|---|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | {r['cpu_median_s']:.2f} | "
              f"{r['figures']} | {r['html_bytes'] / 1024:.0f} KiB |")
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "eval_every": args.eval_every,
                                               "history_bytes": size, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
