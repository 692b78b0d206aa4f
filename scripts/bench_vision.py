#!/usr/bin/env python
"""Benchmark: image classification with timm through the trainer (issue 9).

1. MNIST 5k (../shared/data/images/mnist_5k.csv.gz), seeded stratified 4,000/1,000 split: a small timm ResNet
   (resnet10t with few channels, 32x32 input) trained from scratch; variants baseline / mixup+cutmix / label
   smoothing over several seeds: dev accuracy, training and evaluation images per second.
2. Hymenoptera (ants vs bees, ImageFolder, 245 train / 153 val): the same architecture at ``--hym-size``
   (224 is timm's usual; 128 suits the small model on a CPU) trained from scratch, and fine-tuned from a
   checkpoint trained "elsewhere" — the seed-0 MNIST baseline saved in timm's Hub format and loaded through
   ``pretrained_file`` (head reset from 10 to 2 classes).

Prints a markdown table (with the 1-minute load average before/after the runs of each row) and writes JSON
(atomically). The measured setting in benchmarks/vision.md, sized for a shared 2-core CPU (~36 min)::

    HF_HUB_OFFLINE=1 python scripts/bench_vision.py --mnist-train 4000 --epochs 6 --hym-epochs 15 \
        --hym-size 128 --seeds 0 1 2 --threads 1 --json benchmarks/vision.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "images"
TINY = {"channels": [16, 32, 64, 128], "stem_width": 16}
MNIST_IMAGE = {"input_size": 32, "hflip": 0.0, "scale": [0.8, 1.0], "ratio": [0.9, 1.1], "color_jitter": 0.0,
               "mean": 0.5, "std": 0.5, "crop_pct": 1.0, "dev_fraction": 0.2, "split_seed": 42}
HYM_IMAGE = {"input_size": 64, "crop_pct": 0.875, "mean": 0.5, "std": 0.5, "scale": [0.5, 1.0], "hflip": 0.5, "color_jitter": 0.2}
VARIANTS = {
    "baseline": [],
    "mixup+cutmix": [{"mixup": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "label_smoothing": 0.0}}],
    "label_smoothing": [{"label_smoothing": {"epsilon": 0.1}}],
}


def _run(name, data, kwargs, seed, epochs, lr, tricks, out_dir, batch_size=32):
    from nlp_cv_tricks.config import recipe_from_dict

    load_before = os.getloadavg()[0]
    from nlp_cv_tricks.runner import build_trainer

    recipe = recipe_from_dict({
        "name": name, "task": "image-classification", "data": data,
        "model": {"name": "resnet10t", "kwargs": kwargs},
        "train": {"seed": seed, "epochs": epochs, "batch_size": batch_size, "eval_batch_size": 100,
                  "learning_rate": lr, "lr_scheduler": "cosine", "warmup_ratio": 0.1, "weight_decay": 0.05,
                  "eval_each_epoch": False, "progress_bar": False},
        "tricks": tricks,
        "output": {"dir": str(out_dir), "report_to": "none"},
    })
    trainer = build_trainer(recipe)
    n_train, n_eval = len(trainer.train_dataset), len(trainer.eval_dataset)
    result = trainer.fit()
    t0 = time.perf_counter()
    metrics = trainer.evaluate()
    eval_s = time.perf_counter() - t0
    return {
        "accuracy": metrics["eval/accuracy"], "f1_macro": metrics.get("eval/f1_macro"),
        "train_images_per_s": n_train * epochs / result.train_seconds,
        "eval_images_per_s": n_eval / eval_s, "n_train": n_train, "n_eval": n_eval,
        "train_seconds": result.train_seconds, "model_dir": result.model_dir,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
    }


def _summary(rows):
    accs = [r["accuracy"] for r in rows]
    return {
        "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "accuracies": accs,
        "train_images_per_s": statistics.mean(r["train_images_per_s"] for r in rows),
        "eval_images_per_s": statistics.mean(r["eval_images_per_s"] for r in rows),
        "n_train": rows[0]["n_train"], "n_eval": rows[0]["n_eval"],
        "load_avg_1min": [min(min(r["load_avg_1min"]) for r in rows), max(max(r["load_avg_1min"]) for r in rows)],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--mnist-train", type=int, default=4000, help="training images used of the 4,000 split")
    p.add_argument("--epochs", type=int, default=10, help="MNIST epochs")
    p.add_argument("--hym-epochs", type=int, default=15)
    p.add_argument("--hym-size", type=int, default=224, help="hymenoptera input side (224 is timm's usual; "
                                                                 "112 or 128 fit a CPU)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=str(ROOT / "runs" / "bench" / "vision.json"),
                   help="results JSON (default under runs/; benchmarks/ files only when named)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import nlp_cv_tricks.tasks.image_classification  # noqa: F401
    from nlp_cv_tricks.config import atomic_write_text

    work = Path(tempfile.mkdtemp(prefix="bench_vision_"))
    wall0 = time.perf_counter()
    hym_image = {**HYM_IMAGE, "input_size": args.hym_size}
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                           "torch": torch.__version__, "cuda": torch.cuda.is_available()},
               "args": vars(args), "mnist": {}, "hymenoptera": {}}
    mnist_data = {"train_file": str(DATA / "mnist_5k.csv.gz"), "max_train_samples": args.mnist_train}
    checkpoint = None
    for variant in args.variants:
        rows = []
        for seed in args.seeds:
            r = _run(f"mnist_{variant}", mnist_data, {"model_args": TINY, "image": MNIST_IMAGE}, seed, args.epochs,
                     3e-3, VARIANTS[variant], work / f"mnist_{variant}_{seed}")
            print(f"mnist {variant} seed {seed}: acc {r['accuracy']:.4f} "
                  f"train {r['train_images_per_s']:.0f} img/s", flush=True)
            rows.append(r)
            if variant == "baseline" and checkpoint is None:
                checkpoint = r["model_dir"]
        results["mnist"][variant] = _summary(rows)
    if checkpoint is None:  # baseline not run: train the source checkpoint once
        checkpoint = _run("mnist_source", mnist_data, {"model_args": TINY, "image": MNIST_IMAGE}, 0, args.epochs,
                          3e-3, [], work / "mnist_source")["model_dir"]
    hym_data = {"train_file": str(DATA / "hymenoptera" / "train"), "dev_file": str(DATA / "hymenoptera" / "val")}
    settings = {
        "from scratch": {"model_args": TINY, "image": hym_image},
        "fine-tuned from MNIST checkpoint": {"pretrained_file": checkpoint, "image": hym_image},
    }
    for label, kwargs in settings.items():
        rows = []
        for seed in args.seeds:
            r = _run("hymenoptera", hym_data, kwargs, seed, args.hym_epochs, 3e-3, [],
                     work / f"hym_{label.split()[0]}_{seed}", batch_size=16)
            print(f"hymenoptera {label} seed {seed}: acc {r['accuracy']:.4f} "
                  f"train {r['train_images_per_s']:.0f} img/s", flush=True)
            rows.append(r)
        results["hymenoptera"][label] = _summary(rows)

    results["wall_seconds"] = time.perf_counter() - wall0
    print()
    print(f"Machine: {results['machine']['platform']}, {results['machine']['cpus']} CPUs (shared), "
          f"{args.threads} torch thread(s), CUDA: {results['machine']['cuda']}; wall {results['wall_seconds'] / 60:.1f} "
          f"min; MNIST 32x32, hymenoptera {args.hym_size}x{args.hym_size}")
    print()
    print("| data | setting | train imgs | dev imgs | epochs | accuracy (mean ± std over seeds) | per seed | "
          "train img/s | eval img/s | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for data, table, epochs in (("MNIST 5k", results["mnist"], args.epochs),
                                ("hymenoptera", results["hymenoptera"], args.hym_epochs)):
        for setting, s in table.items():
            per = ", ".join(f"{a:.3f}" for a in s["accuracies"])
            print(f"| {data} | {setting} | {s['n_train']} | {s['n_eval']} | {epochs} | "
                  f"{s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f} | {per} | {s['train_images_per_s']:.0f} | "
                  f"{s['eval_images_per_s']:.0f} | {s['load_avg_1min'][0]:.1f}–{s['load_avg_1min'][1]:.1f} |")
    atomic_write_text(args.json, json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
