"""Seeded, stratified splits of row indices (the one implementation the package uses).

scikit-learn's ``StratifiedShuffleSplit`` as ported into ``datasets`` (a core dependency), driven by numpy's
``RandomState(seed)`` as scikit-learn's ``train_test_split(..., stratify=y, random_state=seed)`` is, so the
core install needs no scikit-learn. With the package's recipes the rows that land in each split are the ones
scikit-learn picks (checked in ``tests/test_data.py``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(labels: Sequence, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train_indices, test_indices)`` into ``labels``, in the shuffled order scikit-learn returns (sort them for
    file order): ``ceil(test_size * n)`` rows go to the test side, every class in proportion. ``ValueError``
    names the classes too rare to stratify."""
    from datasets.utils.stratify import stratified_shuffle_split_generate_indices

    y = np.asarray(list(labels))
    n = len(y)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    counts = Counter(y.tolist())
    rare = sorted(str(c) for c, m in counts.items() if m < 2)
    if rare:
        raise ValueError(f"classes with a single row cannot be stratified: {', '.join(rare)}")
    if min(n_train, n_test) < len(counts):
        raise ValueError(f"{n_train} train / {n_test} test rows cannot each hold all {len(counts)} classes")
    train, test = next(stratified_shuffle_split_generate_indices(y, n_train, n_test, rng=np.random.RandomState(seed)))
    return [int(i) for i in train], [int(i) for i in test]
