"""Figures of a ``hardcases mine`` directory, from its per-example scores (``scores.jsonl`` rows): the data
cartography map, the error-score histogram and the budget curve (when the true labels are known)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._mpl import pyplot, render_png
from .page import Figure

__all__ = ["cartography_map", "error_histogram", "budget_curve", "recall_at_budget"]


def _arr(scores: Sequence[dict], key: str) -> np.ndarray:
    return np.array([np.nan if s.get(key) is None else float(s[key]) for s in scores], dtype=np.float64)


def cartography_map(scores: Sequence[dict], max_points: int = 20000, seed: int = 0) -> Figure:
    """Confidence (mean p(given label) over epochs) against variability (its std), flagged examples in red
    (Swayamdipta et al. 2020)."""
    plt = pyplot()
    conf, var = _arr(scores, "confidence"), _arr(scores, "variability")
    flagged = np.array([bool(s.get("is_label_issue")) for s in scores])
    ok = np.isfinite(conf) & np.isfinite(var)
    idx = np.flatnonzero(ok)
    if len(idx) > max_points:  # every flagged point is kept; the others sampled
        fl, rest = idx[flagged[idx]], idx[~flagged[idx]]
        keep = np.random.default_rng(seed).choice(rest, max(0, max_points - len(fl)), replace=False)
        idx = np.sort(np.concatenate([fl, keep]))
    fig, ax = plt.subplots(figsize=(8.0, 6.0))
    nf = idx[~flagged[idx]]
    f = idx[flagged[idx]]
    ax.scatter(var[nf], conf[nf], s=7, alpha=0.45, color="#4a7ab5", lw=0,
               label=f"not flagged ({int((~flagged & ok).sum()):,})")
    ax.scatter(var[f], conf[f], s=14, alpha=0.85, color="#d64541", lw=0,
               label=f"flagged as a likely label error ({int((flagged & ok).sum()):,})")
    ax.set_xlabel("variability: std over epochs of p(given label)")
    ax.set_ylabel("confidence: mean over epochs of p(given label)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.text(0.01, 0.97, "easy to learn", transform=ax.transAxes, fontsize=8, color="#555", va="top")
    ax.text(0.01, 0.03, "hard to learn (label errors gather here)", transform=ax.transAxes, fontsize=8, color="#555")
    ax.text(0.99, 0.5, "ambiguous", transform=ax.transAxes, fontsize=8, color="#555", ha="right")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.25)
    missing = int((~ok).sum())
    ax.set_title("data cartography (training dynamics)" + (f"; {missing:,} examples without dynamics"
                                                            if missing else ""), fontsize=10)
    fig.tight_layout()
    return Figure("cartography", "Data cartography map",
                  "Each dot is a training example: how confidently (y) and how consistently (x, low = the same every "
                  "epoch) the models predicted its given label while training. Bottom left (confidently wrong) is "
                  "where wrong labels gather; the right-hand band holds ambiguous examples; flagged examples (red) "
                  "come from confident learning on the out-of-fold probabilities.", render_png(fig))


def error_histogram(scores: Sequence[dict]) -> Figure:
    """Histogram of the error score (1 − label quality), flagged and not flagged stacked."""
    plt = pyplot()
    err = _arr(scores, "error_score")
    flagged = np.array([bool(s.get("is_label_issue")) for s in scores])
    ok = np.isfinite(err)
    fig, ax = plt.subplots(figsize=(8.0, 3.8))
    bins = np.linspace(0, 1, 41) if ok.any() and err[ok].min() >= 0 and err[ok].max() <= 1 else 40
    ax.hist([err[ok & ~flagged], err[ok & flagged]], bins=bins, stacked=True, color=["#4a7ab5", "#d64541"],
            label=["not flagged", "flagged"])
    ax.set_yscale("log")
    ax.set_xlabel("error score = 1 − out-of-fold p(given label)  (higher = more likely mislabelled)")
    ax.set_ylabel("examples (log scale)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    return Figure("error_histogram", "Error-score histogram",
                  "How the error scores spread: most examples sit near 0 (the held-out model agrees with the label); "
                  "the right-hand tail is what the export sends to annotators first. A second bump near 1 means "
                  "systematic label noise (a swapped class).", render_png(fig))


def recall_at_budget(order: Sequence[int], wrong: np.ndarray) -> np.ndarray:
    """Share of the wrong labels found after reviewing the first 1, 2, …, n examples of ``order``."""
    hits = np.cumsum(wrong[np.asarray(order, dtype=np.int64)])
    return hits / max(1, int(wrong.sum()))


def budget_curve(scores: Sequence[dict], true_labels: Sequence[int]) -> Figure:
    """Share of the truly wrong labels found against the review budget for the mining's ranking, the
    training-dynamics rankings and a random order (the expected diagonal)."""
    plt = pyplot()
    given = np.array([int(s["label"]) for s in scores])
    truth = np.asarray(true_labels, dtype=np.int64)
    if len(truth) != len(given):
        raise ValueError(f"{len(truth)} true labels for {len(given)} mined examples")
    wrong = (truth != given).astype(np.int64)
    n = len(given)
    rows = [int(s["row"]) for s in scores]
    by_row = {r: s for r, s in zip(rows, scores)}
    x = np.arange(1, n + 1) / n
    fig, ax = plt.subplots(figsize=(8.0, 4.6))
    rankings = [("mine error ranking (flagged first)", "error_rank", False, "#d64541"),
                ("area under the margin (ascending)", "aum", False, "#4a7ab5"),
                ("cartography confidence (ascending)", "confidence", False, "#3a9e5f")]
    for label, key, desc, colour in rankings:
        vals = [(by_row[r].get(key) if by_row[r].get(key) is not None else np.inf, r) for r in range(n) if r in by_row]
        if len(vals) != n or all(v == np.inf for v, _ in vals):
            continue
        order = [r for _, r in sorted(vals, reverse=desc)]
        ax.plot(x, recall_at_budget(order, wrong), lw=1.6, color=colour, label=label)
    ax.plot([0, 1], [0, 1], ls="--", color="#7f8c8d", lw=1, label="random order (expected)")
    share = wrong.mean()
    ax.plot([0, share, 1], [0, 1, 1], ls=":", color="#1d232b", lw=1, label=f"perfect ranking ({share:.1%} wrong)")
    flagged = int(sum(bool(s.get("is_label_issue")) for s in scores))
    if flagged:
        ax.axvline(flagged / n, color="#d64541", lw=0.8, alpha=0.6)
        ax.text(flagged / n, 0.02, f" {flagged:,} flagged", color="#d64541", fontsize=8)
    ax.set_xlabel("review budget: share of the training set inspected, in ranking order")
    ax.set_ylabel("share of the wrong labels found")
    ax.set_xlim(0, min(1.0, max(0.25, 4 * share, 2 * flagged / n)))  # the small budgets are what matters
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return Figure("budget_curve", "Budget curve",
                  f"With the true labels known ({int(wrong.sum()):,} of {n:,} given labels are wrong): the share of "
                  "the wrong labels an annotator finds after reviewing a given share of the data in each ranking's "
                  "order. The higher the curve at small budgets, the cheaper the clean-up; the dashed diagonal is "
                  "reviewing at random.", render_png(fig))
