#!/usr/bin/env python
"""Benchmark of the text baselines (issue 4): accuracy, training wall time, inference speed and parameters.

Parts (``--parts``, default all):

* ``thucnews``: TextCNN, FastText, DPCNN, TextRNN, TextRNN_Att, TextRCNN trained through the package's trainer
  (``Trainer.from_recipe`` on ``recipes/thucnews_<model>.yaml``) on the 45k THUCNews training titles, scored on
  the 10k dev titles, next to the published test accuracies of 649453932/Chinese-Text-Classification-Pytorch
  (trained on the full 180k, 20 epochs with early stopping, Sogou 300d vectors).
* ``fasttext``: our FastText against the official fastText (``fasttext-wheel``, a benchmark-only extra) on the
  same split, with the same n-gram order, dimension, bucket count and epochs, all on one thread, interleaved in
  ``--fasttext-rounds`` rounds (official; ours, model + SGD alone on pre-tokenised tensors; the same with
  Adagrad; ours through the trainer on ``recipes/thucnews_fasttext.yaml``, end to end = ``Trainer.from_recipe``
  (data, tokenizer, tokenization) + ``fit``), medians and per-round ratios with the load average; then the cost
  of the trainer's input pipeline alone against pre-padded tensors.
* ``speed``: cost only, all models interleaved in rounds (training ms/step at batch 128, inference sents/s),
  so that load drift on a shared machine hits every model alike.
* ``kim``: TextCNN-rand with Kim 2014's settings through the trainer on ``recipes/{sst2,trec,mr}_textcnn.yaml``
  (widths 3,4,5 x 100, dropout 0.5, max-norm 3, Adadelta rho 0.95, batch 50, U(-0.25, 0.25) 300d vectors; TREC
  and MR: seeded stratified 10% dev split of train), against the paper's CNN-rand (SST-2 82.7, TREC 91.2,
  MR 76.1).

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
def _load() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def run_recipe(recipe_path: Path, overrides: list[str], eval_texts, max_length: int) -> dict:
    """Train one recipe through the package's trainer; return accuracy, times, speed, parameters, dev accuracy
    per evaluation and the load average before/after."""
    from nlp_cv_tricks import load_recipe
    from nlp_cv_tricks.runner import build_trainer

    out = tempfile.mkdtemp(prefix="bench_baselines_")
    recipe = load_recipe(recipe_path, overrides + ["train.progress_bar=false", "output.report_to=none",
                                                   "output.save_best=false", f"output.dir={out}"])
    load0 = _load()
    t0 = time.perf_counter()
    trainer = build_trainer(recipe, output_dir=out)
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = trainer.fit()
    fit_s = time.perf_counter() - t0  # the whole call: optimizer + prepare, the loop (train_s), the final save
    if "eval/accuracy" not in res.metrics and trainer.eval_dataset is not None:  # no evaluation while training:
        res.metrics.update(trainer.evaluate())  # the final model, scored after the clock stopped
    model = trainer.accelerator.unwrap_model(trainer.model)
    hist = [json.loads(ln) for ln in (Path(out) / "history.jsonl").read_text().splitlines() if ln.strip()]
    evals = [round(100 * h["eval/accuracy"], 2) for h in hist if "eval/accuracy" in h]
    speed = _inference_speed(model, trainer.tokenizer, eval_texts, max_length=max_length) if eval_texts else None
    return {
        "recipe": str(recipe_path.relative_to(REPO)),
        "overrides": overrides,
        "dev_acc_best": 100 * res.best_metric if res.best_metric is not None else None,
        "dev_acc_final": 100 * res.metrics.get("eval/accuracy", float("nan")),
        "dev_acc_per_eval": evals,
        "best_step": res.best_step,
        "steps": res.global_step,
        "setup_s": round(setup_s, 2),
        "train_s": round(res.train_seconds, 2),
        "fit_s": round(fit_s, 2),
        "infer_sents_per_s": round(speed, 1) if speed else None,
        "params": _params(model),
        "vector_coverage": (model.config.pretrained_vectors or {}).get("token_coverage"),
        "train_size": len(trainer.train_dataset),
        "dev_size": len(trainer.eval_dataset) if trainer.eval_dataset is not None else None,
        "load_before": load0,
        "load_after": _load(),
    }


def part_thucnews(args, rows: list) -> list[dict]:
    """Appends one row per model to ``rows`` (saved after each model by ``args.on_row``)."""
    dev_texts, _ = _read_thuc(THUC / "dev.txt")
    import yaml

    for name in args.models:
        recipe_epochs = yaml.safe_load(open(REPO / "recipes" / f"thucnews_{name}.yaml"))["train"]["epochs"]
        epochs = args.fasttext_epochs if name == "fasttext" else (args.epochs or recipe_epochs)
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
def compact_fasttext(args, train, dev, recipe_kwargs: dict, optimizer: str, lr: float, batch_size: int) -> dict:
    """Our FastText in a minimal loop: the model and optimizer alone on pre-tokenised tensors (each batch cut to
    its longest title), linear lr decay to 0, no evaluation inside. Tokenizer training + encoding are timed apart
    (``tokenize_s``)."""
    from nlp_cv_tricks.engine.optimizer_factory import create_optimizer
    from nlp_cv_tricks.models.text_baselines import build_baseline

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    mk = {k: v for k, v in recipe_kwargs.items() if k != "tokenizer"}
    model, tok = build_baseline("fasttext", mk, recipe_kwargs.get("tokenizer", {}), train[0],
                                {i: str(i) for i in range(10)})
    enc = tok(train[0], padding=True, truncation=True, max_length=32, return_tensors="pt")
    ids, am, y = enc["input_ids"], enc["attention_mask"], torch.tensor(train[1])
    lens = am.sum(1)
    tokenize_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    opt = create_optimizer(model, lr=lr, name=optimizer)
    steps = args.fasttext_epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    model.train()
    g = torch.Generator().manual_seed(args.seed)
    for _ in range(args.fasttext_epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            b = perm[i: i + batch_size]
            n = int(lens[b].max())
            out = model(input_ids=ids[b, :n], attention_mask=am[b, :n], labels=y[b])
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
    return {"dev_acc": 100 * correct / len(dev[0]), "train_s": round(train_s, 2), "tokenize_s": round(tokenize_s, 2),
            "end_to_end_s": round(train_s + tokenize_s, 2), "params": _params(model), "optimizer": optimizer,
            "lr": lr, "batch_size": batch_size}


def _write_fasttext_file(path: Path, texts, labels) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for t, y in zip(texts, labels):  # char level: characters separated by spaces (spaces dropped)
            f.write(f"__label__{y} " + " ".join(ch for ch in t[:32] if not ch.isspace()) + "\n")


def official_fasttext(args, files, dim: int, word_ngrams: int, bucket: int, lr: float) -> dict:
    """``fasttext.train_supervised`` (reads the file, builds the dictionary, trains) on one thread."""
    import fasttext

    tr, dv = files
    t0 = time.perf_counter()
    m = fasttext.train_supervised(str(tr), dim=dim, wordNgrams=word_ngrams, bucket=bucket,
                                  minn=0, maxn=0, epoch=args.fasttext_epochs, lr=lr, thread=1, verbose=0,
                                  seed=args.seed)
    train_s = time.perf_counter() - t0
    n, p, _ = m.test(str(dv))
    return {"dev_acc": 100 * p, "train_s": round(train_s, 2),
            "params": int(m.get_input_matrix().size + m.get_output_matrix().size), "lr": lr,
            "version": getattr(fasttext, "__version__", "fasttext-wheel")}


def _trainer_data_cost(recipe_path: Path, overrides: list[str]) -> dict:
    """One epoch of the trainer's input pipeline alone (``Trainer._train_dataloader``), with tensor batches (the
    default: token columns padded once, each batch cut by index) and with ``data.tensor_batches=false`` (datasets
    rows + ``DataCollatorWithPadding`` per batch)."""
    from nlp_cv_tricks import load_recipe
    from nlp_cv_tricks.runner import build_trainer

    out = tempfile.mkdtemp(prefix="bench_baselines_data_")
    recipe = load_recipe(recipe_path, overrides + ["output.report_to=none", f"output.dir={out}"])
    trainer = build_trainer(recipe, output_dir=out)
    res = {}
    for flag in (True, False):
        trainer.recipe.data.tensor_batches = flag
        t0 = time.perf_counter()
        dl = trainer._train_dataloader()
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = sum(1 for _ in dl)
        epoch_s = time.perf_counter() - t0
        key = "tensor" if flag else "collator"
        res[key] = {"build_s": round(build_s, 3), "epoch_s": round(epoch_s, 3),
                    "ms_per_batch": round(1000 * epoch_s / n, 3)}
        res["batches"] = n
    return res


def _fasttext_run(name, args, files, train, dev, mk, rk, recipe_path, ov) -> dict:
    torch.set_num_threads(args.threads)
    dim, ng, bucket = mk.get("embedding_dim", 100), mk.get("word_ngrams", 2), mk.get("bucket", 250499)
    if name == "official":
        return official_fasttext(args, files, dim, ng, bucket, args.official_lr)
    if name == "ours_compact_sgd":
        return compact_fasttext(args, train, dev, mk, rk["train"]["optimizer"], rk["train"]["learning_rate"],
                                rk["train"]["batch_size"])
    if name == "ours_compact_adagrad":
        return compact_fasttext(args, train, dev, mk, "adagrad", 0.2, rk["train"]["batch_size"])
    t = run_recipe(recipe_path, ov + (["train.eval_each_epoch=false"] if name.endswith("noeval") else []), None, 32)
    # end to end: from_recipe + the whole fit call (building the optimizer -- loading the compiled sparse update
    # --, accelerate.prepare, the loop, saving the final 100 MB model, which the official run does not do)
    return {"dev_acc": t["dev_acc_final"], "dev_acc_best": t["dev_acc_best"], "train_s": t["train_s"],
            "setup_s": t["setup_s"], "fit_s": t["fit_s"], "end_to_end_s": round(t["fit_s"] + t["setup_s"], 2),
            "params": t["params"], "dev_acc_per_eval": t["dev_acc_per_eval"]}


def _in_fresh_process(fn, *fn_args):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, fn_args)


def part_fasttext(args) -> dict:
    """Official fastText vs ours, interleaved in ``--fasttext-rounds`` rounds (official, ours compact with SGD,
    ours compact with Adagrad, ours through the trainer), so machine-load drift hits all alike; medians and the
    per-round ratios are reported, with the load average around every run."""
    import statistics

    import yaml

    train = _read_thuc(THUC / "train.txt", args.max_train)
    dev = _read_thuc(THUC / "dev.txt")
    recipe_path = REPO / "recipes" / "thucnews_fasttext.yaml"
    rk = yaml.safe_load(open(recipe_path))
    mk = rk["model"]["kwargs"]
    dim, ng, bucket = mk.get("embedding_dim", 100), mk.get("word_ngrams", 2), mk.get("bucket", 250499)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ft_"))
    files = (tmp / "train.txt", tmp / "dev.txt")
    _write_fasttext_file(files[0], *train)
    _write_fasttext_file(files[1], *dev)
    ov = [f"train.epochs={args.fasttext_epochs}", f"train.seed={args.seed}"]
    if args.max_train:
        ov.append(f"data.max_train_samples={args.max_train}")
    out = {"setting": {"dim": dim, "word_ngrams": ng, "bucket": bucket, "epochs": args.fasttext_epochs,
                       "threads": 1, "official_lr": args.official_lr, "recipe": str(recipe_path.relative_to(REPO)),
                       "ours_optimizer": rk["train"]["optimizer"], "ours_lr": rk["train"]["learning_rate"],
                       "ours_batch_size": rk["train"]["batch_size"], "rounds": args.fasttext_rounds},
           "runs": {"official": [], "ours_compact_sgd": [], "ours_compact_adagrad": [], "ours_trainer": [],
                    "ours_trainer_noeval": []}}
    runs = out["runs"]
    for r in range(args.fasttext_rounds):
        print(f"[fasttext] round {r + 1}/{args.fasttext_rounds}", flush=True)
        for name in ("official", "ours_compact_sgd", "ours_compact_adagrad", "ours_trainer", "ours_trainer_noeval"):
            load0 = _load()
            # every run in a fresh process, as a user's run is: repeated 100 MB embedding tables in one process
            # slow later rounds down (allocator state), which a user never sees
            res = _in_fresh_process(_fasttext_run, name, args, files, train, dev, mk, rk, recipe_path, ov)
            res["load_before"], res["load_after"] = load0, _load()
            runs[name].append(res)
            print(f"  {name}: {res}", flush=True)
    med = {}
    for name, rs in runs.items():
        med[name] = {k: statistics.median(x[k] for x in rs) for k in ("train_s", "end_to_end_s", "dev_acc")
                     if all(k in x for x in rs)}
    off = [x["train_s"] for x in runs["official"]]
    ratios = {}
    for name in ("ours_compact_sgd", "ours_compact_adagrad", "ours_trainer", "ours_trainer_noeval"):
        for key in ("train_s", "end_to_end_s"):
            per_round = [round(x[key] / o, 2) for x, o in zip(runs[name], off) if key in x]
            if per_round:
                ratios[f"{name}.{key}"] = {"per_round": per_round, "median": statistics.median(per_round)}
    out["median"], out["ratio_to_official"] = med, ratios
    print("[fasttext] trainer input pipeline cost ...", flush=True)
    out["trainer_data_cost"] = _trainer_data_cost(recipe_path, ov)
    print(f"  {out['trainer_data_cost']}", flush=True)
    return out


# -------------------------------------------------------------------------------------------------------------
def part_speed(args) -> list[dict]:
    """Cost only, interleaved so that machine-load drift hits every model alike: each round times
    ``--speed-steps`` training steps (batch 128 real titles, the recipe's model and optimizer) and inference on
    2,048 dev titles for every model in turn; the median over ``--speed-rounds`` rounds is reported."""
    import statistics

    import yaml

    from nlp_cv_tricks.engine.optimizer_factory import create_optimizer
    from nlp_cv_tricks.models.text_baselines import build_baseline

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
        opt_name = rk["train"].get("optimizer", "auto")
        opt_name = None if opt_name == "auto" else ("adam" if opt_name == "adamw" else opt_name)
        opt = create_optimizer(model, lr=rk["train"]["learning_rate"], name=opt_name)
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
def part_kim(args, rows: list) -> list[dict]:
    """TextCNN-rand with Kim's settings through the trainer on ``recipes/{sst2,trec,mr}_textcnn.yaml`` (Adadelta
    rho 0.95, batch 50, dropout 0.5, max-norm 3, U(-0.25, 0.25) vectors; TREC and MR: seeded stratified 10% dev
    split of train via data.dev_fraction), ``--kim-epochs`` epochs (the paper: 25), best dev epoch reported."""
    for seed in args.kim_seeds:
        for name in args.kim_tasks:
            recipe = REPO / "recipes" / f"{name}_textcnn.yaml"
            ov = [f"train.epochs={args.kim_epochs}", f"train.seed={seed}"]
            print(f"[kim] TextCNN-rand on {name}, seed {seed}: {args.kim_epochs} epochs ...", flush=True)
            r = run_recipe(recipe, ov, None, 64)
            r.update(task=name, seed=seed, published_cnn_rand=PUBLISHED_KIM[name], epochs=args.kim_epochs)
            print(f"  dev acc {r['dev_acc_best']:.2f} (per epoch {r['dev_acc_per_eval']}), train {r['train_s']:.1f}s, "
                  f"load {r['load_before']} -> {r['load_after']}", flush=True)
            rows.append(r)
            args.on_row()
    return rows


# -------------------------------------------------------------------------------------------------------------
def _fmt(v, nd=2):
    return "-" if v is None else (f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}")


def render(result: dict) -> str:
    lines = [f"Machine: {result['machine']}; torch threads {result['threads']}.", ""]
    n_train = (result.get("args") or {}).get("max_train")
    train_size = f"{n_train:,}" if n_train else "45k"  # --max-train shrinks the training titles
    if "thucnews" in result:
        lines += [f"### THUCNews (train {train_size} titles -> dev 10k), through the trainer", "",
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
        lines += [f"### FastText vs the official fastText (THUCNews {train_size} -> dev 10k, dim {s['dim']}, wordNgrams "
                  f"{s['word_ngrams']}, bucket {s['bucket']}, {s['epochs']} epochs, 1 thread; {s['rounds']} "
                  "interleaved rounds, medians)", "",
                  "| run | dev acc | train s (median) | x official, per round | x official (median) | "
                  "end-to-end s (median) | x official end-to-end (median) | load avg (1 min) per round |",
                  "|---|---|---|---|---|---|---|---|"]
        labels = {"official": "official fastText (`train_supervised`: read + dictionary + train)",
                  "ours_compact_sgd": f"ours, model + {s['ours_optimizer']} alone (pre-tokenised tensors)",
                  "ours_compact_adagrad": "ours, model + adagrad alone (pre-tokenised tensors)",
                  "ours_trainer": "ours, `Trainer.from_recipe` + `fit` (the recipe: dev evaluation every epoch; "
                                  "train s = the training loop; end to end = from_recipe + the whole fit call)",
                  "ours_trainer_noeval": "ours, the same with `train.eval_each_epoch=false` (scored after `fit`, "
                                         "as the official model is)"}
        for name, label in labels.items():
            rs = f["runs"][name]
            m = f["median"][name]
            rt = f["ratio_to_official"].get(f"{name}.train_s")
            re_ = f["ratio_to_official"].get(f"{name}.end_to_end_s")
            lines.append(f"| {label} | {_fmt(m['dev_acc'])} | {_fmt(m['train_s'], 2)} | "
                         f"{' / '.join(str(x) for x in rt['per_round']) if rt else '1'} | {_fmt(rt['median'] if rt else 1.0, 2)} | "
                         f"{_fmt(m.get('end_to_end_s', m['train_s']), 2)} | {_fmt(re_['median'] if re_ else (1.0 if name == 'official' else None), 2)} | "
                         f"{' / '.join(str(x['load_before'][0]) for x in rs)} |")
        lines.append("")
        if "trainer_data_cost" in f and "tensor" in f["trainer_data_cost"]:
            d = f["trainer_data_cost"]
            lines += [f"Trainer input pipeline alone (one epoch, {d['batches']} batches): tensor batches (default) "
                      f"{d['tensor']['epoch_s']} s ({d['tensor']['ms_per_batch']} ms/batch, after a one-off "
                      f"{d['tensor']['build_s']} s to pad); `data.tensor_batches=false` (datasets rows + "
                      f"DataCollatorWithPadding) {d['collator']['epoch_s']} s ({d['collator']['ms_per_batch']} "
                      "ms/batch).", ""]
    if "speed" in result:
        ft = next((r for r in result["speed"] if r["model"] == "fasttext"), None)
        lines += ["### Cost only, interleaved rounds (THUCNews batches of 128 titles; median of rounds)", "",
                  "| model | train ms/step | x FastText | est. s per 45k-title epoch | infer sents/s | params |",
                  "|---|---|---|---|---|---|"]
        for r in result["speed"]:
            ratio = r["train_ms_per_step"] / ft["train_ms_per_step"] if ft else None
            lines.append(f"| {r['model']} | {_fmt(r['train_ms_per_step'], 1)} | {_fmt(ratio, 1)} | "
                         f"{_fmt(r['train_epoch_s_est'], 0)} | {_fmt(r['infer_sents_per_s'], 0)} | {r['params']:,} |")
        lines.append("")
    if "kim" in result:
        lines += ["### Kim 2014 data, TextCNN-rand (Kim's settings: Adadelta, batch 50, dropout 0.5, max-norm s=3 = max_norm 1.5)", "",
                  "| data | train -> dev | epochs | dev acc (best epoch) | dev acc per epoch | Kim 2014 CNN-rand (test) "
                  "| train s | load avg before -> after |", "|---|---|---|---|---|---|---|---|"]
        splits = {"sst2": "stsa.binary.train -> stsa.binary.dev (sentences only)",
                  "trec": "seeded stratified 90/10 of TREC.train.all", "mr": "seeded stratified 90/10 of rt-polarity.all"}
        for r in result["kim"]:
            lines.append(f"| {r['task']} (seed {r.get('seed', result['args']['seed'])}) | {splits[r['task']]}: "
                         f"{r['train_size']:,} -> {r['dev_size']:,} | {r['epochs']} | "
                         f"{_fmt(r['dev_acc_best'])} | {' / '.join(f'{a:.1f}' for a in r['dev_acc_per_eval'])} | "
                         f"{_fmt(r['published_cnn_rand'])} | {_fmt(r['train_s'], 1)} | {r['load_before'][0]} -> "
                         f"{r['load_after'][0]} |")
        lines.append("")
        import statistics

        lines += ["| data | seeds | dev acc (best epoch) mean ± std | Kim 2014 CNN-rand (test) | difference |",
                  "|---|---|---|---|---|"]
        for task in dict.fromkeys(r["task"] for r in result["kim"]):
            accs = [r["dev_acc_best"] for r in result["kim"] if r["task"] == task]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            pub = PUBLISHED_KIM[task]
            lines.append(f"| {task} | {len(accs)} | {statistics.mean(accs):.2f} ± {sd:.2f} | {pub} | "
                         f"{statistics.mean(accs) - pub:+.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="thucnews,fasttext,speed,kim")
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs of the neural THUCNews models (default: each recipe's own)")
    ap.add_argument("--fasttext-epochs", type=int, default=5,
                    help="FastText epochs in every part (--epochs applies to the other models)")
    ap.add_argument("--fasttext-rounds", type=int, default=3, help="interleaved rounds of official vs ours")
    ap.add_argument("--official-lr", type=float, default=0.5)
    ap.add_argument("--kim-tasks", default="sst2,trec,mr")
    ap.add_argument("--kim-epochs", type=int, default=25, help="Kim 2014: 25")
    ap.add_argument("--kim-seeds", default="1,2,3", help="seeds of the Kim runs (the split seed stays fixed)")
    ap.add_argument("--max-train", type=int, default=None, help="cap the THUCNews training titles")
    ap.add_argument("--speed-steps", type=int, default=10, help="training steps per model and round (part speed)")
    ap.add_argument("--speed-rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="runs/bench/baselines.json",
                    help="results JSON (default under runs/; the committed files in benchmarks/ are written only when named)")
    args = ap.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.kim_tasks = [m for m in args.kim_tasks.split(",") if m]
    args.kim_seeds = [int(x) for x in args.kim_seeds.split(",") if x]
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
