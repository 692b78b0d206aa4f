"""From a recipe to a trained model: the entry points the CLI, ``scripts/train.py`` and user code call.

:func:`build_trainer` wires the recipe's task (data, model, tokenizer, collator, metrics) and its tricks and
callbacks into the engine's :class:`~nlp_cv_tricks.engine.trainer.Trainer` (through the plug-in tables of
:mod:`nlp_cv_tricks.engine.plugins`); :func:`train` also runs it.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

from accelerate.utils import set_seed

from .config import Recipe, load_recipe
from .engine.plugins import build_tricks
from .engine.trainer import FitResult, Trainer, make_accelerator
from .tasks import build_task_components

__all__ = ["build_trainer", "train"]


def build_trainer(recipe: Union[Recipe, str, os.PathLike], overrides: Sequence[str] = (),
                  output_dir: Optional[str] = None, accelerator=None, plugins: Optional[list] = None) -> Trainer:
    """Load and validate the data, build the model and tokenizer, tokenize: everything before step one.
    ``recipe`` is a :class:`Recipe` or a YAML path (then ``overrides`` are ``section.key=value`` strings);
    ``accelerator`` an Accelerator of your own (default: the run's, from the recipe); ``plugins`` extra ready
    Trick/Callback objects run after the recipe's."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, list(overrides))
    elif overrides:
        raise ValueError("overrides apply to a recipe file; change the Recipe object itself instead")
    accelerator = accelerator or make_accelerator(recipe, output_dir)
    set_seed(recipe.train.seed)
    components = build_task_components(recipe, accelerator)
    tricks = build_tricks(recipe.tricks) + list(plugins or [])
    return Trainer(recipe, accelerator=accelerator, output_dir=accelerator.project_dir, tricks=tricks, **components)


def train(recipe: Union[Recipe, str, os.PathLike], overrides: Sequence[str] = (),
          output_dir: Optional[str] = None) -> FitResult:
    """:func:`build_trainer` then ``fit()``: the run directory, the best model and its metrics."""
    return build_trainer(recipe, overrides, output_dir).fit()
