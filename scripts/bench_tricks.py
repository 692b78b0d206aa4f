"""Benchmark of the tricks: step-time overhead and an ablation table on real data (SST-2 with MiniLM).

Part ``overhead``: per-step wall time of plain / FGM / PGD (K=3) / FreeLB (K=3) / AWP / R-Drop on the offline
MiniLM (6-layer BERT, 22.7M parameters) with SST-2 sentences, measured inside the real trainer by a timing
trick (start of the micro-batch to the end of the optimizer step), all variants in one process, interleaved in
rounds, first steps of each run dropped; reported as median step time and ratio to plain.
Goals from the issue: FGM <= 2.1x, PGD with K steps <= (K+1) x 1.05, R-Drop <= 2.1x.

Part ``ablate``: ``nlp_cv_tricks.ablate.ablate`` on recipes/quickstart.yaml (SST-2, MiniLM), training on the first
``--train-samples`` training sentences for one epoch and evaluating on the full 872-sentence dev set:
plain vs FGM vs PGD vs FreeLB vs R-Drop vs focal loss over ``--seeds`` seeds. In-process runs (one Python
process; saves the ~15 s import of a fresh process per run on this small machine).

Usage: the exact commands behind each table are in the tricks section of benchmarks/RESULTS.md (overhead:
``--part overhead --threads 1 --max-length 32 ...``; the TextCNN ablation: ``--part ablate --recipe
recipes/sst2_textcnn.yaml ...``; the MiniLM ablation: ``--part ablate --train-samples 1728 ...``).

Prints markdown tables and writes ``--json`` (default runs/bench/tricks.json; the committed
benchmarks/tricks.json only when named), atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from nlp_cv_tricks.config import atomic_write_text, load_recipe  # noqa: E402
from nlp_cv_tricks.engine.events import Trick  # noqa: E402
from nlp_cv_tricks.models.text_baselines import register_architectures  # noqa: E402

register_architectures()  # textcnn & co. for recipes/sst2_textcnn.yaml (idempotent)

RECIPE = ROOT / "recipes" / "quickstart.yaml"
OVERHEAD_VARIANTS = {
    "plain": [],
    "fgm": ["fgm"],
    "pgd (K=3)": [{"pgd": {"steps": 3}}],
    "freelb (K=3)": [{"freelb": {"steps": 3}}],
    "awp": ["awp"],
    "rdrop": ["rdrop"],
    "rdrop (concat)": [{"rdrop": {"concat": True}}],
}
GOALS = {"fgm": 2.1, "pgd (K=3)": 4 * 1.05, "rdrop": 2.1, "rdrop (concat)": 2.1}


class StepTimer(Trick):
    """Records the wall time of every optimizer step (micro-batch start to after optimizer step)."""

    name = "step_timer"

    def __init__(self):
        self.times: list[float] = []
        self._t0 = None

    def on_step_start(self, step):
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def after_optimizer_step(self, step):
        self.times.append(time.perf_counter() - self._t0)
        self._t0 = None


def _base_overrides(out: Path, train_samples: int, batch_size: int, args) -> list[str]:
    ovr = [f"data.max_train_samples={train_samples}", f"train.batch_size={batch_size}", "train.epochs=1",
           "train.eval_steps=null", "train.logging_steps=8", f"train.learning_rate={args.lr}",
           "train.warmup_ratio=0.0", f"data.max_length={args.max_length}",
           # the schedule these benchmarks were measured with (the quick-start recipe has since moved to constant)
           "train.lr_scheduler=linear", "train.max_grad_norm=1.0",
           "output.report_to=none", "output.save_best=false", "train.progress_bar=false",
           "output.overwrite=true", f"output.dir={out}"]
    if args.max_eval_samples:
        ovr.append(f"data.max_eval_samples={args.max_eval_samples}")
    return ovr


def overhead(args) -> dict:
    from nlp_cv_tricks.runner import build_trainer

    times: dict[str, list[float]] = {k: [] for k in OVERHEAD_VARIANTS}
    out = ROOT / "runs" / "bench_tricks" / "overhead"
    n = args.overhead_steps + args.overhead_warmup
    for rnd in range(args.overhead_rounds):
        for name, tricks in OVERHEAD_VARIANTS.items():
            ovr = _base_overrides(out, n * args.batch_size, args.batch_size, args) + [
                f"train.max_steps={n}", f"tricks={json.dumps(tricks)}", "train.eval_each_epoch=false"]
            trainer = build_trainer(load_recipe(RECIPE, ovr))
            trainer.eval_dataset = None  # timing only
            timer = StepTimer()
            trainer.tricks.insert(0, timer)
            trainer.fit()
            kept = timer.times[args.overhead_warmup:]
            times[name].extend(kept)
            print(f"round {rnd} {name}: median {statistics.median(kept) * 1000:.0f} ms/step", flush=True)
    base = statistics.median(times["plain"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        goal = GOALS.get(name)
        rows.append({"variant": name, "median_ms": med * 1000, "ratio": med / base, "goal": goal,
                     "meets_goal": None if goal is None else med / base <= goal, "n_steps": len(ts)})
    lines = ["| variant | median step (ms) | ratio to plain | goal | met |", "|---|---|---|---|---|"]
    for r in rows:
        goal = f"≤ {r['goal']:.2f}×" if r["goal"] else "–"
        met = "–" if r["meets_goal"] is None else ("yes" if r["meets_goal"] else "no")
        lines.append(f"| {r['variant']} | {r['median_ms']:.0f} | {r['ratio']:.2f}× | {goal} | {met} |")
    md = "\n".join(lines) + "\n"
    print(md)
    return {"rows": rows, "markdown": md}


def ablation(args) -> dict:
    from nlp_cv_tricks.ablate import ablate

    vary = ["tricks=" + ",".join("+" + v.strip() for v in args.variants.split(","))]
    recipe = Path(args.recipe)
    if recipe.resolve() == RECIPE.resolve():
        out = ROOT / "runs" / "bench_tricks" / (f"ablate-n{args.train_samples}-len{args.max_length}-lr{args.lr:g}"
                                                f"-dev{args.max_eval_samples or 'all'}")
        ovr = _base_overrides(out / "unused", args.train_samples, args.batch_size, args)
        ovr = [o for o in ovr if not o.startswith(("output.dir", "output.overwrite", "train.progress_bar"))]
    else:  # another recipe: its own settings, plus --set overrides
        out = ROOT / "runs" / "bench_tricks" / f"ablate-{recipe.stem}"
        ovr = ["output.report_to=none", "output.save_best=false"]
    ovr += ["tricks=[]", "callbacks=[]"] + list(args.set)
    res = ablate(recipe, vary, seeds=args.seeds, overrides=ovr, out_dir=out, in_process=True)
    print(res.markdown)
    return {"recipe": str(recipe), "overrides": ovr, "vary": vary, "markdown": res.markdown,
            "summaries": [s.__dict__ for s in res.summaries], "out_dir": res.out_dir}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("overhead", "ablate", "all"), default="all")
    p.add_argument("--recipe", default=str(RECIPE), help="recipe of the ablation part (default quickstart: "
                                                         "MiniLM on SST-2, reduced by the options below)")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides of the ablation runs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--train-samples", type=int, default=512)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--max-eval-samples", type=int, default=None, help="dev subset (default: all 872)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--variants", default="fgm,pgd,freelb,rdrop,focal_loss",
                   help="tricks compared with the plain baseline in the ablation part")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--overhead-steps", type=int, default=10)
    p.add_argument("--overhead-warmup", type=int, default=2)
    p.add_argument("--overhead-rounds", type=int, default=2)
    p.add_argument("--json", default=str(ROOT / "runs" / "bench" / "tricks.json"),
                   help="results JSON (default under runs/; benchmarks/ files only when named)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from nlp_cv_tricks.utils.logs import setup_logging

    setup_logging()
    result = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "torch": torch.__version__, "threads": args.threads,
                          "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "args": vars(args)}
    path = Path(args.json)
    if path.is_file():  # keep the other part's numbers when only one part is rerun
        old = json.loads(path.read_text(encoding="utf-8"))
        result = {**old, **result}
    if args.part in ("overhead", "all"):
        result["overhead"] = {**overhead(args), "args": vars(args)}
        atomic_write_text(path, json.dumps(result, indent=2, default=str) + "\n")
    if args.part in ("ablate", "all"):
        result.setdefault("ablations", {})[Path(args.recipe).stem] = {**ablation(args), "args": vars(args)}
        atomic_write_text(path, json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
