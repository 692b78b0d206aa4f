#!/usr/bin/env python
"""Per-step time of this package's Trainer vs a bare PyTorch + Accelerate loop vs ``transformers.Trainer``.

Same model (MiniLM by default), same SST-2 batches (padded to a fixed length so every step does the same work),
same batch size, optimizer (AdamW), schedule, clipping and precision; no evaluation or checkpointing inside the
timed steps. The three loops run in one process, in rounds (A, B, C, A, B, C, ...), so that load from anything
else on the machine hits them alike; the table reports the median step time over all timed steps.

    python scripts/bench_trainer.py --steps 20 --rounds 3 --json benchmarks/bench_trainer.json
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(args):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from nlp_cv_tricks.config import DataConfig
    from nlp_cv_tricks.data.text import load_text_classification, tokenize_dataset
    from nlp_cv_tricks.models.factory import resolve_model_name

    path = resolve_model_name(args.model)
    cfg = DataConfig(train_file=str(ROOT / "data/sst2/train.txt"), format="kim2014", max_length=args.seq_len)
    splits = load_text_classification(cfg)
    tok = AutoTokenizer.from_pretrained(path)
    n = args.batch_size * (args.steps + args.warmup) * 2
    ds = tokenize_dataset(splits.train.select(range(min(n, len(splits.train)))), tok, cfg)
    collate = DataCollatorWithPadding(tok, padding="max_length", max_length=args.seq_len)

    def model():
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    return model, tok, ds, collate


def warmup_steps(args) -> int:
    return max(1, int(0.06 * (args.steps + args.warmup)))


class Timer:
    def __init__(self):
        self.stamps = []

    def tick(self):
        self.stamps.append(time.perf_counter())

    def step_times(self, warmup):
        d = [b - a for a, b in zip(self.stamps, self.stamps[1:])]
        return d[warmup:]


def run_ours(args, make_model, tok, ds, collate):
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.engine.events import Trick
    from nlp_cv_tricks.engine.trainer import Trainer

    timer = Timer()

    class Stamp(Trick):
        name = "stamp"

        def on_fit_start(self, trainer):
            timer.tick()

        def after_optimizer_step(self, step):
            timer.tick()

    with tempfile.TemporaryDirectory() as out:
        recipe = load_recipe(ROOT / "recipes/quickstart.yaml", [
            f"train.max_steps={args.steps + args.warmup}", f"train.batch_size={args.batch_size}",
            "train.eval_steps=null", "train.eval_each_epoch=false", "train.progress_bar=false",
            "output.report_to=none", "output.save_best=false", f"output.dir={out}/run", "tricks=[]", "callbacks=[]",
            f"train.mixed_precision={args.precision}", f"train.warmup_steps={warmup_steps(args)}"])
        trainer = Trainer(recipe, model=make_model(), train_dataset=ds, tokenizer=tok, collate_fn=collate,
                          tricks=[Stamp()])
        trainer.save_model = lambda *a, **k: None  # the final save is not part of the step time
        trainer.fit()
    return timer.step_times(args.warmup)


def run_bare(args, make_model, tok, ds, collate):
    from accelerate import Accelerator
    from transformers import get_scheduler

    acc = Accelerator(mixed_precision=args.precision)
    model = make_model()
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, collate_fn=collate)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=5e-5)
    total = args.steps + args.warmup
    sched = get_scheduler("linear", opt, num_warmup_steps=warmup_steps(args), num_training_steps=total)
    model, opt, dl = acc.prepare(model, opt, dl)
    model.train()
    timer = Timer()
    timer.tick()
    step = 0
    while step < total:
        for batch in dl:
            labels = batch.pop("labels")
            logits = model(**batch).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            acc.backward(loss)
            acc.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % 10 == 0:
                loss.item()  # logging, as the other two do
            timer.tick()
            if step >= total:
                break
    return timer.step_times(args.warmup)


def run_hf(args, make_model, tok, ds, collate):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    timer = Timer()

    class Stamp(TrainerCallback):
        def on_train_begin(self, *a, **k):
            timer.tick()

        def on_step_end(self, *a, **k):
            timer.tick()

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, max_steps=args.steps + args.warmup, per_device_train_batch_size=args.batch_size,
            learning_rate=5e-5, weight_decay=0.01, warmup_steps=warmup_steps(args), max_grad_norm=1.0, logging_steps=10,
            save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True,
            bf16=args.precision == "bf16", fp16=args.precision == "fp16", use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0, seed=0)
        Trainer(model=make_model(), args=targs, train_dataset=ds, data_collator=collate,
                callbacks=[Stamp()]).train()
    return timer.step_times(args.warmup)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--steps", type=int, default=20, help="timed steps per round and loop")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"])
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    make_model, tok, ds, collate = build(args)
    loops = {"bare Accelerate loop": run_bare, "nlp-cv-tricks Trainer": run_ours, "transformers.Trainer": run_hf}
    times = {k: [] for k in loops}
    for r in range(args.rounds):
        for name, fn in loops.items():
            t = fn(args, make_model, tok, ds, collate)
            times[name].extend(t)
            print(f"round {r + 1} {name}: median {statistics.median(t) * 1000:.1f} ms/step", file=sys.stderr)
    base = statistics.median(times["bare Accelerate loop"])
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    print(f"\nPer-step time, {args.model}, batch {args.batch_size} x {args.seq_len} tokens, precision {args.precision}, "
          f"{args.rounds} rounds x {args.steps} timed steps, device {device}, torch {torch.__version__}\n")
    print("| loop | median ms/step | p10–p90 ms | ratio to bare loop |")
    print("|---|---|---|---|")
    rows = []
    for name, t in times.items():
        q = statistics.quantiles(t, n=10)
        med = statistics.median(t)
        rows.append({"loop": name, "median_ms": med * 1000, "p10_ms": q[0] * 1000, "p90_ms": q[-1] * 1000,
                     "ratio": med / base, "n": len(t)})
        print(f"| {name} | {med * 1000:.1f} | {q[0] * 1000:.1f}–{q[-1] * 1000:.1f} | {med / base:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "device": device, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
