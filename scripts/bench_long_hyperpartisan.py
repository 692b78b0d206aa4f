#!/usr/bin/env python
"""Hyperpartisan: does "for long text, Longformer beats the BERT variants" hold? Head-512, head+tail-512,
chunk-and-pool and the converted long MiniLM (documents capped at ``--long-max-length`` tokens, 1,024 by default),
against two plain baselines through the same package: FastText with word n-grams on the whole text, and TF-IDF +
logistic regression (scikit-learn, here only) as a reference row.

Split: the seeded stratified 80/10/10 of the 645 articles (516 train / 64 dev / 65 test, ``model.kwargs.split_seed``
42 of the recipes; disjoint, unlike the paper's ``hp-splits.json``). Each (method, learning rate, seed) trains
with the package's Trainer, the model is selected on the 64-document dev split by ``train.metric`` (macro-F1), and the
selected model is scored once on the 65 test documents. The learning rate of each method is chosen on the dev split
(the row marked "selected": highest mean dev macro-F1 over the learning rates run), never on test.

Resumable: every finished run appends one JSON record (method, seed, settings, metrics, wall time) to ``--records``;
runs already recorded are skipped. The table is printed from all records, with ``n`` per row and a 95% CI:
for one seed, the Wilson interval of the accuracy on the 65 documents and a bootstrap interval of the macro-F1
(see ``macro_f1_ci``); for several seeds, the t interval over seeds.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_long_hyperpartisan.py --methods headtail512 \
        --lrs 5e-5 2e-4 --seeds 1 --epochs 2 --records benchmarks/long_hyperpartisan.jsonl

On a GPU add ``--device cuda`` (the default when one is visible); the recipes' own 10 epochs: ``--epochs 10``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_records import append_record, read_records  # noqa: E402
sys.path.insert(0, str(ROOT))

DATA = ROOT / ".." / "shared" / "data" / "hyperpartisan"
METHODS = {
    "head512": ("recipes/long_hyperpartisan_head.yaml", []),
    "headtail512": ("recipes/long_hyperpartisan_headtail.yaml", []),
    "chunkpool": ("recipes/long_hyperpartisan_chunkpool.yaml", ["LONG"]),
    "longformer": ("recipes/long_hyperpartisan_longformer.yaml", ["LONG"]),
    "fasttext": (None, []),
    "tfidf_lr": (None, []),
}


def _split(seed: int = 42):
    from nlp_cv_tricks.data.long import load_hyperpartisan

    return load_hyperpartisan(str(DATA), split="stratified", seed=seed)


def _scores(y_true, y_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"test_accuracy": float(accuracy_score(y_true, y_pred)),
            "test_f1_macro": float(f1_score(y_true, y_pred, average="macro"))}


def run_tfidf(args, seed: int, lr: float) -> dict:
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; C chosen on the dev split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    dd = _split()
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200_000)
    xtr = vec.fit_transform(dd["train"]["text"])
    xdv, xte = vec.transform(dd["validation"]["text"]), vec.transform(dd["test"]["text"])
    best = None
    for c in (0.1, 1.0, 10.0, 100.0):
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed).fit(xtr, dd["train"]["label"])
        dev = f1_score(dd["validation"]["label"], clf.predict(xdv), average="macro")
        if best is None or dev > best[0]:
            best = (dev, c, clf)
    return {"best_dev": float(best[0]), "C": best[1], **_scores(dd["test"]["label"], best[2].predict(xte)),
            "train_seconds": time.perf_counter() - t0, "steps": 0}


def _fasttext_files(tmp: Path) -> tuple[str, str, str]:
    import csv

    dd = _split()
    paths = []
    for part in ("train", "validation", "test"):
        p = tmp / f"{part}.csv"
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            names = dd[part].features["label"].names
            for t, y in zip(dd[part]["text"], dd[part]["label"]):
                w.writerow([t, names[y]])
        paths.append(str(p))
    return tuple(paths)


def run_fasttext(args, seed: int, lr: float, out_dir: Path) -> dict:
    """The package's FastText (word uni+bi-grams, whole text up to 4,096 words) through the Trainer."""
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    tr, dv, te = _fasttext_files(out_dir)
    recipe = {
        "name": "hyperpartisan_fasttext", "task": "text-classification",
        "data": {"train_file": tr, "dev_file": dv, "format": "csv", "max_length": 4096},
        "model": {"name": "fasttext", "kwargs": {
            "embedding_dim": 100, "word_ngrams": 2, "bucket": 200_000, "hidden_size": 0, "sparse": True,
            "dropout": 0.0, "tokenizer": {"level": "word", "max_length": 4096, "lowercase": True}}},
        "train": {"seed": seed, "epochs": args.fasttext_epochs, "batch_size": args.fasttext_batch, "eval_batch_size": 64,
                  "optimizer": "sgd", "momentum": 0.0, "learning_rate": lr, "weight_decay": 0.0,
                  "lr_scheduler": "linear", "max_grad_norm": None, "eval_each_epoch": True, "metric": "f1_macro"},
        "output": {"dir": str(out_dir / "run"), "report_to": "none"},
    }
    rp = out_dir / "recipe.yaml"
    rp.write_text(yaml.safe_dump(recipe))
    return _train_and_test(str(rp), [], te)


def _train_and_test(recipe_path: str, overrides: list[str], test_file: str | None = None, test_ds=None) -> dict:
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.runner import build_trainer

    recipe = load_recipe(recipe_path, overrides)
    trainer = build_trainer(recipe)
    t0 = time.perf_counter()
    result = trainer.fit()
    train_s = time.perf_counter() - t0
    from nlp_cv_tricks.inference import evaluate_file

    m = evaluate_file(result.model_dir, test_file)
    return {"best_dev": result.best_metric, "test_accuracy": m["accuracy"], "test_f1_macro": m["f1_macro"],
            "train_seconds": train_s, "steps": result.global_step}


def run_transformer(args, method: str, seed: int, lr: float, out_dir: Path) -> dict:
    import torch
    from accelerate.utils import set_seed
    from safetensors.torch import load_file

    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.engine.trainer import Trainer, make_accelerator
    from nlp_cv_tricks.tasks.long_text import prepare_long_text

    recipe_path, flags = METHODS[method]
    over = [f"train.seed={seed}", f"output.dir={out_dir}", "output.report_to=none", f"train.learning_rate={lr}",
            f"train.epochs={args.epochs}", f"data.train_file={DATA}"]
    if "LONG" in flags:
        over.append(f"data.max_length={args.long_max_length}")
    recipe = load_recipe(str(ROOT / recipe_path), over + list(args.set))
    acc = make_accelerator(recipe, str(out_dir))
    set_seed(recipe.train.seed)
    comps = prepare_long_text(recipe, acc)
    test = comps.pop("test_dataset")
    from nlp_cv_tricks.runner import build_plugins

    trainer = Trainer(recipe, accelerator=acc, output_dir=str(out_dir), tricks=build_plugins(recipe), **comps)
    t0 = time.perf_counter()
    result = trainer.fit()
    train_s = time.perf_counter() - t0
    model = acc.unwrap_model(trainer.model)
    device = next(model.parameters()).device
    weights = Path(result.model_dir) / "model.safetensors"
    model.load_state_dict({k: v.to(device) for k, v in load_file(weights).items()}, strict=True)  # the selected model
    metrics = trainer.evaluate(test, prefix="test")
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"best_dev": result.best_metric, "test_accuracy": metrics["test/accuracy"],
            "test_f1_macro": metrics["test/f1_macro"], "train_seconds": train_s, "steps": result.global_step}


def settings(args, method: str, lr: float) -> dict:
    d = {"lr": lr, "split": "stratified-42"}
    if method == "tfidf_lr":
        return d
    if method == "fasttext":
        return d | {"epochs": args.fasttext_epochs, "batch": args.fasttext_batch}
    d |= {"epochs": args.epochs, "set": list(args.set)}
    if "LONG" in METHODS[method][1]:
        d["max_length"] = args.long_max_length
    return d


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def confusion_from_scores(acc: float, f1_macro: float, n_pos: int, n_neg: int) -> list[tuple[int, int, int, int]]:
    """Every binary confusion matrix (tp, fn, fp, tn) with this accuracy and macro-F1 on ``n_pos`` + ``n_neg``
    documents. The records keep the two scores, not the predictions; with two classes the class counts and the
    accuracy leave one free count, which the macro-F1 fixes (at most a mirrored pair), so a record's interval
    needs no rerun."""
    correct = round(acc * (n_pos + n_neg))
    found = []
    for tp in range(n_pos + 1):
        tn = correct - tp
        if not 0 <= tn <= n_neg:
            continue
        fn, fp = n_pos - tp, n_neg - tn
        f1 = (2 * tp / (2 * tp + fp + fn) + 2 * tn / (2 * tn + fn + fp)) / 2
        if abs(f1 - f1_macro) < 1e-6:
            found.append((tp, fn, fp, tn))
    return found


def _macro_f1(y, p, axis=-1):
    """Binary macro-F1 along ``axis`` (vectorised for ``scipy.stats.bootstrap``); an empty class scores 0 as in
    scikit-learn."""
    import numpy as np

    def f1(c):
        tp = ((y == c) & (p == c)).sum(axis)
        den = (y == c).sum(axis) + (p == c).sum(axis)
        return np.divide(2 * tp, den, out=np.zeros(np.shape(den)), where=den > 0)

    return (f1(0) + f1(1)) / 2


def macro_f1_ci(acc: float, f1_macro: float, n_pos: int, n_neg: int) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval (10,000 resamples of the test documents, fixed seed) of one run's
    macro-F1, from the confusion matrix its scores imply; None if no matrix matches. Mirrored matrices: the
    envelope of their intervals."""
    import numpy as np
    from scipy import stats

    lo, hi = None, None
    for tp, fn, fp, tn in confusion_from_scores(acc, f1_macro, n_pos, n_neg):
        y = np.array([1] * (tp + fn) + [0] * (fp + tn))
        p = np.array([1] * tp + [0] * fn + [1] * fp + [0] * tn)
        ci = stats.bootstrap((y, p), _macro_f1, paired=True, vectorized=True, n_resamples=10_000,
                             method="percentile", random_state=0).confidence_interval
        lo = ci.low if lo is None else min(lo, ci.low)
        hi = ci.high if hi is None else max(hi, ci.high)
    return None if lo is None else (float(lo), float(hi))


def _ms(vals: list[float], n_test: int | None = None, f1_ci: tuple[float, float] | None = None) -> str:
    if len(vals) == 1:
        s = f"{vals[0]:.3f}"
        if n_test:
            lo, hi = wilson(vals[0], n_test)
            s += f" [{lo:.2f}, {hi:.2f}]"
        elif f1_ci:
            s += f" [{f1_ci[0]:.2f}, {f1_ci[1]:.2f}]"
        return s
    from scipy import stats

    m, sd = statistics.mean(vals), statistics.stdev(vals)
    h = stats.t.ppf(0.975, len(vals) - 1) * sd / math.sqrt(len(vals))
    return f"{m:.3f} ± {sd:.3f} [{m - h:.2f}, {m + h:.2f}]"


def render(records: list[dict], test_counts: tuple[int, int] = (24, 41)) -> str:
    """The table; ``test_counts``: (hyperpartisan, not) documents in the test split."""
    n_test = sum(test_counts)
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["method"], json.dumps({k: v for k, v in r["settings"].items()}, sort_keys=True))
        groups.setdefault(key, []).append(r)
    best_by_method: dict[str, tuple] = {}
    for key, rs in groups.items():
        dev = statistics.mean(r["best_dev"] for r in rs)
        if key[0] not in best_by_method or dev > best_by_method[key[0]][0]:
            best_by_method[key[0]] = (dev, key)
    lines = ["| method | settings | n | dev macro-F1 | test accuracy [95% CI] | test macro-F1 [95% CI] | train s/run | "
             "selected on dev |", "|---|---|---:|---:|---:|---:|---:|---|"]
    order = list(METHODS)
    for key in sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])):
        rs = groups[key]
        st = json.loads(key[1])
        desc = ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("split", "set") and v not in (None, []))
        sel = "yes" if best_by_method[key[0]][1] == key else ""
        f1_ci = macro_f1_ci(rs[0]["test_accuracy"], rs[0]["test_f1_macro"], *test_counts) if len(rs) == 1 else None
        lines.append(f"| {key[0]} | {desc} | {len(rs)} | {statistics.mean(r['best_dev'] for r in rs):.3f} | "
                     f"{_ms([r['test_accuracy'] for r in rs], n_test)} | {_ms([r['test_f1_macro'] for r in rs], f1_ci=f1_ci)} | "
                     f"{statistics.mean(r['train_seconds'] for r in rs):.0f} | {sel} |")
    return "\n".join(lines)


def truncation_share(max_length: int) -> dict:
    """Share of the 645 articles longer than ``max_length`` MiniLM tokens."""
    from transformers import AutoTokenizer

    from nlp_cv_tricks.models.long import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm-l6"))
    dd = _split()
    texts = [t for part in dd.values() for t in part["text"]]
    lens = [len(x) for x in tok(texts, add_special_tokens=True)["input_ids"]]
    return {"documents": len(lens), f"over_{max_length}": sum(n > max_length for n in lens),
            "over_512": sum(n > 512 for n in lens), "mean_tokens": statistics.mean(lens)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--lrs", type=float, nargs="+", default=[2e-4],
                   help="learning rates to run per method (FastText: --fasttext-lr; TF-IDF: none)")
    p.add_argument("--fasttext-lr", type=float, nargs="+", default=[0.1, 0.5],
                   help="FastText learning rates (SGD; per document at batch 1, as fastText's -lr)")
    p.add_argument("--fasttext-epochs", type=int, default=25)
    p.add_argument("--fasttext-batch", type=int, default=1,
                   help="FastText batch size (1: per-document SGD as the official fastText)")
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--long-max-length", type=int, default=1024,
                   help="document tokens read by chunk-and-pool and the Longformer")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides for every transformer run")
    p.add_argument("--runs", default="runs/bench_long_hyperpartisan", help="where the runs are written")
    p.add_argument("--records", default="runs/bench/long_hyperpartisan.jsonl")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when visible); sets train.cpu")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.device == "cpu":
        args.set = [*args.set, "train.cpu=true"]
    records = read_records(args.records)
    if not args.table_only:
        if not any(r.get("method") == "_truncation" and r["settings"].get("max_length") == args.long_max_length
                   for r in records):
            rec = {"method": "_truncation", "settings": {"max_length": args.long_max_length},
                   **truncation_share(args.long_max_length)}
            append_record(args.records, rec)
            records.append(rec)
        for method in args.methods:
            lrs = [None] if method == "tfidf_lr" else (args.fasttext_lr if method == "fasttext" else args.lrs)
            for lr in lrs:
                for seed in args.seeds:
                    st = settings(args, method, lr)
                    if any(r["method"] == method and r["seed"] == seed and r["settings"] == st for r in records):
                        continue
                    out_dir = Path(args.runs) / method / f"lr{lr}_seed{seed}_{int(time.time())}"
                    t = time.time()
                    if method == "tfidf_lr":
                        m = run_tfidf(args, seed, lr)
                    elif method == "fasttext":
                        m = run_fasttext(args, seed, lr, out_dir)
                    else:
                        m = run_transformer(args, method, seed, lr, out_dir)
                    rec = {"method": method, "seed": seed, "settings": st, **m, "wall_seconds": time.time() - t,
                           "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
                    append_record(args.records, rec)
                    records.append(rec)
                    print(json.dumps(rec), flush=True)
    trunc = [r for r in records if r.get("method") == "_truncation"]
    for r in trunc:
        k = r["settings"]["max_length"]
        print(f"# {r['documents']} documents, mean {r['mean_tokens']:.0f} MiniLM tokens; longer than 512: "
              f"{r['over_512']} ({r['over_512'] / r['documents']:.0%}); longer than {k}: {r[f'over_{k}']} "
              f"({r[f'over_{k}'] / r['documents']:.0%})")
    test_labels = _split()["test"]["label"]
    counts = (sum(y == 1 for y in test_labels), sum(y == 0 for y in test_labels))
    print(render([r for r in records if not r["method"].startswith("_")], counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
