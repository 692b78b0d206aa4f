"""Tricks as composable plug-ins: each module holds a pure function and a :class:`Trick` class.

Recipe keys: label_smoothing, grad_norm_logging, fgm, pgd, freelb, awp, pixel_fgsm, pixel_pgd, rdrop,
focal_loss, class_weights, embedding_dropout, lr_halving, init; the diagnostics add imbalance_watch, train_eval
and layer_report, the image task mixup and ema (loaded when a recipe names them). ``decay_parameter_groups``
(weight decay with bias and norm parameters excluded) is the optimizer helper the trainer uses.
"""

from .registry import available_tricks, build_trick, build_tricks, register_trick
from . import grad_norm, label_smoothing  # noqa: F401  (registration)
from . import adversarial, init, losses, lr, rdrop, regularization  # noqa: F401  (registration)
from .adversarial import AWP, FGM, PGD, FreeLB, PixelFGSM, PixelPGD
from .init import Init, reinit_
from .losses import ClassWeights, FocalLoss, class_weights_from_counts, focal_loss, weighted_cross_entropy
from .lr import LRHalving, halving_values, scale_lr_
from .rdrop import RDrop, rdrop_kl, symmetric_kl
from .regularization import EmbeddingDropout, decay_parameter_groups, no_decay_parameter_names

__all__ = [
    "available_tricks", "build_trick", "build_tricks", "register_trick",
    "FGM", "PGD", "FreeLB", "AWP", "PixelFGSM", "PixelPGD", "RDrop", "FocalLoss", "ClassWeights",
    "EmbeddingDropout", "LRHalving", "Init",
    "focal_loss", "weighted_cross_entropy", "class_weights_from_counts", "symmetric_kl", "rdrop_kl",
    "decay_parameter_groups", "no_decay_parameter_names", "halving_values", "scale_lr_", "reinit_",
]
