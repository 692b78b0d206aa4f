"""Figures of an ablation (``nlp-cv-tricks ablate``) and of a learning-rate sweep (``nlp-cv-tricks lr-sweep``),
from the summaries and runs of ``ablation.json``."""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np

from ._mpl import pyplot, render_png
from .page import Figure

__all__ = ["per_seed_values", "forest_plot", "time_figure", "lr_sweep_figure", "learning_rate_of"]


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def per_seed_values(summaries: Sequence[dict], runs: Sequence[dict]) -> dict:
    """``{variant: {seed: value}}`` of the value each summary was computed from (the best or the last
    evaluation of a run: whichever reproduces the summary's values)."""
    out: dict = {}
    for s in summaries:
        rs = [r for r in runs if r.get("variant") == s["name"] and not r.get("error")]
        want = sorted(float(v) for v in s.get("values") or [])
        for field in ("metric", "last_metric"):
            got = {int(r["seed"]): float(r[field]) for r in rs if _finite(r.get(field))}
            if sorted(got.values()) == want:
                out[s["name"]] = got
                break
        else:
            out[s["name"]] = {int(r["seed"]): float(r["metric"]) for r in rs if _finite(r.get("metric"))}
    return out


def forest_plot(summaries: Sequence[dict], runs: Sequence[dict], metric_name: str) -> Figure:
    """Δ vs the baseline per variant: the mean paired difference, its 95% bootstrap interval and the per-seed
    differences (dots)."""
    plt = pyplot()
    base = summaries[0]
    variants = list(summaries[1:])
    vals = per_seed_values(summaries, runs)
    bvals = vals.get(base["name"], {})
    h = max(2.6, 0.55 * len(variants) + 1.6)
    fig, ax = plt.subplots(figsize=(10.5, h))
    ys = np.arange(len(variants))[::-1]
    rng = np.random.default_rng(0)
    spread: list = []
    for y, s in zip(ys, variants):
        d = [v - bvals[seed] for seed, v in vals.get(s["name"], {}).items() if seed in bvals]
        if d:
            ax.scatter(d, y + rng.uniform(-0.12, 0.12, len(d)), s=14, color="#7f8c8d", alpha=0.8, zorder=2,
                       label="one seed (paired with the baseline)" if y == ys[0] else None)
        if _finite(s.get("delta")):
            lo, hi = s.get("ci_low"), s.get("ci_high")
            if _finite(lo) and _finite(hi):
                ax.errorbar(s["delta"], y, xerr=[[s["delta"] - lo], [hi - s["delta"]]], fmt="none", ecolor="#2c5a8c",
                            elinewidth=2, capsize=4, zorder=3, label="95% bootstrap interval" if y == ys[0] else None)
            sign = 1 if _higher_is_better(runs) else -1
            lo, hi = (lo, hi) if _finite(lo) and _finite(hi) else (s["delta"], s["delta"])
            colour = ("#2e9e5b" if sign * lo > 0 and sign * hi > 0 else "#d64541" if sign * lo < 0 and sign * hi < 0
                      else "#7f8c8d")  # only an interval clear of zero gets a colour
            ax.plot(s["delta"], y, "D", ms=7, color=colour, zorder=4, label="mean Δ" if y == ys[0] else None)
            spread.extend([lo, hi, *d])
    ax.axvline(0, color="#1d232b", lw=1)
    half = max([abs(v) for v in spread if _finite(v)] + [1e-3]) * 1.15  # zero in the middle
    ax.set_xlim(-half, half)
    ax.set_yticks(ys)
    ax.set_yticklabels([_short(s["name"]) for s in variants], fontsize=8)
    ax.set_ylim(-0.8, len(variants) - 0.2)
    ax.set_xlabel(f"Δ {metric_name} vs baseline (variant − baseline, same seed)")
    bm = base.get("mean")
    spread = f" ± {base['std']:.4f}" if _finite(base.get("std")) else ""
    n = base.get("n")
    ax.set_title(f"baseline {metric_name} = {bm:.4f}{spread} over {n} seed{'' if n == 1 else 's'}"
                 if _finite(bm) else "baseline has no result", fontsize=10)
    ax.grid(axis="x", alpha=0.25)
    if variants:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return Figure("forest", "Δ vs baseline (forest plot)",
                  "Each row is a variant: the diamond is the mean difference to the baseline over paired seeds "
                  "(green: better and red: worse when its interval is clear of zero, grey otherwise), the bar its "
                  "95% paired-bootstrap interval and the grey dots the single seeds. An interval that crosses the "
                  "vertical zero line is not a demonstrated effect; with fewer than 5 seeds the interval is little "
                  "more than the range of the dots.",
                  render_png(fig))


def _higher_is_better(runs: Sequence[dict]) -> bool:
    return next((bool(r.get("greater_is_better", True)) for r in runs if not r.get("error")), True)


def _short(name: str, n: int = 48) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def time_figure(summaries: Sequence[dict]) -> Figure:
    """Mean wall time per run of each variant (horizontal bars)."""
    plt = pyplot()
    names = [s["name"] for s in summaries]
    secs = [float(s["seconds"]) if _finite(s.get("seconds")) else 0.0 for s in summaries]
    fig, ax = plt.subplots(figsize=(10.5, max(2.2, 0.4 * len(names) + 1.2)))
    ys = np.arange(len(names))[::-1]
    ax.barh(ys, secs, color=["#7f8c8d"] + ["#4a7ab5"] * (len(names) - 1), height=0.6)
    for y, v in zip(ys, secs):
        ax.text(v, y, f" {v:.1f} s" + (f" ({v / secs[0]:.2f}×)" if secs[0] and y != ys[0] else ""), va="center",
                fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([_short(n) for n in names], fontsize=8)
    ax.set_xlabel("wall time per run (s, mean over seeds; start-up and evaluation included)")
    ax.set_xlim(0, max(secs + [1e-9]) * 1.25)
    ax.grid(axis="x", alpha=0.25)
    fig.tight_layout()
    return Figure("time", "Time per run",
                  "Mean wall-clock seconds of one run of each variant (the baseline in grey), with the ratio to the "
                  "baseline: the cost side of each trick. Times of runs that ran while the machine was busy are "
                  "not comparable.", render_png(fig))


_LR = re.compile(r"train\.learning_rate=([0-9.eE+-]+)")


def learning_rate_of(name: str) -> Optional[float]:
    m = _LR.search(name)
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


def lr_sweep_figure(summaries: Sequence[dict], runs: Sequence[dict], metric_name: str,
                    best_lr: Optional[float] = None) -> Figure:
    """The dev metric against the learning rate on a log axis: per-seed points, the mean, the best rate."""
    plt = pyplot()
    vals = per_seed_values(summaries, runs)
    pts = [(learning_rate_of(s["name"]), s) for s in summaries]
    pts = sorted([(lr, s) for lr, s in pts if lr is not None], key=lambda t: t[0])
    fig, ax = plt.subplots(figsize=(9.5, 4.0))
    for lr, s in pts:
        v = list(vals.get(s["name"], {}).values())
        if v:
            ax.scatter([lr] * len(v), v, s=16, color="#7f8c8d", alpha=0.8, zorder=2)
    xs = [lr for lr, s in pts if _finite(s.get("mean"))]
    ms = [s["mean"] for lr, s in pts if _finite(s.get("mean"))]
    ax.plot(xs, ms, "o-", color="#2c5a8c", lw=1.6, ms=5, zorder=3, label="mean over seeds")
    if best_lr is not None and _finite(best_lr):
        m = next((s["mean"] for lr, s in pts if lr is not None and math.isclose(lr, best_lr, rel_tol=1e-9)), None)
        if _finite(m):
            ax.plot([best_lr], [m], "*", ms=16, color="#c0392b", zorder=4, label=f"best: {best_lr:g} ({m:.4f})")
    ax.set_xscale("log")
    tried = [lr for lr, _ in pts]
    if tried:
        ax.set_xticks(tried)
        ax.set_xticklabels([f"{lr:g}" for lr in tried], fontsize=8)
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlim(min(tried) / 1.5, max(tried) * 1.5)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(metric_name)
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=8)
    ax.set_title("learning-rate sweep (halving from the start value)", fontsize=10)
    fig.tight_layout()
    return Figure("lr_sweep", "Learning-rate sweep",
                  f"The dev {metric_name} of each learning rate tried (grey dots: seeds; blue: their mean), on a "
                  "log axis; the sweep halves the rate until the metric stops improving. The best rate is starred; "
                  "if it is the largest one tried, start the sweep higher.", render_png(fig))
