"""nlp-cv-tricks: fine-tuning NLP and CV models with the tuning tricks practitioners swear by.

The public names below are imported on first use (PEP 562), so ``import nlp_cv_tricks`` loads nothing beyond the
recipe schema; tasks, tricks, architectures and CLI verbs are named in static tables and imported when a recipe
or a command asks for them. To load a model of the package's own architectures (text baselines, chunk-and-pool,
MRC heads) with the ``transformers`` Auto classes, call :func:`register_auto_classes` first (the package's own
loaders do).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attr" (relative to this package)
_LAZY = {
    "Recipe": "config:Recipe",
    "RecipeError": "config:RecipeError",
    "load_recipe": "config:load_recipe",
    "Trainer": "engine.trainer:Trainer",
    "FitResult": "engine.trainer:FitResult",
    "Trick": "engine.events:Trick",
    "Callback": "engine.events:Callback",
    "TrainState": "engine.state:TrainState",
    "build_trainer": "runner:build_trainer",
    "train": "runner:train",
    "StepContext": "engine.step:StepContext",
    "TrickStep": "integrations.loop:TrickStep",
    "TricksTrainer": "integrations.transformers:TricksTrainer",
    "with_tricks": "integrations.transformers:with_tricks",
    "register_trick": "tricks.registry:register_trick",
    "available_tricks": "tricks.registry:available_tricks",
    "build_tricks": "runner:build_tricks",
    "register_callback": "callbacks.registry:register_callback",
    "available_callbacks": "callbacks.registry:available_callbacks",
    "build_callbacks": "callbacks.registry:build_callbacks",
    "register_task": "tasks:register_task",
    "register_architecture": "models.factory:register_architecture",
    "register_auto_classes": "models.auto:register_auto_classes",
    "evaluate_file": "inference:evaluate_file",
    "predict_file": "inference:predict_file",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nlp_cv_tricks' has no attribute {name!r}")
    module, _, attr = _LAZY[name].partition(":")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
