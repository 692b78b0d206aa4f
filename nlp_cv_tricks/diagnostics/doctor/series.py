"""Series helpers of the doctor: a logged key as (steps, values), smoothing, the edges of a run, a trend test."""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np


def _series(records: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key``; a repeated step (after a resume) keeps its last value."""
    by_step: dict[int, float] = {}
    for r in records:
        v = r.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        by_step[int(r["step"])] = float(v)
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[s] for s in steps], dtype=np.float64)


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with shrinking windows at the edges (no lag, no padding artefacts)."""
    n = len(x)
    w = max(1, min(int(window), n))
    half = w // 2
    c = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + (w - half), 0, n)
    return (c[hi] - c[lo]) / (hi - lo)


def _edge(n: int, frac: float) -> int:
    return max(1, int(round(n * frac)))


def _slope(steps: np.ndarray, values: np.ndarray) -> dict:
    if len(values) < 3 or np.ptp(steps) == 0:
        return {"slope_per_1k_steps": None, "p_value": None}
    from ...utils.optional import require

    # scipy.stats.linregress's slope and two-sided p-value, through scipy.special alone (scipy.stats takes ~1.5 s
    # to import, which the end-of-training report paid)
    stdtr = require("scipy.special", purpose="the trend test of diagnose").stdtr
    x, y = steps.astype(float), np.asarray(values, dtype=float)
    xm, ym = x - x.mean(), y - y.mean()
    ssxm, ssym, ssxym = float(np.mean(xm * xm)), float(np.mean(ym * ym)), float(np.mean(xm * ym))
    slope = ssxym / ssxm
    if ssym == 0.0:
        return {"slope_per_1k_steps": slope * 1000, "p_value": float("nan")}  # as linregress: r undefined
    r = min(1.0, max(-1.0, ssxym / np.sqrt(ssxm * ssym)))
    df = len(x) - 2
    t = r * np.sqrt(df / ((1.0 - r + 1e-20) * (1.0 + r + 1e-20)))
    return {"slope_per_1k_steps": float(slope * 1000), "p_value": float(2 * stdtr(df, -abs(t)))}


def _first_nonfinite(records: Sequence[dict], keys: Iterable[str]) -> Optional[tuple[int, str]]:
    for r in records:
        for k in keys:
            v = r.get(k)
            if isinstance(v, float) and not math.isfinite(v):
                return int(r["step"]), k
    return None


def _primary_metric(records: Sequence[dict], recipe: Optional[dict]) -> Optional[str]:
    wanted = None
    if recipe and isinstance(recipe.get("train"), dict) and recipe["train"].get("metric"):
        wanted = str(recipe["train"]["metric"])
        wanted = wanted if wanted.startswith("eval/") else f"eval/{wanted}"
    keys = {k for r in records for k in r}
    for k in [wanted, "eval/f1_macro", "eval/accuracy"]:
        if k and k in keys and k != "eval/loss":
            return k
    return None
