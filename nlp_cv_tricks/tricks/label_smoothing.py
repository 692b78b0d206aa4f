"""Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture").

Replaces the one-hot target by ``(1 - epsilon) * one_hot + epsilon / num_classes``. Expected effect: less
over-confident logits, often a small accuracy gain and better calibration on noisy or many-class data.
Cost: none (same forward/backward). Hook used: ``loss_fn`` (replaces the criterion).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine.events import Trick


def label_smoothing_loss(logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1,
                         ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy against smoothed targets; equals ``F.cross_entropy(..., label_smoothing=epsilon)``."""
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1),
                           label_smoothing=epsilon, ignore_index=ignore_index)


class LabelSmoothing(Trick):
    """Recipe key ``label_smoothing`` (option ``epsilon``, default 0.1): the criterion becomes cross-entropy
    against ``(1 - epsilon) * one_hot + epsilon / num_classes`` (Szegedy et al. 2016). Expected effect: less
    over-confident logits, often a small accuracy gain and better calibration. Cost: none."""

    name = "label_smoothing"

    replaces_criterion = True

    def __init__(self, epsilon: float = 0.1):
        if not 0.0 <= float(epsilon) < 1.0:
            raise ValueError(f"label_smoothing.epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = float(epsilon)

    def loss_fn(self, logits, labels, step):
        return label_smoothing_loss(logits, labels, self.epsilon)
