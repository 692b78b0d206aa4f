#!/usr/bin/env python
"""Benchmark of the text baselines (issue 4): accuracy, training wall time, inference speed and parameters.

Parts (``--parts``, default all):

* ``thucnews``: TextCNN, FastText, DPCNN, TextRNN, TextRNN_Att, TextRCNN trained through the package's trainer
  (``Trainer.from_recipe`` on ``recipes/thucnews_<model>.yaml``) on the 45k THUCNews training titles, scored on
  the 10k dev titles, next to the published test accuracies of 649453932/Chinese-Text-Classification-Pytorch
  (trained on the full 180k, 20 epochs with early stopping, Sogou 300d vectors).
* ``fasttext``: our FastText against the official fastText (``fasttext-wheel``, a benchmark-only extra) on the
  same split, with the same n-gram order, dimension, bucket count and epochs, both on one thread; ours is timed
  twice: through the trainer (end to end: tokenizer, datasets, loop with per-epoch evaluation) and in a compact
  loop over pre-tokenised tensors (the model and optimizer alone).
* ``speed``: cost only, all models interleaved in rounds (training ms/step at batch 128, inference sents/s),
  so that load drift on a shared machine hits every model alike.
* ``kim``: TextCNN-rand (Kim 2014 settings: widths 3,4,5 x 100, dropout 0.5, 300d random vectors, batch 50)
  on SST-2 (train -> dev), TREC (seeded 90/10 split of train) and MR (seeded 90/10 split), against the
  paper's CNN-rand (SST-2 82.7, TREC 91.2, MR 76.1).

Prints a markdown table per part and writes everything to ``--json`` (atomically). Run from the repo root::

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_baselines.py --epochs 2 --json benchmarks/baselines.json

Shrink with ``--epochs``, ``--fasttext-epochs``, ``--max-train`` and ``--models`` on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

DATA = REPO / ".." / "shared" / "data"
THUC = DATA / "thucnews"
KIM = DATA / "kim2014"

PUBLISHED_THUC = {  # test accuracy, full 180k train (README of 649453932/Chinese-Text-Classification-Pytorch)
    "textcnn": 91.22, "textrnn": 91.12, "textrnn_att": 90.90, "textrcnn": 91.54, "fasttext": 92.23, "dpcnn": 91.25,
}
PUBLISHED_KIM = {"sst2": 82.7, "trec": 91.2, "mr": 76.1}  # Kim 2014 Table 2, CNN-rand
ALL_MODELS = ["textcnn", "fasttext", "dpcnn", "textrnn", "textrnn_att", "textrcnn"]


def _setup():
    import nlp_cv_tricks  # noqa: F401
    from nlp_cv_tricks.models.text_baselines import register_architectures, register_auto_classes

    register_auto_classes()
    register_architectures()


def _read_thuc(path: Path, n=None):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if n is not None and i >= n:
                break
            t, y = line.rstrip("\n").rsplit("\t", 1)
            texts.append(t)
            labels.append(int(y))
    return texts, labels


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def _inference_speed(model, tokenizer, texts, batch_size=512, max_length=32) -> float:
    """Sentences per second from raw text: tokenization + forward, batches of ``batch_size``."""
    model.eval()
    t = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i: i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        model(**enc)
    return len(texts) / (time.perf_counter() - t)


# -------------------------------------------------------------------------------------------------------------
def run_recipe(recipe_path: Path, overrides: list[str], eval_texts, max_length: int) -> dict:
    """Train one recipe through the package's trainer; return accuracy, times, speed, parameters."""
    from nlp_cv_tricks import load_recipe
    from nlp_cv_tricks.engine.trainer import Trainer

    out = tempfile.mkdtemp(prefix="bench_baselines_")
    recipe = load_recipe(recipe_path, overrides + ["train.progress_bar=false", "output.report_to=none",
                                                   "output.save_best=false", f"output.dir={out}"])
    t0 = time.perf_counter()
    trainer = Trainer.from_recipe(recipe, output_dir=out)
    setup_s = time.perf_counter() - t0
    res = trainer.fit()
    model = trainer.accelerator.unwrap_model(trainer.model)
    speed = _inference_speed(model, trainer.tokenizer, eval_texts, max_length=max_length)
    return {
        "recipe": str(recipe_path.relative_to(REPO)),
        "overrides": overrides,
        "dev_acc_best": 100 * res.best_metric if res.best_metric is not None else None,
        "dev_acc_final": 100 * res.metrics.get("eval/accuracy", float("nan")),
        "best_step": res.best_step,
        "steps": res.global_step,
        "setup_s": round(setup_s, 2),
        "train_s": round(res.train_seconds, 2),
        "infer_sents_per_s": round(speed, 1),
        "params": _params(model),
        "vector_coverage": (model.config.pretrained_vectors or {}).get("token_coverage"),
    }


def part_thucnews(args, rows: list) -> list[dict]:
    """Appends one row per model to ``rows`` (saved after each model by ``args.on_row``)."""
    dev_texts, _ = _read_thuc(THUC / "dev.txt")
    for name in args.models:
        epochs = args.fasttext_epochs if name == "fasttext" else args.epochs
        ov = [f"train.epochs={epochs}", f"train.seed={args.seed}"]
        if args.max_train:
            ov.append(f"data.max_train_samples={args.max_train}")
        print(f"[thucnews] {name}: {epochs} epochs ...", flush=True)
        r = run_recipe(REPO / "recipes" / f"thucnews_{name}.yaml", ov, dev_texts, 32)
        r.update(model=name, epochs=epochs, published_test_acc=PUBLISHED_THUC.get(name))
        print(f"  dev acc {r['dev_acc_best']:.2f} (final {r['dev_acc_final']:.2f}), train {r['train_s']:.1f}s, "
              f"{r['infer_sents_per_s']:.0f} sents/s, {r['params']:,} params", flush=True)
        rows.append(r)
        args.on_row()
    return rows


# -------------------------------------------------------------------------------------------------------------
def compact_fasttext(args, train, dev, recipe_kwargs: dict, lr: float, batch_size: int) -> dict:
    """Our FastText in a minimal loop: pre-tokenised tensors, Adagrad, linear lr decay, no evaluation inside."""
    from nlp_cv_tricks.models.text_baselines import build_baseline, create_optimizer

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    mk = {k: v for k, v in recipe_kwargs.items() if k != "tokenizer"}
    model, tok = build_baseline("fasttext", mk, recipe_kwargs.get("tokenizer", {}), train[0],
                                {i: str(i) for i in range(10)})
    enc = tok(train[0], padding=True, truncation=True, max_length=32, return_tensors="pt")
    ids, am, y = enc["input_ids"], enc["attention_mask"], torch.tensor(train[1])
    opt = create_optimizer(model, lr=lr)
    steps = args.fasttext_epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    model.train()
    g = torch.Generator().manual_seed(args.seed)
    for _ in range(args.fasttext_epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            b = perm[i: i + batch_size]
            lens = am[b].sum(1).max()
            out = model(input_ids=ids[b, :lens], attention_mask=am[b, :lens], labels=y[b])
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            sched.step()
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = 0
        for i in range(0, len(dev[0]), 1024):
            e = tok(dev[0][i: i + 1024], padding=True, truncation=True, max_length=32, return_tensors="pt")
            correct += (model(**e).logits.argmax(-1) == torch.tensor(dev[1][i: i + 1024])).sum().item()
    return {"dev_acc": 100 * correct / len(dev[0]), "train_s": round(train_s, 2),
            "infer_sents_per_s": round(_inference_speed(model, tok, dev[0]), 1), "params": _params(model),
            "lr": lr, "batch_size": batch_size}


def official_fasttext(args, train, dev, dim: int, word_ngrams: int, bucket: int, lr: float) -> dict:
    import fasttext

    tmp = Path(tempfile.mkdtemp(prefix="bench_ft_"))

    def write(path, texts, labels):
        with open(path, "w", encoding="utf-8") as f:
            for t, y in zip(texts, labels):  # char level: characters separated by spaces (spaces dropped)
                f.write(f"__label__{y} " + " ".join(ch for ch in t[:32] if not ch.isspace()) + "\n")

    write(tmp / "train.txt", *train)
    write(tmp / "dev.txt", *dev)
    t0 = time.perf_counter()
    m = fasttext.train_supervised(str(tmp / "train.txt"), dim=dim, wordNgrams=word_ngrams, bucket=bucket,
                                  minn=0, maxn=0, epoch=args.fasttext_epochs, lr=lr, thread=1, verbose=0,
                                  seed=args.seed)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    n, p, _ = m.test(str(tmp / "dev.txt"))
    test_s = time.perf_counter() - t0
    return {"dev_acc": 100 * p, "train_s": round(train_s, 2), "infer_sents_per_s": round(n / test_s, 1),
            "params": int(m.get_input_matrix().size + m.get_output_matrix().size), "lr": lr,
            "version": getattr(fasttext, "__version__", "fasttext-wheel")}


def part_fasttext(args) -> dict:
    import yaml

    train = _read_thuc(THUC / "train.txt", args.max_train)
    dev = _read_thuc(THUC / "dev.txt")
    rk = yaml.safe_load(open(REPO / "recipes" / "thucnews_fasttext.yaml"))
    mk = rk["model"]["kwargs"]
    dim, ng, bucket = mk.get("embedding_dim", 100), mk.get("word_ngrams", 2), mk.get("bucket", 250499)
    out = {"setting": {"dim": dim, "word_ngrams": ng, "bucket": bucket, "epochs": args.fasttext_epochs,
                       "threads": 1}}
    print(f"[fasttext] official fastText (dim {dim}, wordNgrams {ng}, bucket {bucket}, "
          f"{args.fasttext_epochs} epochs, lr {args.official_lr}) ...", flush=True)
    out["official"] = official_fasttext(args, train, dev, dim, ng, bucket, args.official_lr)
    print(f"  {out['official']}", flush=True)
    print("[fasttext] ours, compact loop ...", flush=True)
    out["ours_compact"] = compact_fasttext(args, train, dev, mk, rk["train"]["learning_rate"],
                                           rk["train"]["batch_size"])
    print(f"  {out['ours_compact']}", flush=True)
    ov = [f"train.epochs={args.fasttext_epochs}", f"train.seed={args.seed}"]
    if args.max_train:
        ov.append(f"data.max_train_samples={args.max_train}")
    print("[fasttext] ours, through the trainer ...", flush=True)
    r = run_recipe(REPO / "recipes" / "thucnews_fasttext.yaml", ov, dev[0], 32)
    out["ours_trainer"] = {"dev_acc": r["dev_acc_final"], "dev_acc_best": r["dev_acc_best"],
                           "train_s": r["train_s"], "setup_s": r["setup_s"],
                           "end_to_end_s": round(r["train_s"] + r["setup_s"], 2),
                           "infer_sents_per_s": r["infer_sents_per_s"], "params": r["params"]}
    print(f"  {out['ours_trainer']}", flush=True)
    # a second official run right after ours, so machine-load drift shows up in the ratio's spread
    out["official_rerun"] = official_fasttext(args, train, dev, dim, ng, bucket, args.official_lr)
    print(f"  official rerun {out['official_rerun']}", flush=True)
    return out


# -------------------------------------------------------------------------------------------------------------
def part_speed(args) -> list[dict]:
    """Cost only, interleaved so that machine-load drift hits every model alike: each round times
    ``--speed-steps`` training steps (batch 128 real titles, the recipe's model and optimizer) and inference on
    2,048 dev titles for every model in turn; the median over ``--speed-rounds`` rounds is reported."""
    import statistics

    import yaml

    from nlp_cv_tricks.models.text_baselines import build_baseline, create_optimizer

    train = _read_thuc(THUC / "train.txt", args.max_train or 45000)
    dev = _read_thuc(THUC / "dev.txt", 2048)[0]
    ids = {i: str(i) for i in range(10)}
    built = {}
    for name in args.models:
        rk = yaml.safe_load(open(REPO / "recipes" / f"thucnews_{name}.yaml"))
        mk = dict(rk["model"]["kwargs"])
        tk = mk.pop("tokenizer", {})
        torch.manual_seed(args.seed)
        model, tok = build_baseline(name, mk, tk, train[0], ids)
        opt = create_optimizer(model, lr=rk["train"]["learning_rate"])
        built[name] = (model, tok, opt)
    g = torch.Generator().manual_seed(args.seed)
    times = {n: {"train": [], "infer": []} for n in built}
    for _ in range(args.speed_rounds):
        for name, (model, tok, opt) in built.items():
            model.train()
            batches = []
            for _ in range(args.speed_steps):
                idx = torch.randint(len(train[0]), (128,), generator=g).tolist()
                enc = tok([train[0][i] for i in idx], padding=True, truncation=True, max_length=32, return_tensors="pt")
                batches.append((enc, torch.tensor([train[1][i] for i in idx])))
            t = time.perf_counter()
            for enc, y in batches:
                loss = model(**enc, labels=y).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            times[name]["train"].append((time.perf_counter() - t) / args.speed_steps)
            times[name]["infer"].append(_inference_speed(model, tok, dev))
    rows = []
    for name in built:
        step = statistics.median(times[name]["train"])
        rows.append({"model": name, "train_ms_per_step": round(1000 * step, 1),
                     "train_epoch_s_est": round(step * 45000 / 128, 1),
                     "infer_sents_per_s": round(statistics.median(times[name]["infer"]), 1),
                     "params": _params(built[name][0])})
        print(f"  {rows[-1]}", flush=True)
    return rows


# -------------------------------------------------------------------------------------------------------------
def _read_kim(path: Path, encoding: str = "latin-1"):
    """``<label> <text>`` lines (split on "\\n" only: rt-polarity.all has NEL (0x85) characters inside lines,
    which ``str.splitlines`` would treat as line breaks; they are replaced by spaces here)."""
    rows = []
    with open(path, encoding=encoding, newline="") as f:
        for line in f.read().split("\n"):
            line = "".join(" " if ch in "\x85\x0b\x0c\x1c\x1d\x1e\u2028\u2029\r" else ch for ch in line).strip()
            if line:
                y, t = line.split(" ", 1)
                rows.append((int(y), t))
    return rows


def part_kim(args, rows: list) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_kim_"))
    rng = random.Random(args.seed)

    def split(rows, name):
        rows = rows[:]
        rng.shuffle(rows)
        k = len(rows) // 10
        for part, sub in (("train", rows[k:]), ("dev", rows[:k])):
            with open(tmp / f"{name}.{part}", "w", encoding="utf-8") as f:
                f.writelines(f"{y} {t}\n" for y, t in sub)
        return tmp / f"{name}.train", tmp / f"{name}.dev"

    tasks = {"sst2": (KIM / "stsa.binary.train", KIM / "stsa.binary.dev", ["negative", "positive"])}
    tr, dv = split(_read_kim(KIM / "TREC.train.all"), "trec")
    tasks["trec"] = (tr, dv, ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"])
    tr, dv = split(_read_kim(KIM / "rt-polarity.all"), "mr")
    tasks["mr"] = (tr, dv, ["negative", "positive"])
    for name in args.kim_tasks:
        tr, dv, labels = tasks[name]
        dev_texts = [t for _, t in _read_kim(dv, "utf-8")]
        ov = [f"data.train_file={tr}", f"data.dev_file={dv}", f"data.label_names=[{','.join(labels)}]",
              f"train.epochs={args.kim_epochs}", f"train.seed={args.seed}", f"name=kim_{name}_textcnn"]
        print(f"[kim] TextCNN-rand on {name}: {args.kim_epochs} epochs ...", flush=True)
        r = run_recipe(REPO / "recipes" / "sst2_textcnn.yaml", ov, dev_texts, 64)
        r.update(task=name, published_cnn_rand=PUBLISHED_KIM[name], epochs=args.kim_epochs)
        print(f"  dev acc {r['dev_acc_best']:.2f}, train {r['train_s']:.1f}s", flush=True)
        rows.append(r)
        args.on_row()
    return rows


# -------------------------------------------------------------------------------------------------------------
def _fmt(v, nd=2):
    return "-" if v is None else (f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}")


def render(result: dict) -> str:
    lines = [f"Machine: {result['machine']}; torch threads {result['threads']}.", ""]
    if "thucnews" in result:
        lines += ["### THUCNews (train 45k titles -> dev 10k), through the trainer", "",
                  "| model | epochs | dev acc (best epoch) | dev acc (last) | published test acc (180k) | train s | "
                  "train s / FastText | infer sents/s | params |",
                  "|---|---|---|---|---|---|---|---|---|"]
        ft = next((r for r in result["thucnews"] if r["model"] == "fasttext"), None)
        for r in result["thucnews"]:
            ratio = r["train_s"] / ft["train_s"] if ft else None
            lines.append(f"| {r['model']} | {r['epochs']} | {_fmt(r['dev_acc_best'])} | {_fmt(r['dev_acc_final'])} | "
                         f"{_fmt(r['published_test_acc'])} | {_fmt(r['train_s'], 1)} | {_fmt(ratio, 1)} | "
                         f"{_fmt(r['infer_sents_per_s'], 0)} | {r['params']:,} |")
        lines.append("")
    if "fasttext" in result:
        f = result["fasttext"]
        s = f["setting"]
        o, o2 = f["official"], f.get("official_rerun", f["official"])
        off_t = (o["train_s"] + o2["train_s"]) / 2
        lines += [f"### FastText vs the official fastText (THUCNews, dim {s['dim']}, wordNgrams {s['word_ngrams']}, "
                  f"bucket {s['bucket']}, {s['epochs']} epochs, 1 thread)", "",
                  "| run | dev acc | train s | / official (mean of 2 runs) | infer sents/s | params |",
                  "|---|---|---|---|---|---|"]
        for label, r, t in (("official fastText", o, o["train_s"]), ("official fastText (rerun)", o2, o2["train_s"]),
                            ("ours, compact loop", f["ours_compact"], f["ours_compact"]["train_s"]),
                            ("ours, trainer (fit only)", f["ours_trainer"], f["ours_trainer"]["train_s"]),
                            ("ours, trainer (end to end)", f["ours_trainer"], f["ours_trainer"]["end_to_end_s"])):
            lines.append(f"| {label} | {_fmt(r['dev_acc'])} | {_fmt(t, 2)} | {_fmt(t / off_t, 2)} | "
                         f"{_fmt(r['infer_sents_per_s'], 0)} | {r['params']:,} |")
        lines.append("")
    if "speed" in result:
        ft = next((r for r in result["speed"] if r["model"] == "fasttext"), None)
        lines += ["### Cost only, interleaved rounds (THUCNews batches of 128 titles; median of rounds)", "",
                  "| model | train ms/step | x FastText | est. s per 45k epoch | infer sents/s | params |",
                  "|---|---|---|---|---|---|"]
        for r in result["speed"]:
            ratio = r["train_ms_per_step"] / ft["train_ms_per_step"] if ft else None
            lines.append(f"| {r['model']} | {_fmt(r['train_ms_per_step'], 1)} | {_fmt(ratio, 1)} | "
                         f"{_fmt(r['train_epoch_s_est'], 0)} | {_fmt(r['infer_sents_per_s'], 0)} | {r['params']:,} |")
        lines.append("")
    if "kim" in result:
        lines += ["### Kim 2014 data, TextCNN-rand", "",
                  "| data | split | epochs | dev acc (best epoch) | Kim 2014 CNN-rand | train s |", "|---|---|---|---|---|---|"]
        splits = {"sst2": "train 6,920 -> dev 872 (sentences only)", "trec": "seeded 90/10 of train 5,452",
                  "mr": "seeded 90/10 of 10,662"}
        for r in result["kim"]:
            lines.append(f"| {r['task']} | {splits[r['task']]} | {r['epochs']} | {_fmt(r['dev_acc_best'])} | "
                         f"{_fmt(r['published_cnn_rand'])} | {_fmt(r['train_s'], 1)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="thucnews,fasttext,speed,kim")
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the neural THUCNews models")
    ap.add_argument("--fasttext-epochs", type=int, default=5)
    ap.add_argument("--official-lr", type=float, default=0.5)
    ap.add_argument("--kim-tasks", default="sst2,trec,mr")
    ap.add_argument("--kim-epochs", type=int, default=10)
    ap.add_argument("--max-train", type=int, default=None, help="cap the THUCNews training titles")
    ap.add_argument("--speed-steps", type=int, default=10, help="training steps per model and round (part speed)")
    ap.add_argument("--speed-rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="benchmarks/baselines.json")
    args = ap.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.kim_tasks = [m for m in args.kim_tasks.split(",") if m]
    parts = [p for p in args.parts.split(",") if p]
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    _setup()
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
                         f"torch {torch.__version__}", "threads": args.threads, "args": dict(vars(args)),
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    path = Path(args.json)

    def save():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)

    if "fasttext" in parts:
        result["fasttext"] = part_fasttext(args)
        save()
    args.on_row = save
    if "thucnews" in parts:
        result["thucnews"] = []
        part_thucnews(args, result["thucnews"])
        save()
    if "speed" in parts:
        print("[speed] interleaved cost measurement ...", flush=True)
        result["speed"] = part_speed(args)
        save()
    if "kim" in parts:
        result["kim"] = []
        part_kim(args, result["kim"])
        save()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    save()
    print()
    print(render(result))


if __name__ == "__main__":
    main()
