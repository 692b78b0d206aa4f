"""Tasks: each task (options, preprocessing for training and inference, collator, metrics, post-processing) has
one module here; this package maps task names to their builders.

Task builders: from a recipe to the model, tokenizer, datasets and task object the trainer needs.

Each task name (``recipe.task``) maps to a builder ``(recipe, accelerator) -> dict`` whose keys are
:class:`~nlp_cv_tricks.engine.trainer.Trainer` constructor arguments. The built-in builders are named in a static
table and imported when a recipe asks for them (so a recipe's ``task:`` validates the same whatever was imported
before); third-party tasks register with :func:`register_task` or the entry point group ``nlp_cv_tricks.tasks``.
"""

from __future__ import annotations

from typing import Callable

from ..config import BUILTIN_TASKS, Recipe, register_task_name
from ..utils.registry import LazyRegistry

__all__ = ["TASKS", "register_task", "build_task_components"]

# ---- the table --------------------------------------------------------------------------------------------------
# Each task name (``recipe.task``) maps to a builder ``(recipe, accelerator) -> dict`` of Trainer constructor
# arguments; the builders live in ``nlp_cv_tricks/tasks/`` and are imported when a recipe asks for them.
BUILTIN_TASK_BUILDERS = {
    "text-classification": "nlp_cv_tricks.tasks.text_classification:build_text_classification",
    "long-text-classification": "nlp_cv_tricks.tasks.long_text:build_long_text_task",
    "question-answering": "nlp_cv_tricks.tasks.question_answering:build_qa_components",
    "image-classification": "nlp_cv_tricks.tasks.image_classification:build_image_classification",
}
assert set(BUILTIN_TASK_BUILDERS) == set(BUILTIN_TASKS)
TASKS = LazyRegistry("task", BUILTIN_TASK_BUILDERS, entry_point_group="nlp_cv_tricks.tasks")


def register_task(name: str, builder: Callable | str) -> None:
    """Add a task (a builder, or ``"module:attr"`` imported on use) under ``name``."""
    TASKS.register(name, builder)
    register_task_name(name)


def build_task_components(recipe: Recipe, accelerator) -> dict:
    """The task's components, built from a copy of ``recipe`` whose relative data paths are resolved against
    the data root (:mod:`nlp_cv_tricks.data.root`); a missing dataset fails here, before anything is read."""
    from ..data.root import resolve_data_paths

    if recipe.task not in TASKS:
        raise ValueError(TASKS.unknown_message(recipe.task, "task"))
    return TASKS.get(recipe.task)(resolve_data_paths(recipe), accelerator)


