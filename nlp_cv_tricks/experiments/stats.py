"""Statistics of an ablation: per variant the mean ± std over seeds and the paired difference to the baseline
with a 95% bootstrap interval and a paired t-test p-value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from .grid import RunResult

__all__ = ["VariantSummary", "paired_stats", "summarize"]


@dataclass
class VariantSummary:
    name: str
    n: int
    mean: Optional[float]
    std: Optional[float]
    delta: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    p_value: Optional[float]
    seconds: Optional[float]
    peak_mem_mb: Optional[float]
    gpu_peak_mem_mb: Optional[float]
    values: list
    failed: int


def paired_stats(values: Sequence[float], baseline: Sequence[float], n_boot: int = 10000,
                 seed: int = 0) -> tuple[float, float, float, float]:
    """Mean paired difference, its 95% bootstrap interval (resampling seeds) and the paired t-test p-value
    (nan when undefined: fewer than 2 pairs or identical differences)."""
    import numpy as np

    d = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    if d.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
    if np.allclose(d, d[0]):
        p = 0.0 if d[0] != 0 else 1.0
    else:
        from ..utils.optional import require

        stats = require("scipy.stats", purpose="the paired t-test of ablate (2+ seeds)")
        p = float(stats.ttest_rel(np.asarray(values, float), np.asarray(baseline, float)).pvalue)
    return mean, lo, hi, p


def summarize(runs: Sequence[RunResult], variant_names: Sequence[str], report: str = "best") -> list[VariantSummary]:
    """Per-variant statistics; differences are paired by seed against ``baseline`` (the first name)."""
    import numpy as np

    def value(r: RunResult):
        return r.metric if report == "best" else r.last_metric

    by: dict[str, dict[int, RunResult]] = {}
    for r in runs:
        by.setdefault(r.variant, {})[r.seed] = r
    base = {s: value(r) for s, r in by.get(variant_names[0], {}).items() if r.error is None and value(r) is not None}
    out = []
    for name in variant_names:
        rs = by.get(name, {})
        ok = {s: value(r) for s, r in rs.items() if r.error is None and value(r) is not None}
        vals = [ok[s] for s in sorted(ok)]
        mean = float(np.mean(vals)) if vals else None
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None  # one seed has no spread
        delta = lo = hi = p = None
        if name != variant_names[0]:
            common = sorted(set(ok) & set(base))
            if common:
                delta, lo, hi, p = paired_stats([ok[s] for s in common], [base[s] for s in common])
        secs = [r.seconds for r in rs.values() if r.error is None]
        mems = [r.peak_mem_mb for r in rs.values() if r.peak_mem_mb is not None]
        gmems = [r.gpu_peak_mem_mb for r in rs.values() if r.gpu_peak_mem_mb is not None]
        out.append(VariantSummary(name, len(vals), mean, std, delta, lo, hi, p,
                                  float(np.mean(secs)) if secs else None, max(mems) if mems else None,
                                  max(gmems) if gmems else None, vals,
                                  sum(1 for r in rs.values() if r.error is not None)))
    return out
