"""Tasks: each task (options, preprocessing for training and inference, collator, metrics, post-processing) has
one module here; this package maps task names to their builders.

Task builders: from a recipe to the model, tokenizer, datasets and task object the trainer needs.

Each task name (``recipe.task``) maps to a builder ``(recipe, accelerator) -> dict`` whose keys are
:class:`~nlp_cv_tricks.engine.trainer.Trainer` constructor arguments. The built-in builders are named in a static
table and imported when a recipe asks for them (so a recipe's ``task:`` validates the same whatever was imported
before); third-party tasks register with :func:`register_task` or the entry point group ``nlp_cv_tricks.tasks``.

Each task name also maps to its :class:`~nlp_cv_tricks.engine.task.Task` class (:data:`TASK_TYPES`, entry point
group ``nlp_cv_tricks.task_types``), whose class methods cover a saved model's life: ``eval``, ``predict``, the
model card, the lines ``train`` prints. :func:`task_type_of_model_dir` finds the class of a saved model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ..config import BUILTIN_TASKS, Recipe, register_task_name
from ..utils.registry import LazyRegistry

__all__ = ["TASKS", "TASK_TYPES", "register_task", "build_task_components", "task_type", "task_type_of_model_dir",
           "task_modality"]

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

# Each task name maps to its Task class: what eval, predict, push and train's closing lines ask of a saved model.
BUILTIN_TASK_TYPES = {
    "text-classification": "nlp_cv_tricks.tasks.text_classification:TextClassificationTask",
    "long-text-classification": "nlp_cv_tricks.tasks.long_text:LongTextTask",
    "question-answering": "nlp_cv_tricks.tasks.question_answering:QATask",
    "image-classification": "nlp_cv_tricks.tasks.image_classification:ImageClassificationTask",
}
assert set(BUILTIN_TASK_TYPES) == set(BUILTIN_TASKS)
TASK_TYPES = LazyRegistry("task", BUILTIN_TASK_TYPES, entry_point_group="nlp_cv_tricks.task_types")
# the ``modality`` of the built-in Task classes (tests/test_task_protocol.py checks it against the classes)
_BUILTIN_MODALITY = {"text-classification": "text", "long-text-classification": "text", "question-answering": "text",
                     "image-classification": "image"}
# a saved model without a recipe naming its task: the classes that recognise their models, asked in this order
# (a model none of them recognises is a text classifier)
_RECOGNIZING = ("question-answering", "image-classification")
_DEFAULT_TASK = BUILTIN_TASKS[0]


def register_task(name: str, builder: Callable | str, task_type: Optional[type | str] = None) -> None:
    """Add a task (a builder, or ``"module:attr"`` imported on use) under ``name``; ``task_type``: its
    :class:`~nlp_cv_tricks.engine.task.Task` class (or ``"module:Class"``), which gives its saved models
    ``eval``, ``predict`` and a model card."""
    TASKS.register(name, builder)
    if task_type is not None:
        TASK_TYPES.register(name, task_type)
    register_task_name(name)


def task_type(name: str):
    """The :class:`~nlp_cv_tricks.engine.task.Task` class of the task ``name`` (a recipe's ``task:``)."""
    if name not in TASK_TYPES:
        raise ValueError(TASK_TYPES.unknown_message(name, "task"))
    return TASK_TYPES.get(name)


def task_modality(name: str) -> str:
    """What one example of the task ``name`` is: ``"text"`` or ``"image"`` (``"text"`` for a task without a
    registered class). A built-in task's answer needs no import of its class (the run report asks it)."""
    if name in _BUILTIN_MODALITY and TASK_TYPES.target_of(name) == BUILTIN_TASK_TYPES[name]:
        return _BUILTIN_MODALITY[name]
    return TASK_TYPES.get(name).modality if name in TASK_TYPES else "text"


def _saved_task_name(model_dir: Path) -> Optional[str]:
    """The ``task:`` of the recipe saved with a model (None when there is none or it cannot be read)."""
    import yaml

    f = model_dir / "recipe.yaml"
    try:
        raw = yaml.safe_load(f.read_text(encoding="utf-8")) if f.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = raw.get("task") if isinstance(raw, dict) else None
    return str(name) if name else None


def task_type_of_model_dir(path) -> type:
    """The Task class of the model saved at ``path`` (a model directory, or a run directory: its ``best/``, else
    ``final/``): the task its saved recipe names, else the first task that recognises the model, else text
    classification (whose loading says what to give instead of a path that holds no model)."""
    from ..utils.model_dir import resolve_model_dir

    try:
        d = resolve_model_dir(str(path))
    except FileNotFoundError:
        return TASK_TYPES.get(_DEFAULT_TASK)
    for name in _RECOGNIZING:  # what the saved files are decides over a recipe (a copied or edited recipe.yaml)
        cls = TASK_TYPES.get(name)
        if cls.recognizes(d):
            return cls
    name = _saved_task_name(d)
    if name and name in TASK_TYPES:
        return TASK_TYPES.get(name)
    for name in TASK_TYPES.names():
        if name not in BUILTIN_TASKS and TASK_TYPES.get(name).recognizes(d):
            return TASK_TYPES.get(name)
    return TASK_TYPES.get(_DEFAULT_TASK)


def build_task_components(recipe: Recipe, accelerator) -> dict:
    """The task's components, built from a copy of ``recipe`` whose relative data paths are resolved against
    the data root (:mod:`nlp_cv_tricks.data.root`); a missing dataset fails here, before anything is read."""
    from ..data.root import resolve_data_paths

    if recipe.task not in TASKS:
        raise ValueError(TASKS.unknown_message(recipe.task, "task"))
    return TASKS.get(recipe.task)(resolve_data_paths(recipe), accelerator)


