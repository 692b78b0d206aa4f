"""Evaluate or label data files with a saved model directory (``best/`` of a run, or any ``save_pretrained``
model of a task). The directory says which task the model belongs to
(:func:`nlp_cv_tricks.tasks.task_type_of_model_dir`); the task loads it, prepares the data as in training, and
scores it or writes the predictions (:class:`nlp_cv_tricks.engine.task.Task`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .config import DataConfig
from .engine.task import InferenceRequest
from .tasks import task_type, task_type_of_model_dir
from .tasks.text_classification import (TextClassificationTask, classification_logits, load_model_dir,
                                        model_label_map)
from .utils.model_dir import resolve_model_dir

if TYPE_CHECKING:
    from .tasks.long_text import LongTextOptions

__all__ = ["InferenceRequest", "evaluate", "predict", "task_of", "load_model_dir", "predict_logits", "evaluate_file",
           "predict_file", "evaluate_image_file", "predict_image_file", "model_label_map", "resolve_model_dir"]


def task_of(model_dir: str, task=None):
    """The Task class that handles ``model_dir``: ``task`` (a Task class, or a task name) when given, else the
    one the directory says."""
    if task is None:
        return task_type_of_model_dir(model_dir)
    return task_type(task) if isinstance(task, str) else task


def evaluate(request: InferenceRequest, task=None) -> dict:
    """Metrics of the saved model ``request.model_dir`` on ``request.data`` (``eval``)."""
    return task_of(request.model_dir, task).evaluate(request)


def predict(request: InferenceRequest, task=None) -> tuple[int, str]:
    """Write the predictions of the saved model for ``request.data`` to ``request.out`` (``predict``):
    ``(number written, the line to print)``."""
    cls = task_of(request.model_dir, task)
    n = cls.predict(request)
    return n, cls.predict_message(request, n)


# ---------------------------------------------------------------------------------------------------------------
# the functions of earlier releases, kept: text (and long-text) classifiers, image classifiers
# ---------------------------------------------------------------------------------------------------------------
def _text_task(model_dir: str):
    cls = task_type_of_model_dir(model_dir)
    return cls if issubclass(cls, TextClassificationTask) else TextClassificationTask


def saved_long_options(path: str) -> Optional["LongTextOptions"]:
    """The long-text options a model was trained with, from the recipe saved next to it; ``None`` for models of
    other tasks."""
    from .tasks.long_text import LongTextTask
    from .tasks.text_classification import saved_recipe

    raw = saved_recipe(resolve_model_dir(path))
    if raw.get("task") != LongTextTask.name:
        return None
    return LongTextTask.saved_options(raw, str(path))


def predict_logits(model, tokenizer, ds, data_cfg: DataConfig, batch_size: int = 64,
                   long_opts: Optional["LongTextOptions"] = None):
    """Logits (and labels if present) for a raw dataset; ``long_opts``: prepare the inputs as the long-text
    task did in training."""
    if long_opts is None:
        from .tasks.text_classification import SavedTextModel

        loaded = SavedTextModel(model, tokenizer, data_cfg, {}, None)
        tok, collate = TextClassificationTask.preprocess_for_inference(loaded, ds, None, data_cfg)
    else:
        from .tasks.long_text import prepare_long_inputs

        tok, collate = prepare_long_inputs(model, tokenizer, ds, data_cfg, long_opts)
    return classification_logits(model, tok, collate, batch_size)


def evaluate_file(model_dir: str, data: str, fmt: Optional[str] = None, text_column: Optional[str] = None,
                  text_pair_column: Optional[str] = None, label_column: Optional[str] = None,
                  batch_size: int = 64, encoding: Optional[str] = None) -> dict:
    """Metrics of a saved text classifier on a labelled file."""
    return _text_task(model_dir).evaluate(InferenceRequest(
        model_dir, data, batch_size=batch_size, format=fmt, text_column=text_column,
        text_pair_column=text_pair_column, label_column=label_column, encoding=encoding))


def predict_file(model_dir: str, data: str, out: str, fmt: Optional[str] = None, text_column: Optional[str] = None,
                 text_pair_column: Optional[str] = None, batch_size: int = 64, overwrite: bool = False,
                 encoding: Optional[str] = None) -> int:
    """One prediction per input row of a text file (JSONL, or CSV when ``out`` ends in .csv)."""
    return _text_task(model_dir).predict(InferenceRequest(
        model_dir, data, out=out, batch_size=batch_size, overwrite=overwrite, format=fmt, text_column=text_column,
        text_pair_column=text_pair_column, encoding=encoding))


def evaluate_image_file(model_dir: str, data: str, batch_size: int = 64) -> dict:
    """Metrics of a saved image classifier on labelled images."""
    from .tasks.image_classification import ImageClassificationTask

    return ImageClassificationTask.evaluate(InferenceRequest(model_dir, data, batch_size=batch_size))


def predict_image_file(model_dir: str, data: str, out: str, batch_size: int = 64, overwrite: bool = False) -> int:
    """One prediction per image (JSONL, or CSV when ``out`` ends in .csv)."""
    from .tasks.image_classification import ImageClassificationTask

    return ImageClassificationTask.predict(InferenceRequest(model_dir, data, out=out, batch_size=batch_size,
                                                            overwrite=overwrite))
