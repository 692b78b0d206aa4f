"""Prediction files of the classification tasks: one row per input (where it comes from, the predicted label
and its probability, the gold label when known, the probability of every label), written as JSONL or CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from ..metrics.classification import softmax
from ..utils.io import atomic_write_text

__all__ = ["prediction_rows", "write_rows"]


def prediction_rows(lead: list[dict], logits: np.ndarray, names: list[str], gold) -> list[dict]:
    """One output row per input: ``lead[i]`` (where it comes from), the predicted label and its probability, the
    gold label when known, then the probability of every label."""
    probs = softmax(logits.astype(np.float64)) if len(logits) else logits
    rows = []
    for i, p in enumerate(probs):
        j = int(p.argmax())
        row = {**lead[i], "pred_label": names[j], "pred_prob": round(float(p[j]), 6)}
        if gold is not None:
            row["label"] = names[int(gold[i])]
        row.update({f"prob/{n}": round(float(p[k]), 6) for k, n in enumerate(names)})
        rows.append(row)
    return rows


def write_rows(out: str, rows: list[dict]) -> None:
    """``rows`` to ``out`` atomically: CSV when ``out`` ends in .csv, else JSONL."""
    if out.endswith(".csv"):
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        atomic_write_text(out, buf.getvalue())
    else:
        atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
