"""Tasks: each task (options, preprocessing for training and inference, collator, metrics, post-processing) has
one module here; this package maps task names to their builders.

Task builders: from a recipe to the model, tokenizer, datasets and task object the trainer needs.

Each task name (``recipe.task``) maps to a builder ``(recipe, accelerator) -> dict`` whose keys are
:class:`~nlp_cv_tricks.engine.trainer.Trainer` constructor arguments. The built-in builders are named in a static
table and imported when a recipe asks for them (so a recipe's ``task:`` validates the same whatever was imported
before); third-party tasks register with :func:`register_task` or the entry point group ``nlp_cv_tricks.tasks``.
"""

from __future__ import annotations

from ..engine.plugins import TASKS, build_task_components, register_task  # noqa: F401  (the table is the engine's)
