"""Your own Accelerate loop with R-Drop from nlp-cv-tricks: ``loss.backward()`` becomes ``tricks.step(batch)``.
Gradient accumulation and DDP work as in Accelerate (``accelerate launch --multi_gpu --num_processes 2 ...``).

    python examples/accelerate_loop_rdrop.py
    python examples/accelerate_loop_rdrop.py --tricks fgm ema --grad-accum 2
"""

from __future__ import annotations

import argparse

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, get_scheduler

from _sst2 import DATA, minilm, read_sst2
from nlp_cv_tricks.integrations import TrickStep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=minilm())
    ap.add_argument("--train", default=str(DATA / "train.txt"))
    ap.add_argument("--dev", default=str(DATA / "dev.txt"))
    ap.add_argument("--tricks", nargs="+", default=["rdrop"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)

    accelerator = Accelerator(gradient_accumulation_steps=a.grad_accum, cpu=not torch.cuda.is_available())
    set_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2)
    collate = DataCollatorWithPadding(tok)

    def loader(path, shuffle, batch_size):
        texts, labels = read_sst2(path, a.limit)
        rows = [{**tok(t, truncation=True, max_length=a.max_length), "labels": y} for t, y in zip(texts, labels)]
        return torch.utils.data.DataLoader(rows, batch_size=batch_size, shuffle=shuffle, collate_fn=collate)

    train_dl, dev_dl = loader(a.train, True, a.batch_size), loader(a.dev, False, 128)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    total = a.max_steps or a.epochs * len(train_dl) // a.grad_accum
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=total // 10, num_training_steps=total)
    model, optimizer, train_dl, dev_dl, scheduler = accelerator.prepare(model, optimizer, train_dl, dev_dl, scheduler)

    tricks = TrickStep(model, a.tricks, accelerator=accelerator)          # <- nlp-cv-tricks
    model.train()
    losses = []
    for epoch in range(a.epochs):
        for batch in train_dl:
            with accelerator.accumulate(model):
                loss = tricks.step(batch)          # <- was: loss = model(**batch).loss; accelerator.backward(loss)
                losses.append(loss.item())
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                tricks.after_optimizer_step()                             # <- EMA and step-count hooks
            if tricks.global_step >= total:
                break
        if tricks.global_step >= total:
            break
    logs = tricks.pop_logs()

    model.eval()
    correct = n = 0
    with torch.no_grad():
        for batch in dev_dl:
            pred = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1)
            pred, labels = accelerator.gather_for_metrics((pred, batch["labels"]))
            correct += int((pred == labels).sum())
            n += len(labels)
    accuracy = correct / n
    accelerator.print(f"dev accuracy {accuracy:.4f} after {tricks.global_step} steps, mean train loss "
                      f"{sum(losses) / max(len(losses), 1):.4f} (tricks: {', '.join(a.tricks)}; "
                      + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()) + ")")
    return accuracy


if __name__ == "__main__":
    main()
