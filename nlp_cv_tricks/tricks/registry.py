"""The trick table: recipe name → the class that implements it, imported when a recipe names it.

``import nlp_cv_tricks`` imports none of the tricks. Third-party tricks: the entry point group
``nlp_cv_tricks.tricks`` (``name = "module:Class"``), or :func:`register_trick` in code that runs before the
recipe is built. Observers (callbacks) have their own table in :mod:`nlp_cv_tricks.callbacks.registry`.

A recipe's ``tricks`` list holds names or one-key mappings of name → options::

    tricks:
      - label_smoothing: {epsilon: 0.1}
      - fgm
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..utils.registry import PluginTable

if TYPE_CHECKING:  # the table itself imports no torch: the run doctor reads the names
    from ..engine.events import Trick

__all__ = ["TRICKS", "BUILTIN_TRICKS", "register_trick", "available_tricks", "build_trick", "build_tricks"]

BUILTIN_TRICKS: dict[str, str] = {
    "label_smoothing": "nlp_cv_tricks.tricks.label_smoothing:LabelSmoothing",
    "fgm": "nlp_cv_tricks.tricks.adversarial:FGM",
    "pgd": "nlp_cv_tricks.tricks.adversarial:PGD",
    "freelb": "nlp_cv_tricks.tricks.adversarial:FreeLB",
    "awp": "nlp_cv_tricks.tricks.adversarial:AWP",
    "pixel_fgsm": "nlp_cv_tricks.tricks.adversarial:PixelFGSM",
    "pixel_pgd": "nlp_cv_tricks.tricks.adversarial:PixelPGD",
    "rdrop": "nlp_cv_tricks.tricks.rdrop:RDrop",
    "focal_loss": "nlp_cv_tricks.tricks.losses:FocalLoss",
    "class_weights": "nlp_cv_tricks.tricks.losses:ClassWeights",
    "embedding_dropout": "nlp_cv_tricks.tricks.regularization:EmbeddingDropout",
    "lr_halving": "nlp_cv_tricks.tricks.lr:LRHalving",
    "init": "nlp_cv_tricks.tricks.init:Init",
    "mixup": "nlp_cv_tricks.tricks.mixup:MixupCutmix",
    "ema": "nlp_cv_tricks.tricks.ema:ModelEma",
}
ENTRY_POINT_GROUP = "nlp_cv_tricks.tricks"
TRICKS = PluginTable("trick", BUILTIN_TRICKS, entry_point_group=ENTRY_POINT_GROUP)


def register_trick(name: str) -> "Callable[[type[Trick]], type[Trick]]":
    """Class decorator: make a trick available to recipes under ``name``."""
    return TRICKS.register_class(name)


def available_tricks() -> list[str]:
    """Every trick name a recipe may use (built-in, registered, entry points); nothing is imported."""
    return TRICKS.names()


def build_trick(spec: Any, where: str = "tricks") -> Trick:
    """A trick from a recipe spec (a name, or a one-key mapping name -> options); a ready instance is taken as
    it is."""
    from ..engine.events import Trick

    if isinstance(spec, Trick):
        return spec
    return TRICKS.build(spec, where)


def build_tricks(specs: Iterable[Any] | None, where: str = "tricks") -> list[Trick]:
    """Build the tricks of a recipe, in order; a name appears once, at most one replaces the criterion."""
    from ..engine.events import check_plugins

    return check_plugins([build_trick(s, f"{where}[{i}]") for i, s in enumerate(specs or [])], where)
