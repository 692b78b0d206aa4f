"""Task builders: from a recipe to the model, tokenizer, datasets and task object the trainer needs.

Each task name (``recipe.task``) maps to a builder ``(recipe, accelerator) -> dict`` whose keys are
:class:`~nlp_cv_tricks.engine.trainer.Trainer` constructor arguments. The built-in builders are named in a static
table and imported when a recipe asks for them (so a recipe's ``task:`` validates the same whatever was imported
before); third-party tasks register with :func:`register_task` or the entry point group ``nlp_cv_tricks.tasks``.
"""

from __future__ import annotations

from typing import Callable

from .config import BUILTIN_TASKS, Recipe, register_task_name
from .utils.registry import LazyRegistry

TASKS = LazyRegistry("task", {
    "text-classification": "nlp_cv_tricks.tasks:_text_classification",
    "long-text-classification": "nlp_cv_tricks.models.long:build_long_text_task",
    "question-answering": "nlp_cv_tricks.data.mrc_task:build_qa_components",
    "image-classification": "nlp_cv_tricks.vision_task:build_image_classification",
}, entry_point_group="nlp_cv_tricks.tasks")
assert set(TASKS.names()) >= set(BUILTIN_TASKS)


def register_task(name: str, builder: Callable | str) -> None:
    """Add a task (a builder, or ``"module:attr"`` imported on use) under ``name``."""
    TASKS.register(name, builder)
    register_task_name(name)


def build_task_components(recipe: Recipe, accelerator) -> dict:
    if recipe.task not in TASKS:
        raise ValueError(TASKS.unknown_message(recipe.task, "task"))
    return TASKS.get(recipe.task)(recipe, accelerator)


def _text_classification(recipe: Recipe, accelerator) -> dict:
    from .data.text import load_text_classification, tokenize_dataset
    from .engine.task import ClassificationTask
    from .models.factory import build_classifier

    with accelerator.main_process_first():
        splits = load_text_classification(recipe.data)
    texts = splits.train[recipe.data.text_column][:]
    model, tokenizer = build_classifier(recipe.model, splits.label_map.id2label, texts)
    # the raw label values of the files, so eval/predict read files that use them (saved in config.json)
    model.config.nct_raw_labels = list(splits.label_map.raw)
    with accelerator.main_process_first():
        train = tokenize_dataset(splits.train, tokenizer, recipe.data)
        dev = tokenize_dataset(splits.dev, tokenizer, recipe.data) if splits.dev is not None else None
    return {
        "model": model,
        "tokenizer": tokenizer,
        "train_dataset": train,
        "eval_dataset": dev,
        "task": ClassificationTask(splits.label_map.names),
    }
