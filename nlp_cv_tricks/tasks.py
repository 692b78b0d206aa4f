"""Task builders: from a recipe to the model, tokenizer, datasets and task object the trainer needs.

Each task name (``recipe.task``) maps to a builder ``(recipe, accelerator) -> dict`` whose keys are
:class:`~nlp_cv_tricks.engine.trainer.Trainer` constructor arguments. Other modules register their tasks with
:func:`register_task`.
"""

from __future__ import annotations

from typing import Callable

from .config import Recipe, register_task_name

_BUILDERS: dict[str, Callable] = {}


def register_task(name: str, builder: Callable) -> None:
    _BUILDERS[name] = builder
    register_task_name(name)


def build_task_components(recipe: Recipe, accelerator) -> dict:
    """The task's components, built from a copy of ``recipe`` whose relative data paths are resolved against
    the data root (:mod:`nlp_cv_tricks.data.root`); a missing dataset fails here, before anything is read."""
    from .data.root import resolve_data_paths

    if recipe.task not in _BUILDERS:
        raise ValueError(f"task {recipe.task!r} has no builder (known: {sorted(_BUILDERS)})")
    return _BUILDERS[recipe.task](resolve_data_paths(recipe), accelerator)


def _text_classification(recipe: Recipe, accelerator) -> dict:
    from .data.text import load_text_classification, tokenize_dataset
    from .engine.task import ClassificationTask
    from .models.factory import build_classifier, check_model_name

    check_model_name(recipe.model.name)  # a mistyped built-in name fails before the data is read
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


register_task("text-classification", _text_classification)


def _image_classification(recipe: Recipe, accelerator) -> dict:
    # imported on use: timm is slow to import; importing it also registers the "mixup" and "ema" tricks
    from .utils.optional import require

    require("timm", purpose="task: image-classification")
    from .vision_task import build_image_classification

    return build_image_classification(recipe, accelerator)


register_task("image-classification", _image_classification)
