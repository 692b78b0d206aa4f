"""Tricks as composable plug-ins: each module holds a pure function and a :class:`Trick` class.

Recipe keys: label_smoothing, fgm, pgd, freelb, awp, pixel_fgsm, pixel_pgd, rdrop, focal_loss, class_weights,
embedding_dropout, lr_halving, init, mixup, ema (each module imported when a recipe names it: the table is
:mod:`nlp_cv_tricks.tricks.registry`). Observers (grad_norm_logging, imbalance_watch, train_eval,
layer_report) are callbacks (:mod:`nlp_cv_tricks.callbacks`, recipe key ``callbacks:``). ``decay_parameter_groups`` (weight decay with bias and
norm parameters excluded) is re-exported from the optimizer factory the trainer uses.
"""

from .registry import available_tricks, build_trick, build_tricks, register_trick

# the tricks themselves: name -> module, imported on first use (PEP 562), so reading the table (the run doctor's
# remedies) loads no torch
_HOMES = {
    **dict.fromkeys(("AWP", "FGM", "PGD", "FreeLB", "PixelFGSM", "PixelPGD"), ".adversarial"),
    **dict.fromkeys(("Init", "reinit_"), ".init"),
    "LabelSmoothing": ".label_smoothing",
    **dict.fromkeys(("ClassWeights", "FocalLoss", "class_weights_from_counts", "focal_loss", "weighted_cross_entropy"),
                    ".losses"),
    **dict.fromkeys(("LRHalving", "halving_values", "scale_lr_"), ".lr"),
    **dict.fromkeys(("RDrop", "rdrop_kl", "symmetric_kl"), ".rdrop"),
    **dict.fromkeys(("EmbeddingDropout", "decay_parameter_groups", "no_decay_parameter_names"), ".regularization"),
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "available_tricks", "build_trick", "build_tricks", "register_trick",
    "FGM", "PGD", "FreeLB", "AWP", "PixelFGSM", "PixelPGD", "RDrop", "FocalLoss", "ClassWeights",
    "EmbeddingDropout", "LRHalving", "Init", "LabelSmoothing",
    "focal_loss", "weighted_cross_entropy", "class_weights_from_counts", "symmetric_kl", "rdrop_kl",
    "decay_parameter_groups", "no_decay_parameter_names", "halving_values", "scale_lr_", "reinit_",
]
