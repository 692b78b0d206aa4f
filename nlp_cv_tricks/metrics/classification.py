"""Classification metrics that work offline.

Computed here with numpy from the confusion matrix (and ROC-AUC from ranks), so evaluation needs only the core
install: the ``evaluate`` library fetches its metric scripts from the Hugging Face Hub by name and fails offline,
and scikit-learn is an optional extra. The definitions are scikit-learn's (``zero_division=0``; ROC-AUC and PR-AUC
one-vs-rest macro for more than two classes; PR-AUC is ``average_precision_score``); ``tests/test_metrics.py`` checks every value against scikit-learn. Keys are flat
(``accuracy``, ``f1_macro``, ``f1/<label>`` ...) so they log to JSONL and trackers as they are.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["classification_metrics", "softmax", "confusion_matrix", "binary_roc_auc", "binary_average_precision"]


# what classification_metrics returns (and the loss the task adds), besides the per-class "<metric>/<label>" values
METRIC_NAMES = ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro", "recall_macro", "auc", "pr_auc",
                "loss", "n")


def classification_metric_names(label_names: Optional[Sequence[str]] = None) -> set[str]:
    """The metric names of a classification evaluation: :data:`METRIC_NAMES` and, per label, ``precision/<label>``,
    ``recall/<label>``, ``f1/<label>`` and ``support/<label>``."""
    names = set(METRIC_NAMES)
    for label in label_names or []:
        names |= {f"{m}/{label}" for m in ("precision", "recall", "f1", "support")}
    return names


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    """``k x k`` counts: row = true class, column = predicted class."""
    return np.bincount(np.asarray(labels, np.int64) * k + np.asarray(preds, np.int64), minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's ``zero_division=0``)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def binary_roc_auc(is_positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > that of a random negative), ties counting one
    half (the Mann-Whitney U statistic over average ranks; equal to the trapezoidal area under the curve)."""
    pos = np.asarray(is_positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positive and negative examples")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    # average rank (1-based) of each run of tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks = np.empty_like(score)
    ranks[order] = np.repeat(avg, counts)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def binary_average_precision(is_positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: the sum over score thresholds of
    (R_n - R_(n-1)) * P_n, tied scores forming one threshold (scikit-learn's ``average_precision_score``, no
    interpolation). On imbalanced data it reflects how the rare class is ranked, where ROC-AUC stays near 1."""
    pos = np.asarray(is_positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(pos.sum())
    if n_pos == 0:
        raise ValueError("PR-AUC needs positive examples")
    order = np.argsort(-score, kind="mergesort")
    s, y = score[order], pos[order]
    tps = np.cumsum(y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # the last row of each run of tied scores
    tp = tps[last].astype(np.float64)
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def classification_metrics(
    logits_or_probs: np.ndarray,
    labels: np.ndarray,
    label_names: Optional[Sequence[str]] = None,
    per_class: bool = True,
    confusion: bool = True,
) -> dict:
    """Accuracy, macro/micro/weighted F1, per-class precision/recall/F1, ROC-AUC, PR-AUC and the confusion matrix.

    ``logits_or_probs`` has shape (n, num_classes); rows that do not sum to one are treated as logits. ROC-AUC
    (``auc``) and PR-AUC (``pr_auc``, average precision) are binary for two classes, with the second class
    (id 1) as the positive one, and one-vs-rest (macro) otherwise; both are ``None`` (with ``auc_note``) when a
    class is missing from ``labels``, where they are undefined.
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
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be class ids in [0, {k}), got values from {labels.min()} to {labels.max()}")
    cm = confusion_matrix(labels, preds, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)  # true rows of each class
    predicted = cm.sum(axis=0).astype(np.float64)
    p, r = _ratio(tp, predicted), _ratio(tp, support)
    f = _ratio(2 * tp, support + predicted)
    n = int(labels.shape[0])
    out: dict = {"accuracy": float(tp.sum() / n) if n else 0.0, "n": n}
    out["f1_macro"] = float(f.mean())
    micro = float(tp.sum() / n) if n else 0.0  # single-label: micro P = micro R = micro F1 = accuracy
    out["f1_micro"] = micro
    out["f1_weighted"] = float((f * support).sum() / support.sum()) if support.sum() else 0.0
    out["precision_macro"] = float(p.mean())
    out["recall_macro"] = float(r.mean())
    if per_class:
        for i, name in enumerate(names):
            out[f"precision/{name}"] = float(p[i])
            out[f"recall/{name}"] = float(r[i])
            out[f"f1/{name}"] = float(f[i])
            out[f"support/{name}"] = int(support[i])
    present = np.unique(labels)
    if len(present) < k or k < 2:
        out["auc"] = out["pr_auc"] = None
        out["auc_note"] = f"ROC-AUC undefined: classes {sorted(set(all_ids) - set(present.tolist()))} absent from labels"
    elif k == 2:
        out["auc"] = binary_roc_auc(labels == 1, probs[:, 1])
        out["pr_auc"] = binary_average_precision(labels == 1, probs[:, 1])
    else:
        out["auc"] = float(np.mean([binary_roc_auc(labels == i, probs[:, i]) for i in all_ids]))
        out["pr_auc"] = float(np.mean([binary_average_precision(labels == i, probs[:, i]) for i in all_ids]))
    if confusion:
        out["confusion_matrix"] = cm.tolist()
    return out
