"""Loss replacements for imbalanced data: focal loss and class-weighted cross-entropy.

Both reduce by the plain mean over the non-ignored examples (``sum(w_i * l_i) / N``, not torch's
``sum(w_i * l_i) / sum(w_i)``): the plain mean is the same whether a batch is processed at once or in equal
micro-batches, so gradient accumulation gives the same update.

Class weights can be given or derived from the training label counts (``trainer.label_counts``):
``balanced`` = ``N / (K * n_c)`` (scikit-learn's ``class_weight="balanced"``), ``inverse_sqrt`` =
``1 / sqrt(n_c)`` normalised to mean 1 over the classes, ``effective`` = ``(1 - beta) / (1 - beta ** n_c)``
normalised to mean 1 (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..engine.events import Trick

__all__ = ["focal_loss", "weighted_cross_entropy", "class_weights_from_counts", "label_counts_of", "FocalLoss",
           "ClassWeights"]

WEIGHT_SCHEMES = ("balanced", "inverse_sqrt", "effective")


def class_weights_from_counts(counts: Sequence[int], scheme: str = "balanced", beta: float = 0.999) -> list[float]:
    """Per-class weights from label counts (index = label id). A class with no example gets weight 0 and a
    ``ValueError`` is raised when no class has examples."""
    c = torch.as_tensor([float(x) for x in counts], dtype=torch.float64)
    if c.dim() != 1 or c.numel() < 2:
        raise ValueError(f"class weights need counts of at least 2 classes, got {list(counts)!r}")
    if (c < 0).any():
        raise ValueError(f"label counts must be >= 0, got {list(counts)!r}")
    present = c > 0
    if not present.any():
        raise ValueError("label counts are all zero")
    k = int(present.sum())
    w = torch.zeros_like(c)
    if scheme == "balanced":
        w[present] = c.sum() / (k * c[present])
    elif scheme == "inverse_sqrt":
        w[present] = 1.0 / c[present].sqrt()
        w[present] = w[present] / w[present].mean()
    elif scheme == "effective":
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"effective-number beta must be in [0, 1), got {beta}")
        w[present] = (1.0 - beta) / (1.0 - beta ** c[present])
        w[present] = w[present] / w[present].mean()
    else:
        raise ValueError(f"class weight scheme must be one of {WEIGHT_SCHEMES}, got {scheme!r}")
    return [float(x) for x in w]


def _flatten(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int):
    logits = logits.float().reshape(-1, logits.size(-1))
    labels = labels.reshape(-1).long()
    if labels.numel() != logits.size(0):
        raise ValueError(f"{labels.numel()} labels for {logits.size(0)} rows of logits")
    keep = labels != ignore_index
    bad = keep & ((labels < 0) | (labels >= logits.size(-1)))
    if bad.any():
        raise ValueError(f"label {int(labels[bad][0])} out of range for {logits.size(-1)} classes")
    return logits[keep], labels[keep], int(labels.numel())


def _alpha_vector(alpha, num_classes: int, device) -> Optional[torch.Tensor]:
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        if num_classes != 2:
            raise ValueError(f"a scalar focal alpha ({alpha}) is defined for 2 classes (weight of class 1, "
                             f"1 - alpha for class 0); give one weight per class for {num_classes} classes")
        alpha = [1.0 - float(alpha), float(alpha)]
    a = torch.as_tensor(alpha, dtype=torch.float32, device=device)
    if a.numel() != num_classes:
        raise ValueError(f"{a.numel()} class weights for {num_classes} classes")
    return a


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0,
               alpha: Union[None, float, Sequence[float], torch.Tensor] = None, ignore_index: int = -100,
               reduction: str = "mean") -> torch.Tensor:
    """Softmax focal loss ``-alpha_y * (1 - p_y) ** gamma * log p_y`` (Lin et al., ICCV 2017).

    ``gamma=0`` and ``alpha=None`` is exactly cross-entropy. ``alpha``: None, a scalar (2 classes: weight of
    class 1, ``1 - alpha`` for class 0) or one weight per class. Reduction ``mean`` over the non-ignored rows
    (0 when there are none), ``sum`` or ``none`` (per kept row).
    """
    if gamma < 0:
        raise ValueError(f"focal gamma must be >= 0, got {gamma}")
    lg, lb, _ = _flatten(logits, labels, ignore_index)
    logp = F.log_softmax(lg, dim=-1).gather(1, lb[:, None]).squeeze(1)
    p = logp.exp()
    loss = -logp if gamma == 0 else -((1.0 - p).clamp_min(0.0) ** gamma) * logp
    a = _alpha_vector(alpha, lg.size(-1), lg.device)
    if a is not None:
        loss = loss * a[lb]
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / max(lb.numel(), 1)
    raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: Sequence[float] | torch.Tensor,
                           ignore_index: int = -100) -> torch.Tensor:
    """Class-weighted cross-entropy, ``sum_i w_{y_i} * CE_i / N`` over the N non-ignored rows."""
    lg, lb, _ = _flatten(logits, labels, ignore_index)
    w = torch.as_tensor(weights, dtype=torch.float32, device=lg.device)
    if w.numel() != lg.size(-1):
        raise ValueError(f"{w.numel()} class weights for {lg.size(-1)} classes")
    return F.cross_entropy(lg, lb, weight=w, reduction="sum") / max(lb.numel(), 1)


def label_counts_of(trainer) -> list[int]:
    """Training label counts: ``trainer.label_counts`` (preferred), else counted from ``trainer.train_dataset``'s
    ``labels``/``label`` column."""
    counts = getattr(trainer, "label_counts", None)
    if counts is not None:
        return [int(c) for c in (counts.tolist() if torch.is_tensor(counts) else counts)]
    ds = getattr(trainer, "train_dataset", None)
    if ds is not None and hasattr(ds, "column_names"):
        for col in ("labels", "label"):
            if col in ds.column_names:
                labels = torch.as_tensor(ds[col]).reshape(-1)
                labels = labels[labels >= 0]
                n = getattr(getattr(trainer, "config", None), "num_labels", None) or int(labels.max()) + 1
                return torch.bincount(labels, minlength=int(n)).tolist()
    raise ValueError("class weights derived from the label distribution need trainer.label_counts "
                     "(or a trainer.train_dataset with a 'labels' column)")


def _resolve_weights(spec, trainer, beta: float, what: str):
    if spec is None or isinstance(spec, (int, float)):
        return spec
    if isinstance(spec, str):
        if spec not in WEIGHT_SCHEMES:
            raise ValueError(f"{what} must be a list of weights or one of {WEIGHT_SCHEMES}, got {spec!r}")
        return class_weights_from_counts(label_counts_of(trainer), spec, beta)
    return [float(x) for x in spec]


def _check_spec(spec, what: str):
    if spec is None or isinstance(spec, (int, float)):
        return
    if isinstance(spec, str):
        if spec not in WEIGHT_SCHEMES:
            raise ValueError(f"{what} must be a list of weights or one of {WEIGHT_SCHEMES}, got {spec!r}")
        return
    try:
        vals = [float(x) for x in spec]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of numbers or one of {WEIGHT_SCHEMES}, got {spec!r}") from None
    if any(v < 0 for v in vals):
        raise ValueError(f"{what} must be >= 0, got {spec!r}")


class FocalLoss(Trick):
    """Focal loss (Lin, Goyal, Girshick, He & Dollar, "Focal Loss for Dense Object Detection", ICCV 2017).

    Down-weights well-classified examples by ``(1 - p_y) ** gamma`` so training concentrates on hard and
    minority-class examples. Expected effect: helps heavily imbalanced data (minority recall / macro-F1); on
    balanced data usually neutral. Tune ``gamma`` on a 10x grid (0.1, 1, 10 around the paper's 2).
    Cost: none (same forward/backward).

    Recipe key ``focal_loss``: ``gamma`` (2.0), ``alpha`` (null, a number for 2 classes, a list per class, or
    ``balanced``/``inverse_sqrt``/``effective`` derived from the training label counts), ``beta`` (0.999, for
    ``effective``).
    """

    name = "focal_loss"

    replaces_criterion = True

    def __init__(self, gamma: float = 2.0, alpha=None, beta: float = 0.999):
        if float(gamma) < 0:
            raise ValueError(f"focal_loss.gamma must be >= 0, got {gamma}")
        _check_spec(alpha, "focal_loss.alpha")
        self.gamma, self.alpha, self.beta = float(gamma), alpha, float(beta)
        self._alpha = alpha if not isinstance(alpha, str) else None

    def on_fit_start(self, trainer):
        self._alpha = _resolve_weights(self.alpha, trainer, self.beta, "focal_loss.alpha")

    def loss_fn(self, logits, labels, step):
        if isinstance(self.alpha, str) and self._alpha is None:
            self._alpha = _resolve_weights(self.alpha, step.state, self.beta, "focal_loss.alpha")
        return focal_loss(logits, labels, self.gamma, self._alpha)


class ClassWeights(Trick):
    """Class-weighted cross-entropy (cost-sensitive learning).

    Expected effect: raises minority-class recall on imbalanced data at some cost in precision/accuracy.
    Cost: none. Recipe key ``class_weights``: ``weights`` (a list per class or ``balanced`` (default) /
    ``inverse_sqrt`` / ``effective`` from the training label counts), ``beta`` (0.999, for ``effective``).
    """

    name = "class_weights"

    replaces_criterion = True

    def __init__(self, weights="balanced", beta: float = 0.999):
        if weights is None or isinstance(weights, (int, float)):
            raise ValueError(f"class_weights.weights must be a list or one of {WEIGHT_SCHEMES}, got {weights!r}")
        _check_spec(weights, "class_weights.weights")
        self.weights, self.beta = weights, float(beta)
        self._weights = None if isinstance(weights, str) else [float(x) for x in weights]

    def on_fit_start(self, trainer):
        self._weights = _resolve_weights(self.weights, trainer, self.beta, "class_weights.weights")

    def loss_fn(self, logits, labels, step):
        if self._weights is None:
            self._weights = _resolve_weights(self.weights, step.state, self.beta, "class_weights.weights")
        return weighted_cross_entropy(logits, labels, self._weights)
