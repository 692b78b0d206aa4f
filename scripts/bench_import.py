#!/usr/bin/env python
"""Import time of the package and of ``nlp-cv-tricks --help`` against ``import transformers`` (issue: the CLI
answers in under 1.5 s more than transformers alone).

Each command runs ``--rounds`` times in a fresh interpreter, interleaved (so a busy machine slows all of them
alike); the table gives the median wall time and the difference to ``import transformers``. Run it alone on a
quiet machine:

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_import.py --rounds 7 --json benchmarks/import_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "import transformers": ["-c", "import transformers"],
    "import nlp_cv_tricks": ["-c", "import nlp_cv_tricks"],
    "import nlp_cv_tricks; load_recipe": ["-c", "import nlp_cv_tricks; nlp_cv_tricks.load_recipe('recipes/quickstart.yaml')"],
    "nlp-cv-tricks --help": ["-m", "nlp_cv_tricks.cli", "--help"],
    "nlp-cv-tricks train --help": ["-m", "nlp_cv_tricks.cli", "train", "--help"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", default=None, help="write the records here")
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["import transformers"])
    print(f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, {args.rounds} rounds "
          f"(median wall time of a fresh interpreter)\n")
    print("| command | median s | min s | vs import transformers |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| `{name}` | {med:.2f} | {min(ts):.2f} | {med - base:+.2f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": args.rounds, "seconds": times,
                                               "command": " ".join(sys.argv)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
