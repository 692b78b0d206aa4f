"""Training dynamics of every training example, recorded on the training forwards (no extra pass): recipe key
``training_dynamics``.

Per example and epoch: p(given label), the margin (gold logit minus the largest other logit) and correctness;
across epochs they give *confidence*, *variability* and *correctness* (Swayamdipta et al., "Dataset Cartography",
EMNLP 2020) and the *area under the margin* (Pleiss et al., "Identifying Mislabeled Data using the Area Under the
Margin Ranking", NeurIPS 2020). Hard-case mining (``nlp_cv_tricks.hardcases.mine``) runs it on every fold.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..engine.events import Callback

__all__ = ["TrainingDynamics"]


class TrainingDynamics(Callback):
    """Records, for every training example, p(given label), the margin and correctness from the clean forward of
    each micro-batch (``on_micro_batch``: a second R-Drop forward or an adversarial pass is not counted), and
    closes an epoch at ``on_epoch_end``; across processes the records are gathered. Cost: a softmax per batch.

    The batches must carry each example's id in ``id_column`` (hard-case mining adds ``idx``, the row in the
    training file; its task keeps the column from the model). Single-label classification only (logits
    ``[B, C]``)."""

    name = "training_dynamics"

    def __init__(self, id_column: str = "idx"):
        self.id_column = str(id_column)
        self.epochs: list[dict[int, tuple[float, float, float]]] = []
        self._cur: dict[int, list[float]] = {}

    def on_fit_start(self, state) -> None:
        columns = getattr(state.train_dataset, "column_names", None)
        if columns is not None and self.id_column not in columns:
            raise ValueError(f"training_dynamics: the training data has no {self.id_column!r} column (an id per "
                             f"example; columns: {sorted(columns)}); add one and keep it from the model, as hard-case "
                             "mining does (nlp-cv-tricks hardcases mine)")

    def on_micro_batch(self, state, view) -> None:
        if self.id_column not in view.batch:
            raise ValueError(f"training_dynamics: the batches have no {self.id_column!r} column (an id per example; "
                             f"columns: {sorted(view.batch)}); add one to the training data and keep it from the "
                             "model, as hard-case mining does")
        self.record(view.batch[self.id_column], view.logits, view.labels)

    @torch.no_grad()
    def record(self, idx: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits = logits.detach().float().view(-1, logits.size(-1))
        labels = labels.view(-1).long()
        probs = logits.softmax(-1)
        ar = torch.arange(len(labels), device=logits.device)
        p_gold = probs[ar, labels]
        gold = logits[ar, labels]
        other = logits.clone()
        other[ar, labels] = float("-inf")
        margin = gold - other.max(-1).values
        correct = (logits.argmax(-1) == labels).float()
        for i, p, m, c in zip(idx.view(-1).tolist(), p_gold.tolist(), margin.tolist(), correct.tolist()):
            acc = self._cur.setdefault(int(i), [0.0, 0.0, 0.0, 0])
            acc[0] += p
            acc[1] += m
            acc[2] += c
            acc[3] += 1

    def on_epoch_end(self, state, epoch: int) -> None:
        items = [(i, v[0] / v[3], v[1] / v[3], v[2] / v[3]) for i, v in self._cur.items()]
        acc = state.accelerator
        if acc.num_processes > 1:
            from accelerate.utils import gather_object

            items = gather_object(items)
        self.epochs.append({i: (p, m, c) for i, p, m, c in items})
        self._cur = {}

    def summary(self, ids: Sequence[int]) -> dict[str, np.ndarray]:
        """Per-example statistics over the recorded epochs (NaN for an example never seen)."""
        n = len(ids)
        out = {k: np.full(n, np.nan) for k in ("confidence", "variability", "correctness", "aum")}
        out["epochs_seen"] = np.zeros(n, dtype=np.int64)
        for j, i in enumerate(ids):
            vals = [e[i] for e in self.epochs if i in e]
            if not vals:
                continue
            arr = np.asarray(vals)
            out["confidence"][j] = arr[:, 0].mean()
            out["variability"][j] = arr[:, 0].std()
            out["aum"][j] = arr[:, 1].mean()
            out["correctness"][j] = arr[:, 2].mean()
            out["epochs_seen"][j] = len(vals)
        return out
