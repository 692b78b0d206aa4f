"""From a recipe to a trained model: the entry points the CLI, ``scripts/train.py`` and user code call.

:func:`build_trainer` wires the recipe's task (data, model, tokenizer, collator, metrics: the task table of
:mod:`nlp_cv_tricks.tasks`), its tricks (:mod:`nlp_cv_tricks.tricks.registry`), its callbacks
(:mod:`nlp_cv_tricks.callbacks.registry`) and, when ``output.report`` is on, the end-of-run report
(:class:`nlp_cv_tricks.report.run_report.RunReport`) into the engine's
:class:`~nlp_cv_tricks.engine.trainer.Trainer`, which runs the objects it is handed; :func:`train` also runs it.
This is where names become objects.

:func:`choose_engine` picks the loop: a FastText recipe that the compiled loop runs as the trainer would (plain
SGD, no tricks: :func:`nlp_cv_tricks.tasks.fasttext_compiled.compiled_fasttext_reasons`) trains there with
``train.engine: auto`` (the default) -- the same run directory and model, several times faster end to end, since
neither torch nor Accelerate is imported; :func:`train_compiled` runs it. The trainer's imports are made inside the
functions that need them, so choosing costs nothing.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from datetime import datetime
from typing import TYPE_CHECKING

from .config import Recipe, RecipeError, load_recipe
from .engine.result import FitResult
from .utils.registry import UnknownNameError, parse_spec

if TYPE_CHECKING:
    from .engine.trainer import Trainer

__all__ = ["build_trainer", "train", "build_plugins", "build_tricks", "build_callbacks", "choose_engine",
           "train_compiled"]

logger = logging.getLogger(__name__)
_NOTED: set[str] = set()


def _build_listed(spec: Any, where: str):
    """One entry of a recipe's ``tricks:`` list: a trick, or an observer listed there by a recipe written before
    ``callbacks:`` existed (it still runs, in its place, with a one-line note)."""
    from .callbacks.registry import CALLBACKS
    from .engine.events import Callback, Trick
    from .tricks.registry import TRICKS

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


def build_callbacks(specs: Iterable[Any] | None, where: str = "callbacks") -> list:
    """The observers of a recipe's ``callbacks:`` list (:func:`nlp_cv_tricks.callbacks.registry.build_callbacks`)."""
    from .callbacks.registry import build_callbacks as build

    return build(specs, where)


def build_tricks(specs: Iterable[Any] | None, where: str = "tricks") -> list:
    """The plug-ins of a recipe's ``tricks:`` list, in order: tricks (and, deprecated, observers listed there);
    ready Trick/Callback objects are taken as they are. A name appears once; at most one replaces the loss."""
    from .engine.events import check_plugins

    return check_plugins([_build_listed(s, f"{where}[{i}]") for i, s in enumerate(specs or [])], where)


def build_plugins(recipe: Recipe, extra: Sequence[Any] = (), report: Optional[bool] = None) -> list:
    """Every plug-in of a run, in the order the trainer calls them (and checkpoints their state): the recipe's
    ``tricks``, its ``callbacks``, the ready objects of ``extra``, then the end-of-run report when ``report``
    (default: ``recipe.output.report``)."""
    from .engine.events import check_plugins

    plugins = build_tricks(recipe.tricks) + build_callbacks(recipe.callbacks) + list(extra)
    if recipe.output.report if report is None else report:
        from .report.run_report import RunReport

        plugins.append(RunReport())
    return check_plugins(plugins, "tricks + callbacks")


def build_trainer(recipe: Union[Recipe, str, os.PathLike], overrides: Sequence[str] = (),
                  output_dir: Optional[str] = None, accelerator=None, plugins: Optional[list] = None, *,
                  seed: Optional[int] = None, adapt: Optional[Callable[[dict, list], dict]] = None) -> "Trainer":
    """Load and validate the data, build the model and tokenizer, tokenize: everything before step one.
    ``recipe`` is a :class:`Recipe` or a YAML path (then ``overrides`` are ``section.key=value`` strings);
    ``accelerator`` an Accelerator of your own (default: the run's, from the recipe); ``plugins`` extra ready
    Trick/Callback objects run after the recipe's; ``seed`` the seed set before the model is built (default
    ``train.seed``); ``adapt(components, plugins)`` returns the task's components (datasets, task, model,
    collator, ...) as the Trainer gets them: the hard-case mining trains on some rows, wraps the task."""
    from accelerate.utils import set_seed

    from .engine.trainer import Trainer, make_accelerator
    from .tasks import build_task_components

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


def choose_engine(recipe: Recipe) -> str:
    """``"compiled"`` or ``"trainer"``: the loop that trains ``recipe`` (``train.engine``; ``auto`` takes the
    compiled FastText loop when it runs the recipe as the trainer would). ``train.engine=compiled`` for a recipe it
    cannot run is a :class:`RecipeError` naming the options in the way."""
    engine = recipe.train.engine
    if engine == "trainer":
        return "trainer"
    from .tasks.fasttext_compiled import compiled_fasttext_reasons

    reasons = compiled_fasttext_reasons(recipe)
    if not reasons:
        return "compiled"
    if engine == "compiled":
        where = f"{recipe.source}: " if recipe.source else ""
        raise RecipeError(f"{where}train.engine=compiled cannot run this recipe ({'; '.join(reasons)}); it trains "
                          "FastText text classification with plain SGD and no tricks. Use train.engine=auto or "
                          "trainer")
    if recipe.model.name.lower().strip() in ("fasttext", "fast_text"):
        logger.info("FastText trained by the trainer, not the compiled loop: %s", "; ".join(reasons))
    return "trainer"


def train_compiled(recipe: Recipe, output_dir: Optional[str] = None) -> FitResult:
    """Train ``recipe`` (one :func:`choose_engine` sends to ``"compiled"``) with the compiled FastText loop: the same
    data checks, run directory, history, ``best/`` and end-of-run report as the trainer."""
    from .engine.compiled_loop import CompiledLoop
    from .tasks.fasttext_compiled import build_compiled_fasttext

    if output_dir is None:
        output_dir = recipe.output.dir.format(name=recipe.name, timestamp=datetime.now().strftime("%Y%m%d-%H%M%S"))
    model, dev_labels, names = build_compiled_fasttext(recipe)
    hooks, later = [], ["safetensors.numpy"]
    if recipe.output.report:
        from .report import REPORT_LIBRARIES, write_run_report

        later += REPORT_LIBRARIES
        hooks.append(lambda record_output, out, result: write_run_report(record_output, out))
    if recipe.output.report_to == "tensorboard":
        later += ["nlp_cv_tricks.utils.tensorboard_events", "tensorboard.summary.writer.event_file_writer",
                  "tensorboard.compat.proto.event_pb2", "tensorboard.compat.proto.summary_pb2"]
    from .utils.import_hooks import prefetch_imports

    loading = prefetch_imports(later)  # what the end of the run needs, on another core while the loop (no GIL) trains
    return CompiledLoop(recipe, model, output_dir, dev_labels, names, end_hooks=hooks,
                        imports_done=loading.join).fit()


def train(recipe: Union[Recipe, str, os.PathLike], overrides: Sequence[str] = (),
          output_dir: Optional[str] = None) -> FitResult:
    """Train ``recipe`` with the loop :func:`choose_engine` picks (the trainer: :func:`build_trainer` then
    ``fit()``): the run directory, the best model and its metrics."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, list(overrides))
    elif overrides:
        raise ValueError("overrides apply to a recipe file; change the Recipe object itself instead")
    if choose_engine(recipe) == "compiled":
        return train_compiled(recipe, output_dir)
    return build_trainer(recipe, output_dir=output_dir).fit()
