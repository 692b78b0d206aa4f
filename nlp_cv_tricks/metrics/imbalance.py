"""The imbalance signal: what got worse (AUC, macro-F1, the minority classes' recall and F1) between two
evaluations while the dev loss improved -- the numbers behind the ``imbalance_watch`` callback
(:mod:`nlp_cv_tricks.callbacks.imbalance_watch`) and the run doctor. Plain Python on metric dicts."""

from __future__ import annotations

import math
from typing import Optional, Sequence

__all__ = ["FLAG_KEY", "minority_labels", "imbalance_signal"]

FLAG_KEY = "eval/imbalance_warning"


def _num(v) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def minority_labels(metrics: dict, prefix: str = "eval/", ratio: float = 1.5) -> list[str]:
    """Labels whose support (``<prefix>support/<label>``) is below the mean support, when the largest class is
    at least ``ratio`` times the smallest; ``[]`` when no support is logged or the classes are balanced."""
    support = {k[len(prefix) + len("support/"):]: _num(v) for k, v in metrics.items()
               if k.startswith(prefix + "support/")}
    support = {k: v for k, v in support.items() if v is not None}
    if len(support) < 2 or min(support.values()) <= 0:
        return []
    if max(support.values()) / min(support.values()) < ratio:
        return []
    mean = sum(support.values()) / len(support)
    return sorted(k for k, v in support.items() if v < mean)


def imbalance_signal(prev: dict, cur: dict, minority: Optional[Sequence[str]] = None, drop: float = 0.03,
                     prefix: str = "eval/") -> list[dict]:
    """What got worse between two evaluations while the dev loss improved.

    Args:
        prev, cur: metric dicts of two successive evaluations (keys like ``eval/loss``, ``eval/auc``,
            ``eval/f1_macro``, ``eval/recall/<label>``, ``eval/f1/<label>``, ``eval/support/<label>``).
        minority: labels to watch per class; ``None`` derives them from the logged support
            (:func:`minority_labels`); with no support logged only AUC and macro-F1 are watched.
        drop: the absolute fall (e.g. 0.03 = 3 points) that counts.

    Returns:
        one dict per metric that fell by at least ``drop`` — ``{"key", "before", "after", "drop"}`` — or ``[]``
        when the dev loss did not improve or nothing fell.
    """
    lp, lc = _num(prev.get(prefix + "loss")), _num(cur.get(prefix + "loss"))
    if lp is None or lc is None or not lc < lp:
        return []
    if minority is None:
        minority = minority_labels(cur, prefix) or minority_labels(prev, prefix)
    keys = [prefix + "auc", prefix + "f1_macro"]
    for label in minority:
        keys += [f"{prefix}recall/{label}", f"{prefix}f1/{label}"]
    events = []
    for k in keys:
        a, b = _num(prev.get(k)), _num(cur.get(k))
        if a is not None and b is not None and a - b >= drop:
            events.append({"key": k, "before": a, "after": b, "drop": a - b})
    return events
