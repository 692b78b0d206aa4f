"""Classification metrics that work offline.

Computed with scikit-learn (a dependency anyway) rather than with the ``evaluate`` library, whose metric scripts
are fetched from the Hugging Face Hub by name and fail offline. Keys are flat (``accuracy``, ``f1_macro``, ``f1/<label>`` ...)
so they log to JSONL and trackers as they are.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn import metrics as skm

__all__ = ["classification_metrics", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def classification_metrics(
    logits_or_probs: np.ndarray,
    labels: np.ndarray,
    label_names: Optional[Sequence[str]] = None,
    per_class: bool = True,
    confusion: bool = True,
) -> dict:
    """Accuracy, macro/micro/weighted F1, per-class precision/recall/F1, ROC-AUC and the confusion matrix.

    ``logits_or_probs`` has shape (n, num_classes); rows that do not sum to one are treated as logits. ROC-AUC
    is binary for two classes and one-vs-rest (macro) otherwise; it is ``None`` (with ``auc_note``) when a
    class is missing from ``labels``, where it is undefined.
    """
    scores = np.asarray(logits_or_probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"expected scores of shape (n, k) and n labels, got {scores.shape} and {labels.shape}")
    k = scores.shape[1]
    names = [str(n) for n in label_names] if label_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} label names for {k} classes")
    probs = scores if np.allclose(scores.sum(axis=1), 1.0, atol=1e-4) and (scores >= 0).all() else softmax(scores)
    preds = probs.argmax(axis=1)
    all_ids = list(range(k))
    out: dict = {"accuracy": float(skm.accuracy_score(labels, preds)), "n": int(labels.shape[0])}
    for avg in ("macro", "micro", "weighted"):
        out[f"f1_{avg}"] = float(skm.f1_score(labels, preds, labels=all_ids, average=avg, zero_division=0))
    out["precision_macro"] = float(skm.precision_score(labels, preds, labels=all_ids, average="macro", zero_division=0))
    out["recall_macro"] = float(skm.recall_score(labels, preds, labels=all_ids, average="macro", zero_division=0))
    if per_class:
        p, r, f, s = skm.precision_recall_fscore_support(labels, preds, labels=all_ids, zero_division=0)
        for i, name in enumerate(names):
            out[f"precision/{name}"] = float(p[i])
            out[f"recall/{name}"] = float(r[i])
            out[f"f1/{name}"] = float(f[i])
            out[f"support/{name}"] = int(s[i])
    present = np.unique(labels)
    if len(present) < k or k < 2:
        out["auc"] = None
        out["auc_note"] = f"ROC-AUC undefined: classes {sorted(set(all_ids) - set(present.tolist()))} absent from labels"
    elif k == 2:
        out["auc"] = float(skm.roc_auc_score(labels, probs[:, 1]))
    else:
        out["auc"] = float(skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=all_ids))
    if confusion:
        out["confusion_matrix"] = skm.confusion_matrix(labels, preds, labels=all_ids).tolist()
    return out
