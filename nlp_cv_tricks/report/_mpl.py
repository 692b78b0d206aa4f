"""matplotlib, imported only when a figure is drawn (Agg backend: no display needed), and small shared helpers:
PNG rendering at a fixed size, downsampling of long series, the series of one history key."""

from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np

__all__ = ["pyplot", "render_png", "downsample", "series", "columns", "Columns", "step_to_epoch", "DPI"]

DPI = 100


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend; a missing matplotlib raises
    :class:`~nlp_cv_tricks.utils.optional.MissingExtraError` naming ``pip install "nlp-cv-tricks[diagnostics]"``."""
    from ..utils.optional import require

    require("matplotlib", extra="diagnostics", purpose="the report's figures").use("Agg", force=True)
    return require("matplotlib.pyplot", extra="diagnostics", purpose="the report's figures")


def render_png(fig) -> bytes:
    """The figure as PNG bytes at exactly its size in inches × :data:`DPI` (no tight bounding box, so the
    image size is known in advance), then closed."""
    plt = pyplot()
    buf = io.BytesIO()
    try:
        # the figures lay themselves out (tight_layout) before they are rendered; a layout engine left on the
        # figure (tight_layout leaves a placeholder one) makes savefig lay out and draw it once more first
        fig.set_layout_engine(None)
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return buf.getvalue()


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points that keep the curve's envelope: the series is cut into
    ``max_points / 2`` consecutive buckets and each keeps its lowest and highest point (in step order), so
    spikes survive and a 100k-step history draws as fast as a short one. Non-finite values are kept out."""
    x, y = np.asarray(x), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    size = int(np.ceil(n / buckets))
    pad = buckets * size - n
    yp = np.concatenate([y, np.full(pad, np.nan)]).reshape(buckets, size)
    base = np.arange(buckets) * size
    with np.errstate(invalid="ignore"):
        lo = base + np.nanargmin(np.where(np.isnan(yp), np.inf, yp), axis=1)
        hi = base + np.nanargmax(np.where(np.isnan(yp), -np.inf, yp), axis=1)
    idx = np.unique(np.concatenate([lo, hi, [0, n - 1]]))
    idx = idx[idx < n]
    return x[idx], y[idx]


class Columns:
    """A history (list of row dicts) read once into one series per numeric key, so drawing many curves of a
    100k-row history does not scan it again for each. Figure functions accept rows or a ``Columns``."""

    def __init__(self, rows: Sequence[dict]):
        self.rows = rows
        cols: dict[str, dict[int, float]] = {}
        for r in rows:
            step = int(r["step"])
            for k, v in r.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    col = cols.get(k)
                    if col is None:
                        col = cols[k] = {}
                    col[step] = v  # a repeated step (after a resume) keeps its last value
        self.keys = list(cols)
        self._cols = cols
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        if key not in self._cache:
            col = self._cols.get(key, {})
            steps = np.fromiter(col.keys(), dtype=np.int64, count=len(col))
            vals = np.fromiter(col.values(), dtype=np.float64, count=len(col))
            order = np.argsort(steps, kind="stable")
            self._cache[key] = (steps[order], vals[order])
        return self._cache[key]


def columns(history) -> Columns:
    return history if isinstance(history, Columns) else Columns(history)


def series(history, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of one history key (rows or :class:`Columns`), sorted by step; a repeated step (after a
    resume) keeps its last value; rows without a number for the key are skipped."""
    return columns(history).series(key)


def step_to_epoch(history) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(steps, epochs)`` for a secondary epoch axis, or None when the history logs no epochs."""
    s, e = series(history, "epoch")
    if len(s) < 2 or np.ptp(s) == 0 or np.any(np.diff(e) < 0):
        return None
    return s.astype(np.float64), e
