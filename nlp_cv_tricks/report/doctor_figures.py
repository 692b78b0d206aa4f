"""The doctor's verdict as a figure: the curves it judged, with the segment that supports the regime shaded."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._mpl import columns, downsample, pyplot, render_png, series
from .page import Figure

__all__ = ["regime_segment", "regime_figure"]

_COLOURS = {"overfitting": "#d64541", "diverging": "#8e1b1b", "underfitting": "#e59400",
            "not_converging": "#7f8c8d", "not_converged": "#2e9e5b", "healthy": "#4a7ab5"}
_WHAT = {
    "overfitting": "from where the dev curve turned to the end",
    "diverging": "from the last good step to the end",
    "underfitting": "the plateau of the train loss",
    "not_converging": "the whole run: the train loss never fell",
    "not_converged": "the last evaluation interval: the dev score still rising",
    "healthy": "nothing to shade",
}


def regime_segment(history: Sequence[dict], diagnosis: dict) -> Optional[tuple[int, int]]:
    """``(first step, last step)`` of the stretch of the run that supports the verdict, or None (healthy)."""
    regime, onset = diagnosis.get("regime"), diagnosis.get("onset_step")
    history = columns(history)
    steps = [int(r["step"]) for r in history.rows]
    if not steps or regime == "healthy":
        return None
    end = max(steps)
    if regime == "not_converged":
        key = (diagnosis.get("evidence") or {}).get("primary_metric") or "eval/loss"
        es, _ = series(history, key)
        if len(es) < 2:
            es, _ = series(history, "eval/loss")
        return (int(es[-2]), int(es[-1])) if len(es) >= 2 else None
    if regime == "not_converging":
        return min(steps), end
    if onset is None:
        return None
    return int(onset), end


def regime_figure(history: Sequence[dict], diagnosis: dict, max_points: int = 2000) -> Figure:
    """Train/dev loss and the doctor's dev metric against step, the supporting segment shaded and labelled."""
    plt = pyplot()
    history = columns(history)
    regime = diagnosis.get("regime", "?")
    colour = _COLOURS.get(regime, "#555555")
    metric = (diagnosis.get("evidence") or {}).get("primary_metric")
    ms, mv = series(history, metric) if metric else (np.array([]), np.array([]))
    fig, axes = plt.subplots(1, 2 if len(mv) else 1, figsize=(11.5, 3.6), squeeze=False)
    axes = list(axes[0])
    ts, tl = series(history, "train/loss")
    es, el = series(history, "eval/loss")
    ax = axes[0]
    x, y = downsample(ts, tl, max_points)
    ax.plot(x, y, color="#9db4d3", lw=0.8, label="train loss")
    if len(tl) >= 40:
        w = max(2, min(len(tl) // 20, 50))
        sm = np.convolve(tl, np.ones(w) / w, mode="valid")
        x, y = downsample(ts[w - 1:], sm, max_points)
        ax.plot(x, y, color="#2c5a8c", lw=1.5, label=f"train loss, moving mean of {w} logs")
    if len(el):
        ax.plot(es, el, "o-", color="#d9822b", ms=3.5, lw=1.3, label="dev loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats)")
    ax.set_title("loss", fontsize=10)
    if len(mv):
        ax2 = axes[1]
        ax2.plot(ms, mv, "o-", color="#3a9e5f", ms=3.5, lw=1.3, label=f"dev {metric.split('/', 1)[1]}")
        ax2.set_xlabel("optimizer step")
        ax2.set_ylabel(f"dev {metric.split('/', 1)[1]}")
        ax2.set_title(f"dev {metric.split('/', 1)[1]}", fontsize=10)
    seg = regime_segment(history, diagnosis)
    for a in axes:
        if seg is not None:
            lo, hi = seg
            if hi == lo:
                a.axvline(lo, color=colour, lw=2, alpha=0.6)
            else:
                a.axvspan(lo, hi, color=colour, alpha=0.16, label=f"{regime}: {_WHAT.get(regime, '')}")
        a.grid(alpha=0.25)
        a.tick_params(labelsize=8)
        a.legend(fontsize=7)
    fig.suptitle(f"doctor's verdict: {regime}" + (f" (from step {diagnosis['onset_step']})"
                                                   if diagnosis.get("onset_step") is not None else ""),
                 fontsize=11, color=colour, fontweight="bold")
    fig.tight_layout()
    return Figure("doctor", f"Fit regime: {regime}",
                  f"The curves the doctor (nlp-cv-tricks diagnose) judged; the shaded stretch "
                  f"({_WHAT.get(regime, '')}) "
                  "is the evidence for the verdict. The reasons and the remedies, as recipe overrides, are in the "
                  "table below.", render_png(fig))
