"""Fine-tune MiniLM on the bundled SST-2 with transformers.Trainer — plus FGM adversarial training from
nlp-cv-tricks, by changing one class and adding one argument. Prints the dev accuracy.

    python examples/transformers_trainer_fgm.py                      # FGM, one epoch (about 7 min on 2 CPU cores)
    python examples/transformers_trainer_fgm.py --tricks none        # the same run without it
    python examples/transformers_trainer_fgm.py --tricks fgm rdrop   # several tricks
"""

from __future__ import annotations

import argparse

import numpy as np
from datasets import Dataset
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          TrainingArguments)

from _sst2 import DATA, minilm, read_sst2
from nlp_cv_tricks.integrations.transformers import TricksTrainer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=minilm(), help="Hub id or local directory (default: MiniLM-L6)")
    ap.add_argument("--train", default=str(DATA / "train.txt"))
    ap.add_argument("--dev", default=str(DATA / "dev.txt"))
    ap.add_argument("--tricks", nargs="+", default=["fgm"], help="recipe names of the tricks, or 'none'")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="use the first N sentences of each file")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--eval-steps", type=int, default=100)
    ap.add_argument("--output-dir", default="runs/examples/transformers_trainer")
    a = ap.parse_args(argv)

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2)

    def dataset(path):
        texts, labels = read_sst2(path, a.limit)
        return Dataset.from_dict({"text": texts, "labels": labels}).map(
            lambda b: tok(b["text"], truncation=True, max_length=a.max_length), batched=True, remove_columns=["text"])

    def accuracy(pred):
        return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}

    # the settings of recipes/quickstart.yaml: constant rate, no warmup, no clipping, dev accuracy every 100 steps
    args = TrainingArguments(a.output_dir, learning_rate=a.lr, num_train_epochs=a.epochs, max_steps=a.max_steps,
                             per_device_train_batch_size=a.batch_size, per_device_eval_batch_size=128,
                             lr_scheduler_type="constant", weight_decay=0.01, max_grad_norm=0.0,
                             eval_strategy="steps", eval_steps=a.eval_steps, save_strategy="no",
                             report_to="none", seed=a.seed, use_cpu=True, logging_steps=20)
    trainer = TricksTrainer(model=model, args=args, train_dataset=dataset(a.train), eval_dataset=dataset(a.dev),
                            data_collator=DataCollatorWithPadding(tok), compute_metrics=accuracy,
                            tricks=[] if a.tricks == ["none"] else a.tricks)
    trainer.train()
    metrics = trainer.evaluate()
    best = max([r["eval_accuracy"] for r in trainer.state.log_history if "eval_accuracy" in r])
    print(f"dev accuracy {metrics['eval_accuracy']:.4f} at the end, best {best:.4f} over the evaluations "
          f"(tricks: {', '.join(a.tricks)})")
    return metrics


if __name__ == "__main__":
    main()
