#!/usr/bin/env python
"""Wall time of one ablation grid run locally (one run after another) and on Ray (one task per run, a local Ray
with as many workers as --workers): the speed-up of ``--executor ray`` on this machine.

The grid: Kim's TextCNN (recipes/sst2_textcnn.yaml) on the bundled SST-2 sentences (data/sst2), baseline and one
learning-rate variant over two seeds (4 runs), each run on one torch thread. Both executors run each run in a fresh
process (local: the per-run subprocess; Ray: a worker process per task), so they pay the same start-up per run; the
Ray time includes starting Ray. Per-seed metrics of the two grids must be equal (the same runs).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_ray_grid.py --json benchmarks/ray_grid.json

Prints a markdown table and writes the JSON record (times, ratio, metrics, load average before/after: the machine may
be shared, so compare the ratio of this run, not absolute times). Before each grid it measures what parallelism the
machine gives right then: a pure-Python busy loop alone, then two at once ("capacity": the wall time of two at once
over two alone one after another; 0.5 = two free cores, 1.0 = no gain from running two at once, e.g. when other
jobs keep the cores busy). The Ray grid cannot beat that figure by much; compare its ratio with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(30_000_000):\n    x += i\n"


def parallel_capacity() -> dict:
    """Busy loop in one process, then in two processes at once: how much two runs at once gain right now."""
    def spin(n: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t0

    one, two = spin(1), spin(2)
    return {"one_s": round(one, 2), "two_at_once_s": round(two, 2), "capacity": round(two / (2 * one), 3)}


def run_grid(executor: str, out: Path, args) -> tuple[float, list[dict]]:
    from nlp_cv_tricks.ablate import ablate
    from nlp_cv_tricks.utils.executors import make_executor

    overrides = ["data.train_file=data/sst2/train.txt", "data.dev_file=data/sst2/dev.txt",
                 f"train.epochs={args.epochs}", "output.report=false", *args.set]
    t0 = time.perf_counter()
    if executor == "ray":
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        ex = make_executor("ray", cpus=1)
    else:
        ex = make_executor("local")
    try:
        res = ablate(ROOT / "recipes" / "sst2_textcnn.yaml", [f"train.learning_rate={args.variant_lr}"],
                     seeds=args.seeds, overrides=overrides, out_dir=out, executor=ex, verbose=True)
    finally:
        ex.close()
        if executor == "ray":
            import ray

            ray.shutdown()
    wall = time.perf_counter() - t0
    runs = [{"variant": r.variant, "seed": r.seed, "metric": r.metric, "seconds": r.seconds,
             "train_seconds": r.train_seconds, "error": r.error} for r in res.runs]
    return wall, runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="seeds (default 1 2)")
    p.add_argument("--variant-lr", type=float, default=0.5, help="learning rate of the variant (baseline: 1.0)")
    p.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray = runs at once (default 2)")
    p.add_argument("--set", nargs="*", default=[], help="more recipe overrides for every run")
    p.add_argument("--order", default="local,ray", help="which grid runs first (default local,ray)")
    p.add_argument("--json", default=None, help="write the record here")
    args = p.parse_args()
    os.chdir(ROOT)  # the recipe's data paths are relative to the project
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("set OMP_NUM_THREADS=1: every run is meant to use one thread", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_grid_", dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None))
    rec = {"machine": f"{platform.node()}, {os.cpu_count()} CPUs", "load_before": os.getloadavg(),
           "grid": f"sst2_textcnn, baseline + train.learning_rate={args.variant_lr}, seeds {args.seeds}, "
                   f"{args.epochs} epochs, 1 thread per run", "workers": args.workers, "results": {}}
    try:
        for name in args.order.split(","):
            cap = parallel_capacity()
            wall, runs = run_grid(name, tmp / name, args)
            rec["results"][name] = {"wall_seconds": round(wall, 1), "runs": runs, "capacity_before": cap}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rec["load_after"] = os.getloadavg()
    loc, ray_ = rec["results"]["local"], rec["results"]["ray"]
    rec["ratio_ray_over_local"] = round(ray_["wall_seconds"] / loc["wall_seconds"], 3)
    key = lambda r: (r["variant"], r["seed"])  # noqa: E731
    rec["same_metrics"] = [r["metric"] for r in sorted(loc["runs"], key=key)] == \
        [r["metric"] for r in sorted(ray_["runs"], key=key)]
    print("\n| executor | runs | wall time (s) | vs local |\n|---|---:|---:|---:|")
    print(f"| local (one after another) | {len(loc['runs'])} | {loc['wall_seconds']:.1f} | 1.00× |")
    print(f"| ray ({args.workers} workers) | {len(ray_['runs'])} | {ray_['wall_seconds']:.1f} | "
          f"{rec['ratio_ray_over_local']:.2f}× |")
    print(f"\nper-seed metrics equal: {rec['same_metrics']}; load average before {rec['load_before']}, after "
          f"{rec['load_after']}; capacity (two busy loops at once / two one after another; 0.5 = two free cores) "
          f"before the local grid {loc['capacity_before']['capacity']}, before the Ray grid "
          f"{ray_['capacity_before']['capacity']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rec, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
