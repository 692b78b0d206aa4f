#!/usr/bin/env python
"""The two loops that train ``recipes/thucnews_fasttext.yaml`` side by side over seeds: the compiled FastText loop
(``train.engine=compiled``) and the trainer (``train.engine=trainer``), each run a fresh ``nlp-cv-tricks train``
process with one thread. Per run: the best dev accuracy, the wall time of the command and its peak RSS. The two
loops differ only in their random draws (initial weights and shuffling: numpy against torch), so their accuracies
should agree within the seed-to-seed spread. Writes the JSON records and prints a markdown table::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_fasttext_engines.py --seeds 1,2,3,4,5 \\
        --json benchmarks/fasttext_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = "recipes/thucnews_fasttext.yaml"
ENGINES = ("compiled", "trainer")


def _run(engine: str, seed: int, out: Path, env: dict) -> dict:
    cmd = [sys.executable, "-c", "import sys; from nlp_cv_tricks.cli import main; sys.exit(main())", "train", RECIPE, f"train.engine={engine}", f"train.seed={seed}",
           f"output.dir={out}", "output.report=false", "output.report_to=none", "train.progress_bar=false"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{engine} seed {seed} failed:\n{text[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"engine": engine, "seed": seed, "dev_acc": metrics["best_metric"], "best_step": metrics["best_step"],
            "wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "peak_rss_mb": round(ru.ru_maxrss / 1024)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "NLP_CV_TRICKS_DATA": os.environ.get("NLP_CV_TRICKS_DATA") or str(REPO.parent / "shared" / "data")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    recs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for engine in ENGINES:
            with tempfile.TemporaryDirectory(prefix="bench_ft_engines_") as tmp:
                rec = _run(engine, seed, Path(tmp) / "run", env)
            recs.append(rec)
            print(json.dumps(rec), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"recipe": RECIPE, "runs": recs}, indent=2) + "\n")
    print("\n| loop | dev accuracy per seed | mean ± sd | wall s (median) | peak RSS MB (median) |\n|---|---|---|---|---|")
    for engine in ENGINES:
        rs = [r for r in recs if r["engine"] == engine]
        acc = [r["dev_acc"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| {engine} | {' / '.join(f'{a:.4f}' for a in acc)} | {statistics.mean(acc):.4f} ± {sd:.4f} | "
              f"{statistics.median(r['wall_s'] for r in rs):.1f} | {statistics.median(r['peak_rss_mb'] for r in rs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
