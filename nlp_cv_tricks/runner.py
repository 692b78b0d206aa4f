"""From a recipe to a trained model: the entry points the CLI, ``scripts/train.py`` and user code call.

:func:`build_trainer` wires the recipe's task (data, model, tokenizer, collator, metrics: the task table of
:mod:`nlp_cv_tricks.tasks`), its tricks (:mod:`nlp_cv_tricks.tricks.registry`), its callbacks
(:mod:`nlp_cv_tricks.callbacks.registry`) and, when ``output.report`` is on, the end-of-run report
(:class:`nlp_cv_tricks.report.run_report.RunReport`) into the engine's
:class:`~nlp_cv_tricks.engine.trainer.Trainer`, which runs the objects it is handed; :func:`train` also runs it.
This is where names become objects.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from accelerate.utils import set_seed

from .callbacks.registry import CALLBACKS, build_callbacks
from .config import Recipe, load_recipe
from .engine.events import Callback, Trick, check_plugins
from .engine.trainer import FitResult, Trainer, make_accelerator
from .tasks import build_task_components
from .tricks.registry import TRICKS
from .utils.registry import UnknownNameError, parse_spec

__all__ = ["build_trainer", "train", "build_plugins", "build_tricks", "build_callbacks"]

logger = logging.getLogger(__name__)
_NOTED: set[str] = set()


def _build_listed(spec: Any, where: str):
    """One entry of a recipe's ``tricks:`` list: a trick, or an observer listed there by a recipe written before
    ``callbacks:`` existed (it still runs, in its place, with a one-line note)."""
    if isinstance(spec, (Trick, Callback)):
        return spec
    name, _ = parse_spec(spec, where, "trick")
    if name in TRICKS:
        return TRICKS.build(spec, where)
    if name in CALLBACKS:
        if name not in _NOTED:
            _NOTED.add(name)
            logger.warning("%s: %r observes the run: list it under callbacks: (under tricks: it still runs; this "
                           "spelling is deprecated)", where, name)
        return CALLBACKS.build(spec, where)
    raise UnknownNameError(TRICKS.unknown_message(name, where, known=TRICKS.names() + CALLBACKS.names()))


def build_tricks(specs: Iterable[Any] | None, where: str = "tricks") -> list:
    """The plug-ins of a recipe's ``tricks:`` list, in order: tricks (and, deprecated, observers listed there);
    ready Trick/Callback objects are taken as they are. A name appears once; at most one replaces the loss."""
    return check_plugins([_build_listed(s, f"{where}[{i}]") for i, s in enumerate(specs or [])], where)


def build_plugins(recipe: Recipe, extra: Sequence[Any] = (), report: Optional[bool] = None) -> list:
    """Every plug-in of a run, in the order the trainer calls them (and checkpoints their state): the recipe's
    ``tricks``, its ``callbacks``, the ready objects of ``extra``, then the end-of-run report when ``report``
    (default: ``recipe.output.report``)."""
    plugins = build_tricks(recipe.tricks) + build_callbacks(recipe.callbacks) + list(extra)
    if recipe.output.report if report is None else report:
        from .report.run_report import RunReport

        plugins.append(RunReport())
    return check_plugins(plugins, "tricks + callbacks")


def build_trainer(recipe: Union[Recipe, str, os.PathLike], overrides: Sequence[str] = (),
                  output_dir: Optional[str] = None, accelerator=None, plugins: Optional[list] = None, *,
                  seed: Optional[int] = None, adapt: Optional[Callable[[dict, list], dict]] = None) -> Trainer:
    """Load and validate the data, build the model and tokenizer, tokenize: everything before step one.
    ``recipe`` is a :class:`Recipe` or a YAML path (then ``overrides`` are ``section.key=value`` strings);
    ``accelerator`` an Accelerator of your own (default: the run's, from the recipe); ``plugins`` extra ready
    Trick/Callback objects run after the recipe's; ``seed`` the seed set before the model is built (default
    ``train.seed``); ``adapt(components, plugins)`` returns the task's components (datasets, task, model,
    collator, ...) as the Trainer gets them: the hard-case mining trains on some rows, wraps the task."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, list(overrides))
    elif overrides:
        raise ValueError("overrides apply to a recipe file; change the Recipe object itself instead")
    accelerator = accelerator or make_accelerator(recipe, output_dir)
    set_seed(recipe.train.seed if seed is None else seed)
    components = build_task_components(recipe, accelerator)
    tricks = build_plugins(recipe, plugins or [])
    if adapt is not None:
        components = adapt(components, tricks)
    return Trainer(recipe, accelerator=accelerator, output_dir=accelerator.project_dir, tricks=tricks, **components)


def train(recipe: Union[Recipe, str, os.PathLike], overrides: Sequence[str] = (),
          output_dir: Optional[str] = None) -> FitResult:
    """:func:`build_trainer` then ``fit()``: the run directory, the best model and its metrics."""
    return build_trainer(recipe, overrides, output_dir).fit()
