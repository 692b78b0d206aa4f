"""The package's tricks in loops that are not its own: ``transformers.Trainer`` (:mod:`.transformers`:
``TricksTrainer``, ``with_tricks``) and a user's Accelerate or PyTorch loop (:class:`TrickStep`). Each runs the
same Trick objects through the same step function as the package's trainer
(:func:`nlp_cv_tricks.engine.step.run_passes`). Names are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrickStep": "loop:TrickStep",
    "TricksTrainer": "transformers:TricksTrainer",
    "TricksTrainerMixin": "transformers:TricksTrainerMixin",
    "with_tricks": "transformers:with_tricks",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = _LAZY[name].partition(":")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value
