"""Derive a harder, more imbalanced SMS spam training set from ``sms_spam/`` under the data root.

Keeps every ham message of ``train.csv`` and a seeded random sample of its spam messages (default 100 of 508:
2.9% spam instead of 13.0%), in the original row order; ``dev.csv`` is copied unchanged (13.8% spam), so the
dev metrics of the two versions are comparable. Spam is subsampled in the training split only: a model trained
on it also meets a prior shift at evaluation (2.9% → 13.8%), as a detector trained on a rare class often does.

    python scripts/make_sms_spam_hard.py --out runs/data/sms_spam_hard [--spam 100] [--seed 0]

Prints the counts and the sha256 of the written files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp_cv_tricks.data.root import DATA_ENV, DEFAULT_DATA_ROOT  # noqa: E402
from nlp_cv_tricks.utils.io import atomic_write_text  # noqa: E402


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _csv_text(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["text", "label"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (must not hold train.csv/dev.csv already)")
    ap.add_argument("--spam", type=int, default=100, help="spam messages to keep in train (default 100)")
    ap.add_argument("--seed", type=int, default=0, help="seed of random.Random for the sample (default 0)")
    ap.add_argument("--source", default=None, help=f"the sms_spam folder (default: sms_spam under ${DATA_ENV} or "
                                                   f"{DEFAULT_DATA_ROOT})")
    args = ap.parse_args(argv)
    src = Path(args.source or Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT) / "sms_spam")
    if not (src / "train.csv").is_file() or not (src / "dev.csv").is_file():
        ap.error(f"{src} has no train.csv/dev.csv; give the sms_spam folder with --source")
    train = _read(src / "train.csv")
    dev = _read(src / "dev.csv")
    spam_idx = [i for i, r in enumerate(train) if r["label"] == "spam"]
    if not 0 < args.spam <= len(spam_idx):
        ap.error(f"--spam must be in 1..{len(spam_idx)}, got {args.spam}")
    keep = set(random.Random(args.seed).sample(spam_idx, args.spam))
    rows = [r for i, r in enumerate(train) if r["label"] != "spam" or i in keep]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "dev.csv"):
        if (out / name).exists():
            ap.error(f"{out / name} exists; choose another --out or remove the file you made")
    for name, data in (("train.csv", rows), ("dev.csv", dev)):
        text = _csv_text(data)
        atomic_write_text(out / name, text)
        n_spam = sum(r["label"] == "spam" for r in data)
        print(f"{out / name}: {len(data)} messages, {n_spam} spam ({100 * n_spam / len(data):.1f}%), "
              f"sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
