"""What a training run returns (:class:`FitResult`) and the error that stops it when the loss is no longer a
number, and the lines ``train`` prints about the saved model: shared by the trainer and the compiled FastText loop
(light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["FitResult", "NonFiniteLossError", "load_lines", "metric_key", "greater_is_better"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops instead of going on silently."""


@dataclass
class FitResult:
    output_dir: str
    model_dir: Optional[str]
    best_metric: Optional[float]
    best_step: Optional[int]
    global_step: int
    metrics: dict
    train_seconds: float
    stopped_early: bool = False


def load_lines(model_dir, auto_class: str = "AutoModelForSequenceClassification", uses_tokenizer: bool = True,
               eval_data_hint: str = "FILE") -> list[str]:
    """The lines ``train`` prints after the run: how to load the saved model, and the ``eval`` command."""
    lines = ["load it with  : import nlp_cv_tricks; nlp_cv_tricks.register_auto_classes()",
             f"                from transformers import {auto_class}" + (", AutoTokenizer" if uses_tokenizer else ""),
             f"                model = {auto_class}.from_pretrained({model_dir!r})"]
    if uses_tokenizer:
        lines.append(f"                tokenizer = AutoTokenizer.from_pretrained({model_dir!r})")
    lines.append(f"or evaluate   : nlp-cv-tricks eval {model_dir} --data {eval_data_hint}")
    return lines


def metric_key(train_cfg) -> str:
    """The history key of ``train.metric``: a name with ``/`` as it is, else under ``eval/``."""
    m = train_cfg.metric
    return m if "/" in m else f"eval/{m}"


def greater_is_better(train_cfg) -> bool:
    """``train.greater_is_better``, or (unset) True unless the metric is a loss."""
    if train_cfg.greater_is_better is not None:
        return train_cfg.greater_is_better
    return not train_cfg.metric.endswith("loss")
