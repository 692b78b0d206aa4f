"""Step time of the tricks inside other loops, side by side in one process (ratios, not absolute times).

Pairs, each over the same micro-batches of the bundled SST-2 (MiniLM, batch 32, 64 tokens):
  * ``transformers.Trainer``  vs  ``TricksTrainer`` with no trick          (goal: <= 1.02x)
  * the package's trainer with FGM  vs  ``TricksTrainer`` with FGM          (goal: <= 1.05x)
  * a plain Accelerate loop (``loss.backward()``)  vs  ``TrickStep`` with no trick
Each measurement trains ``--steps`` optimizer steps after ``--warmup`` steps; the pairs alternate ``--repeats``
times and the median of the per-pair ratios is reported.

    OMP_NUM_THREADS=2 python scripts/bench_integrations.py --steps 20 --repeats 3 --out benchmarks/integrations.json
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _batches(tok, n, batch_size, max_length):
    from transformers import DataCollatorWithPadding

    lines = (ROOT / "data" / "sst2" / "train.txt").read_text(encoding="utf-8").splitlines()[: n * batch_size]
    collate = DataCollatorWithPadding(tok)
    rows = [{**tok(ln.partition(" ")[2], truncation=True, max_length=max_length), "labels": int(ln[0])}
            for ln in lines]
    return [collate(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]


def _time_hf(init, batches, tricks, warmup, use_tricks_trainer):
    import transformers
    from transformers import TrainerCallback, TrainingArguments

    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    times = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter())

    base = TricksTrainer if use_tricks_trainer else transformers.Trainer

    class InOrder(base):
        def _get_train_sampler(self, train_dataset=None):
            return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)

    args = TrainingArguments("/tmp/bench_integrations", per_device_train_batch_size=1, max_steps=len(batches),
                             learning_rate=1e-4, report_to="none", use_cpu=True, logging_steps=10_000,
                             save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    kw = {"tricks": tricks} if use_tricks_trainer else {}
    trainer = InOrder(model=copy.deepcopy(init), args=args, train_dataset=batches,
                      data_collator=lambda items: items[0], callbacks=[Clock()], **kw)
    trainer.train()
    return (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def _time_ours(recipe_overrides, n_steps, warmup, tricks):
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.engine.events import Callback
    from nlp_cv_tricks.runner import build_trainer

    times = []

    class Clock(Callback):
        name = "clock"

        def after_optimizer_step(self, step):
            times.append(time.perf_counter())

    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml",
                         [*recipe_overrides, f"train.max_steps={n_steps}", f"tricks={json.dumps(tricks)}"])
    trainer = build_trainer(recipe)
    trainer.tricks.append(Clock())
    trainer.fit()
    return (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def _time_loop(init, batches, tricks, warmup, use_trick_step):
    from accelerate import Accelerator

    from nlp_cv_tricks.engine.trainer import reset_accelerate_state
    from nlp_cv_tricks.integrations import TrickStep

    reset_accelerate_state()
    acc = Accelerator(cpu=True)
    model = copy.deepcopy(init)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model, opt = acc.prepare(model, opt)
    model.train()
    ts = TrickStep(model, tricks, accelerator=acc) if use_trick_step else None
    times = []
    for batch in batches:
        with acc.accumulate(model):
            if ts is not None:
                ts.step(batch)
            else:
                acc.backward(model(**batch).loss)
            opt.step()
            opt.zero_grad()
            if ts is not None:
                ts.after_optimizer_step()
        times.append(time.perf_counter())
    return (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nlp_cv_tricks.models.factory import resolve_model_name

    path = resolve_model_name("minilm-l6")
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    init = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    n = a.steps + a.warmup
    batches = _batches(tok, n, a.batch_size, a.max_length)
    ours_overrides = [f"train.batch_size={a.batch_size}", f"data.max_length={a.max_length}", "train.eval_steps=null",
                      "train.eval_each_epoch=false", "output.save_best=false", "output.report=false",
                      "output.report_to=none", "train.progress_bar=false", "output.dir=/tmp/bench_integrations_ours",
                      "output.overwrite=true", "data.group_by_length=false"]

    pairs = {
        "transformers.Trainer vs TricksTrainer (no trick)": (
            lambda: _time_hf(init, batches, [], a.warmup, False), lambda: _time_hf(init, batches, [], a.warmup, True)),
        "package trainer FGM vs TricksTrainer FGM": (
            lambda: _time_ours(ours_overrides, n, a.warmup, ["fgm"]),
            lambda: _time_hf(init, batches, ["fgm"], a.warmup, True)),
        "Accelerate loop vs TrickStep (no trick)": (
            lambda: _time_loop(init, batches, [], a.warmup, False), lambda: _time_loop(init, batches, [], a.warmup, True)),
    }
    records = []
    for name, (base, new) in pairs.items():
        ratios, tb, tn = [], [], []
        for _ in range(a.repeats):
            b, x = base(), new()
            tb.append(b)
            tn.append(x)
            ratios.append(x / b)
        records.append({"pair": name, "base_s_per_step": tb, "new_s_per_step": tn, "ratios": ratios,
                        "median_ratio": statistics.median(ratios)})
    print(f"\nMiniLM-L6, batch {a.batch_size}, {a.max_length} tokens, {a.steps} timed steps after {a.warmup}, "
          f"{a.repeats} alternating repeats; {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads\n")
    print("| pair | base s/step (median) | new s/step (median) | ratio (median of pairs) | ratios |")
    print("|---|---|---|---|---|")
    for r in records:
        print(f"| {r['pair']} | {statistics.median(r['base_s_per_step']):.3f} | "
              f"{statistics.median(r['new_s_per_step']):.3f} | {r['median_ratio']:.3f} | "
              f"{', '.join(f'{x:.3f}' for x in r['ratios'])} |")
    if a.out:
        Path(a.out).write_text(json.dumps({"args": vars(a), "records": records}, indent=2))


if __name__ == "__main__":
    main()
