#!/usr/bin/env python
"""Hyperpartisan: does "for long text, Longformer beats the BERT variants" hold? Head-512 vs head+tail vs
chunk-and-pool vs the converted long MiniLM, several seeds each, on a seeded stratified 80/10/10 split.

Each (recipe, seed) trains with the package's Trainer (model selection on the validation split by
``train.metric``), then the selected model is evaluated on the held-out test split with the same truncation /
chunking / Longformer inputs as in training. Prints a markdown table (mean +- std over seeds of test accuracy
and macro-F1, and training wall time) and writes JSON.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_long_hyperpartisan.py --seeds 1 2 3 \
        --out benchmarks/long_hyperpartisan.json

Extra ``key=value`` recipe overrides after ``--set`` apply to every run (e.g. ``--set train.epochs=3``).
Costs about 30 CPU-hours at the recipes' 10 epochs; meant for a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_RECIPES = [
    "recipes/long_hyperpartisan_head.yaml",
    "recipes/long_hyperpartisan_headtail.yaml",
    "recipes/long_hyperpartisan_chunkpool.yaml",
    "recipes/long_hyperpartisan_longformer.yaml",
]


def run_one(recipe_path: str, seed: int, overrides: list[str], run_root: Path) -> dict:
    import torch
    from accelerate.utils import set_seed
    from safetensors.torch import load_file

    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.engine.trainer import Trainer
    from nlp_cv_tricks.tasks.long_text import prepare_long_text

    name = Path(recipe_path).stem
    out_dir = run_root / name / f"seed{seed}"
    recipe = load_recipe(recipe_path, [f"train.seed={seed}", f"output.dir={out_dir}", "output.report_to=none",
                                       *overrides])
    acc = Trainer._make_accelerator_for(recipe, str(out_dir))
    set_seed(recipe.train.seed)
    comps = prepare_long_text(recipe, acc)
    test = comps.pop("test_dataset")
    trainer = Trainer(recipe, accelerator=acc, output_dir=str(out_dir), **comps)
    t0 = time.perf_counter()
    result = trainer.fit()
    train_s = time.perf_counter() - t0
    weights = Path(result.model_dir) / "model.safetensors"
    model = acc.unwrap_model(trainer.model)
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in load_file(weights).items()}, strict=True)  # the selected model
    metrics = trainer.evaluate(test, prefix="test")
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {
        "recipe": name,
        "seed": seed,
        "test_accuracy": metrics["test/accuracy"],
        "test_f1_macro": metrics["test/f1_macro"],
        "best_dev": result.best_metric,
        "train_seconds": train_s,
        "steps": result.global_step,
        "run_dir": str(out_dir),
    }


def render(rows: list[dict]) -> str:
    lines = ["| recipe | seeds | test accuracy | test macro-F1 | train time (s) |", "|---|---|---|---|---|"]
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["recipe"], []).append(r)

    def ms(values):
        if len(values) < 2:
            return f"{values[0]:.4f}"
        return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"

    for name, rs in by.items():
        lines.append(f"| {name} | {len(rs)} | {ms([r['test_accuracy'] for r in rs])} | "
                     f"{ms([r['test_f1_macro'] for r in rs])} | {statistics.mean(r['train_seconds'] for r in rs):.0f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides for every run")
    p.add_argument("--runs", default="runs/bench_long_hyperpartisan", help="where the runs are written")
    p.add_argument("--out", default="runs/bench/long_hyperpartisan.json",
                   help="results JSON (default under runs/; benchmarks/ files only when named)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nlp_cv_tricks.models.long import register

    register()
    run_root = Path(args.runs)
    if run_root.exists() and any(run_root.iterdir()):
        raise SystemExit(f"{run_root} exists and is not empty; pass another --runs")
    rows = []
    for recipe in args.recipes:
        for seed in args.seeds:
            row = run_one(recipe, seed, args.set, run_root)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    table = render(rows)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"command": " ".join([Path(sys.executable).name, *sys.argv]), "rows": rows, "table": table}, f,
                  indent=2)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
