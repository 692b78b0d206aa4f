"""Embedding plots: PCA to about 50 dimensions, then t-SNE to 2-D, coloured by label.

Tuning tip behind it: visualise embeddings with PCA first, then t-SNE, and only for a modest number of
classes. PCA first removes noise dimensions (van der Maaten & Hinton 2008 do the same, reducing to 30–50
dimensions): measured here it keeps the 2-D map more faithful to the neighbourhoods (trustworthiness, k-NN label
agreement) but is not faster at 1,500 points (benchmarks/RESULTS.md, tip 27); with more than a dozen or two classes the colours cannot be told apart,
so :func:`plot_embeddings` refuses more than ``max_classes`` unless ``force`` (then it keeps the most frequent
ones and says so), and samples at most ``per_class`` points per class so big classes do not bury small ones.
Cost: PCA is seconds; t-SNE is O(n log n) (Barnes–Hut), about 10–30 s for 2,000 points on one CPU core.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ._io import DiagnosticsError, atomic_save_figure

__all__ = ["sample_per_class", "pca_tsne", "plot_embeddings", "READABLE_CLASSES"]

logger = logging.getLogger(__name__)

READABLE_CLASSES = 10  # above this a warning: colours get hard to tell apart


def sample_per_class(labels: Sequence, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``per_class`` examples of each label (seeded, sorted)."""
    rng = np.random.default_rng(seed)
    lab = np.asarray([str(x) for x in labels])
    keep = []
    for c in np.unique(lab):
        idx = np.nonzero(lab == c)[0]
        keep.append(idx if len(idx) <= per_class else rng.choice(idx, per_class, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.array([], dtype=int)


def pca_tsne(emb: np.ndarray, pca_dims: int = 50, perplexity: float = 30.0, seed: int = 0) -> tuple[np.ndarray, dict]:
    """PCA (scikit-learn) to ``pca_dims`` then t-SNE to 2-D; returns the coordinates and what was done."""
    from ..utils.optional import require

    require("sklearn", purpose="plot-embeddings (PCA + t-SNE)")
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2:
        raise DiagnosticsError(f"embeddings must be a 2-D array [n, d], got shape {x.shape}")
    n, d = x.shape
    if n < 5:
        raise DiagnosticsError(f"t-SNE needs at least 5 points, got {n}")
    info: dict = {"n_points": int(n), "input_dims": int(d)}
    k = int(min(pca_dims, n, d))
    if k < d:
        pca = PCA(n_components=k, random_state=seed)
        x = pca.fit_transform(x)
        info["pca_dims"] = k
        info["pca_explained_variance"] = float(pca.explained_variance_ratio_.sum())
    else:
        info["pca_dims"] = None
    perp = float(min(perplexity, max(2.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, learning_rate="auto")
    y = tsne.fit_transform(x)
    info.update({"perplexity": perp, "tsne_kl_divergence": float(tsne.kl_divergence_)})
    return y, info


def plot_embeddings(emb: np.ndarray, labels: Sequence, path: Union[str, os.PathLike], per_class: int = 200,
                    max_classes: int = 20, force: bool = False, pca_dims: int = 50, perplexity: float = 30.0,
                    seed: int = 0, title: Optional[str] = None, overwrite: bool = False) -> dict:
    """Sample per class, PCA → t-SNE, scatter coloured by label, and write a PNG atomically.

    Raises :class:`DiagnosticsError` when there are more than ``max_classes`` labels (unless ``force``: then the
    ``max_classes`` most frequent are plotted and a warning is logged and returned).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    emb = np.asarray(emb)
    labels = [str(x) for x in labels]
    if len(labels) != emb.shape[0]:
        raise DiagnosticsError(f"{emb.shape[0]} embeddings but {len(labels)} labels")
    counts = Counter(labels)
    warnings = []
    if len(counts) > max_classes:
        if not force:
            raise DiagnosticsError(f"{len(counts)} classes is too many to read in one t-SNE plot (limit "
                                   f"{max_classes}); plot a subset, raise --max-classes, or pass --force to keep the "
                                   f"{max_classes} most frequent")
        kept = {c for c, _ in counts.most_common(max_classes)}
        warnings.append(f"{len(counts)} classes: plotting only the {max_classes} most frequent")
        sel = np.array([i for i, l in enumerate(labels) if l in kept])
        emb, labels = emb[sel], [labels[i] for i in sel]
        counts = Counter(labels)
    if len(counts) > READABLE_CLASSES:
        warnings.append(f"{len(counts)} classes: colours are hard to tell apart above {READABLE_CLASSES}")
    for w in warnings:
        logger.warning("plot-embeddings: %s", w)
    idx = sample_per_class(labels, per_class, seed)
    x, lab = emb[idx], np.asarray(labels)[idx]
    coords, info = pca_tsne(x, pca_dims, perplexity, seed)

    from ..callbacks.layer_report import _pyplot

    plt = _pyplot()
    classes = sorted(set(lab), key=lambda c: (-counts[c], c))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    for k, c in enumerate(classes):
        m = lab == c
        ax.scatter(coords[m, 0], coords[m, 1], s=9, alpha=0.75, color=cmap(k % cmap.N), label=f"{c} ({int(m.sum())})")
    ax.legend(markerscale=2, fontsize=8, loc="best", title="label (n plotted)")
    pca_txt = f"PCA→{info['pca_dims']} ({info['pca_explained_variance']:.0%} var) → " if info.get("pca_dims") else ""
    ax.set_title(title or "embeddings", fontsize=11)
    ax.set_xlabel(f"{pca_txt}t-SNE (perplexity {info['perplexity']:.0f})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    try:
        atomic_save_figure(fig, path)
    finally:
        plt.close(fig)
    info.update({"path": str(path), "classes": {c: int((lab == c).sum()) for c in classes}, "warnings": warnings})
    return info
