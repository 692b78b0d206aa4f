"""Figures of one training run, each a function of plain data (history rows, metric dicts) returning a
:class:`~.page.Figure`: the training curves, the confusion matrix, per-class scores, per-layer gradient norms,
and several runs overlaid."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._mpl import columns, downsample, pyplot, render_png, series, step_to_epoch
from .page import Figure

__all__ = ["training_curves", "confusion_matrix_figure", "per_class_figure", "grad_norm_figure", "overlay_figure",
           "eval_metric_keys", "MAX_POINTS"]

MAX_POINTS = 2000  # points per drawn series; longer histories are downsampled (envelope kept)
_SKIP = ("eval/loss", "eval/n", "eval/imbalance_warning")


def eval_metric_keys(history: Sequence[dict], primary: Optional[str] = None) -> list[str]:
    """The dev metrics worth a curve: aggregate ``eval/*`` numbers (per-class keys, support and counts left out),
    the primary metric first."""
    keys = [k for k in columns(history).keys if k.startswith("eval/") and k.count("/") == 1 and k not in _SKIP]
    if primary in keys:
        keys.remove(primary)
        keys.insert(0, primary)
    return keys


def _epoch_axis(ax, history):
    m = step_to_epoch(history)
    if m is None:
        return
    s, e = m
    sec = ax.secondary_xaxis("top", functions=(lambda x: np.interp(x, s, e), lambda x: np.interp(x, e, s)))
    sec.set_xlabel("epoch", fontsize=8)
    sec.tick_params(labelsize=7)


def training_curves(history: Sequence[dict], metric_key: Optional[str] = None, best_step: Optional[int] = None,
                    greater_is_better: bool = True, max_points: int = MAX_POINTS) -> Figure:
    """Train (and dev) loss, every dev metric and the learning rate against the optimizer step (epochs on the
    top axis), the best evaluation marked."""
    plt = pyplot()
    history = columns(history)
    ts, tl = series(history, "train/loss")
    es, el = series(history, "eval/loss")
    metrics = eval_metric_keys(history, metric_key)
    ls, lr = series(history, "train/lr")
    panels = 1 + bool(metrics) + bool(len(lr))
    fig, axes = plt.subplots(1, panels, figsize=(11.5, 3.9), squeeze=False)
    axes = list(axes[0])
    ax = axes.pop(0)
    x, y = downsample(ts, tl, max_points)
    ax.plot(x, y, color="#4a7ab5", lw=1, label="train loss (mean over the logging interval)")
    if len(el):
        ax.plot(es, el, "o-", color="#d9822b", ms=3.5, lw=1.4, label="dev loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.set_title("loss", fontsize=10)
    _mark_best(ax, best_step)
    ax.legend(fontsize=7)
    _epoch_axis(ax, history)
    if metrics:
        ax = axes.pop(0)
        cmap = plt.get_cmap("tab10")
        for i, k in enumerate(metrics[:6]):
            s, v = series(history, k)
            x, y = downsample(s, v, max_points)
            ax.plot(x, y, "o-" if len(x) < 60 else "-", ms=3, lw=1.6 if i == 0 else 1, color=cmap(i % 10),
                    alpha=1 if i == 0 else 0.75,
                    label=k.split("/", 1)[1] + (" (selects the best model)" if i == 0 else ""))
        if metric_key in metrics:
            s, v = series(history, metric_key)
            if len(v):
                if best_step is not None and best_step in set(s.tolist()):
                    j = int(np.nonzero(s == best_step)[0][0])
                else:
                    j = int(np.argmax(v) if greater_is_better else np.argmin(v))
                ax.plot([s[j]], [v[j]], marker="*", ms=14, color="#c0392b", zorder=5, ls="none",
                        label=f"best {metric_key.split('/', 1)[1]} {v[j]:.4f} (step {s[j]})")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("dev score (fraction, 1 = perfect)" if all(
            np.all((series(history, k)[1] >= 0) & (series(history, k)[1] <= 1)) for k in metrics) else "dev score")
        ax.set_title("dev metrics", fontsize=10)
        ax.legend(fontsize=7, loc="best", framealpha=0.7)
        _epoch_axis(ax, history)
    if len(lr):
        ax = axes.pop(0)
        x, y = downsample(ls, lr, max_points)
        ax.plot(x, y, color="#6a6a6a", lw=1.2)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("learning rate")
        ax.set_title("learning-rate schedule", fontsize=10)
        from matplotlib.ticker import FormatStrFormatter

        ax.yaxis.set_major_formatter(FormatStrFormatter("%.1e"))
        _mark_best(ax, best_step)
    for a in fig.axes:
        a.tick_params(labelsize=8)
        a.grid(alpha=0.25)
    fig.tight_layout()
    return Figure("curves", "Training curves",
                  "Left: training loss (blue, averaged over each logging interval) and dev loss (orange) per "
                  "optimizer step; middle: every dev metric, the one that selects the best model in bold with the "
                  "best evaluation starred; right: the learning rate. The dashed line marks the best step. "
                  "Train loss still falling at the right edge means more steps would help; dev loss rising while "
                  "train loss falls means overfitting.", render_png(fig))


def _mark_best(ax, best_step):
    if best_step is not None:
        ax.axvline(best_step, color="#c0392b", ls="--", lw=0.9, alpha=0.7)


def confusion_matrix_figure(cm: Sequence[Sequence[int]], label_names: Sequence[str], step: Optional[int] = None,
                            which: str = "best") -> Figure:
    """Row-normalised confusion matrix (share of each true class) with the raw counts in each cell."""
    plt = pyplot()
    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[0]
    if cm.shape != (k, k) or len(label_names) != k:
        raise ValueError(f"confusion matrix of shape {cm.shape} for {len(label_names)} labels")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    side = min(9.0, max(4.6, 0.55 * k + 2.6))
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = [str(n)[:18] for n in label_names]
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if k <= 25:
        fs = 8 if k <= 10 else 6
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{norm[i, j]:.0%}\n{cm[i, j]:,}", ha="center", va="center", fontsize=fs,
                        color="white" if norm[i, j] > 0.55 else "#1d232b")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("share of the true class's dev examples", fontsize=8)
    at = f" at step {step}" if step is not None else ""
    ax.set_title(f"dev confusion matrix, {which} model{at} (n = {int(cm.sum()):,})", fontsize=10)
    fig.tight_layout()
    return Figure("confusion_matrix", "Confusion matrix",
                  f"Rows are the true labels, columns the predictions of the {which} model{at} on the dev set; "
                  "each cell shows the share of the row's examples (colour) and their count. A perfect model is "
                  "a dark diagonal; a dark off-diagonal cell is a pair of classes the model confuses.",
                  render_png(fig))


def per_class_figure(per_class: dict, step: Optional[int] = None, which: str = "best") -> Figure:
    """Precision, recall and F1 per class as grouped bars (support in the tick labels).

    ``per_class``: ``{label: {"precision": p, "recall": r, "f1": f, "support": n}}``."""
    plt = pyplot()
    names = list(per_class)
    k = len(names)
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.5, 0.9 * k + 3)), 3.9))
    x = np.arange(k)
    w = 0.27
    for i, (m, c) in enumerate((("precision", "#4a7ab5"), ("recall", "#d9822b"), ("f1", "#3a9e5f"))):
        vals = [float(per_class[n].get(m) or 0.0) for n in names]
        ax.bar(x + (i - 1) * w, vals, w, label=m, color=c)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{str(n)[:16]}\n(n={int(per_class[n].get('support') or 0):,})" for n in names],
                       rotation=30 if k > 6 else 0, ha="right" if k > 6 else "center", fontsize=8)
    ax.set_ylim(0, 1.16)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score (fraction)")
    ax.set_title(f"per-class scores on the dev set, {which} model" + (f" (step {step})" if step is not None else ""),
                 fontsize=10)
    ax.legend(fontsize=8, ncol=3, loc="upper right")
    ax.grid(axis="y", alpha=0.25)
    fig.tight_layout()
    return Figure("per_class", "Per-class precision, recall and F1",
                  "For each class (dev support n under its name): precision = share of the predictions of that "
                  "class that are right, recall = share of the class's examples that are found, F1 their harmonic "
                  "mean. A class far below the others is where the model fails; low recall on a small class is "
                  "the usual sign of imbalance.", render_png(fig))


def grad_norm_figure(history: Sequence[dict], max_points: int = MAX_POINTS, max_groups: int = 12) -> Optional[Figure]:
    """L2 gradient norm of each layer group (``train/grad_norm/<group>``, the grad_norm_logging trick) per step,
    log scale; None when none was logged."""
    history = columns(history)
    keys = [k for k in history.keys if k.startswith("train/grad_norm/")]
    if not keys:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11.5, 3.9))
    cmap = plt.get_cmap("viridis")
    shown = keys if len(keys) <= max_groups else keys[:: int(np.ceil(len(keys) / max_groups))]
    for i, k in enumerate(shown):
        s, v = series(history, k)
        x, y = downsample(s, v, max_points)
        ax.plot(x, y, lw=1.1, color=cmap(i / max(1, len(shown) - 1)), label=k[len("train/grad_norm/"):])
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("gradient L2 norm (log scale)")
    ax.set_title("gradient norm per layer group" + (f" ({len(shown)} of {len(keys)} groups)" if len(shown) < len(keys)
                                                    else ""), fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.25)
    fig.tight_layout()
    return Figure("grad_norms", "Gradient norm per layer group",
                  "The L2 norm of the gradients of each block (embeddings at the dark end of the colour scale, "
                  "the classifier at the light end), measured by the grad_norm_logging trick. Norms shrinking by "
                  "orders of magnitude towards the input layers mean vanishing gradients; a sudden jump by 10× or "
                  "more precedes divergence.", render_png(fig))


def overlay_figure(histories: dict, metric_key: Optional[str] = None, max_points: int = MAX_POINTS) -> Figure:
    """Several runs on shared axes: train loss and the dev metric against step, one colour per run."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    cmap = plt.get_cmap("tab10")
    for i, (name, h) in enumerate(histories.items()):
        c = cmap(i % 10)
        h = columns(h)
        s, v = series(h, "train/loss")
        x, y = downsample(s, v, max_points)
        a1.plot(x, y, lw=1.1, color=c, label=name)
        key = metric_key or next(iter(eval_metric_keys(h)), None)
        if key:
            s, v = series(h, key)
            a2.plot(s, v, "o-" if len(s) < 60 else "-", ms=3, lw=1.3, color=c, label=name)
    a1.set_xlabel("optimizer step")
    a1.set_ylabel("train loss (nats)")
    a1.set_title("train loss", fontsize=10)
    a2.set_xlabel("optimizer step")
    a2.set_ylabel(metric_key.split("/", 1)[1] if metric_key else "dev metric")
    a2.set_title(f"dev {metric_key.split('/', 1)[1] if metric_key else 'metric'}", fontsize=10)
    for a in (a1, a2):
        a.grid(alpha=0.25)
        a.tick_params(labelsize=8)
    a1.legend(fontsize=7)
    fig.tight_layout()
    return Figure("overlay", "Runs overlaid",
                  "One colour per run: training loss (left) and the dev metric (right) against the optimizer "
                  "step. Compare where the curves flatten and which run ends higher; runs of different lengths "
                  "share the step axis.", render_png(fig))
