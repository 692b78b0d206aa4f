"""Two short real runs on SST-2 sentences, one driven to overfit and one to underfit, then the doctor on each.

    HF_HUB_OFFLINE=1 python scripts/demo_doctor_runs.py [--out runs/doctor_demo] [--json FILE]

* overfit: TextCNN from scratch (no dropout) on 500 training sentences for 12 epochs — it memorises them
  while the dev loss turns up after a few epochs;
* underfit: TextCNN with 2 filters over 4-dimensional word vectors, heavy dropout and a small learning rate —
  it cannot fit even the training sentences.

Both use the package's trainer with the ``train_eval`` callback (train-set metrics next to the dev ones) and
``imbalance_watch``. With ``--follow-up`` each run is repeated with the first three remedies the doctor printed
(skipping architecture swaps), applied verbatim as recipe overrides, and diagnosed again. About 1–3 minutes on
2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nlp_cv_tricks.config import load_recipe  # noqa: E402
from nlp_cv_tricks.diagnostics.doctor import diagnose_run, format_diagnosis  # noqa: E402
from nlp_cv_tricks.runner import build_trainer

try:  # until the package __init__ wires them: the text baselines as recipe architectures
    from nlp_cv_tricks.models import text_baselines as _tb

    _tb.register_auto_classes()
    _tb.register_architectures()
except (ImportError, AttributeError):
    pass

SST2 = ROOT.parent / "shared" / "data" / "kim2014"

COMMON = [
    f"data.train_file={SST2 / 'stsa.binary.train'}", f"data.dev_file={SST2 / 'stsa.binary.dev'}",
    "data.format=kim2014", "data.label_names=[negative,positive]", "data.max_length=48",
    "model.name=textcnn", "train.optimizer=adam", "train.weight_decay=0.0", "train.lr_scheduler=constant",
    "train.warmup_ratio=0.0", "train.max_grad_norm=null", "train.eval_each_epoch=true", "train.eval_steps=null",
    "train.batch_size=32", "train.eval_batch_size=256", "train.progress_bar=false", "output.report_to=none",
    "train.metric=accuracy", "tricks=[]", "callbacks=[train_eval,imbalance_watch]",
]
RUNS = {
    "overfit": ["data.max_train_samples=500", "train.epochs=12", "train.learning_rate=1e-3", "train.logging_steps=4",
                "model.kwargs={embedding_dim: 128, num_filters: 100, dropout: 0.0}"],
    "underfit": ["data.max_train_samples=2000", "train.epochs=3", "train.learning_rate=3e-4", "train.logging_steps=8",
                 "model.kwargs={embedding_dim: 4, num_filters: 2, filter_sizes: [3], dropout: 0.5}"],
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/doctor_demo")
    ap.add_argument("--json", help="write the two diagnoses here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--follow-up", action="store_true", help="rerun each with the first three remedies applied")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}

    def run(name: str, overrides: list) -> dict:
        out = Path(args.out) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml",
                             overrides + [f"name=doctor_{name}", f"output.dir={out}"])
        t0 = time.time()
        res = build_trainer(recipe, output_dir=str(out)).fit()
        wall = time.time() - t0
        diag = diagnose_run(res.output_dir)
        print(f"\n=== {name} run ({wall:.0f} s): {res.output_dir}")
        print(format_diagnosis(diag))
        return {"run_dir": res.output_dir, "wall_s": wall, "overrides": overrides, **diag.as_dict()}

    for name, extra in RUNS.items():
        results[name] = run(name, COMMON + extra)
        if args.follow_up:
            fixes = [r["override"] for r in results[name]["remedies"]
                     if r["available"] and r["override"] and not r["override"].startswith("model.name=")][:3]
            results[name + "+remedies"] = run(name + "_remedied", COMMON + extra + fixes)
            print(f"applied: {' '.join(fixes)}")
    print("\n| run | regime (onset) | best dev accuracy | best dev loss | final train accuracy |\n|---|---|---|---|---|")
    for name, r in results.items():
        ev = r["evidence"]
        onset = f" (step {r['onset_step']})" if r["onset_step"] is not None else ""
        print(f"| {name} | {r['regime']}{onset} | {ev.get('accuracy_best', float('nan')):.3f} | "
              f"{ev.get('eval_loss_best', float('nan')):.3f} | {ev.get('train_accuracy_end', float('nan')):.3f} |")
    if args.json:
        from nlp_cv_tricks.diagnostics._io import atomic_write_json

        atomic_write_json(args.json, results)
    ok = results["overfit"]["regime"] == "overfitting" and results["underfit"]["regime"] == "underfitting"
    print("\nexpected regimes found" if ok else "\nUNEXPECTED regimes: " +
          ", ".join(f"{k}={v['regime']}" for k, v in results.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
