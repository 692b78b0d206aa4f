"""A task tells the trainer how to run the model on a batch, what the default loss is, and how to score; and,
for a model it saved, how to load it, prepare data for it, evaluate and predict with it, what its model card says
and what the command line prints after training.

The trainer is task-agnostic; text classification is the built-in task. Other tasks (question answering,
image classification, long text) implement the same interface in ``nlp_cv_tricks/tasks/``: the training side
on instances (built from a recipe), the saved-model side as class methods (nothing of the training data is
needed to use a saved model). ``eval``, ``predict``, ``push`` and ``train``'s closing lines reach a task only
through this interface, so a task added through the ``nlp_cv_tricks.tasks`` entry point gets them all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics.classification import classification_metric_names, classification_metrics
from .result import load_lines

__all__ = ["Task", "ClassificationTask", "EvalContext", "InferenceRequest", "CardModel"]


@dataclasses.dataclass(frozen=True)
class EvalContext:
    """What :meth:`Task.compute_metrics` may use of the running fit besides the gathered outputs: the step, and
    where the main process may write this evaluation's files (``None`` on the other processes, or outside a run).
    ``record_output(relative_path, kind)`` lists such a file (``kind``: ``"file"`` or ``"tree"``) in the run
    manifest, so ``output.overwrite`` removes it with the run."""

    step: int = 0
    output_dir: Optional[Path] = None
    record_output: Callable[[str, str], None] = lambda rel, kind: None


@dataclasses.dataclass
class InferenceRequest:
    """What ``eval`` / ``predict`` were asked to do with a saved model: the model (a model directory or a run
    directory, whose ``best/`` is used), the data, where to write, and the data-reading options of the command
    line (``None``: what was saved with the model). A task reads the options that apply to it."""

    model_dir: str
    data: str
    out: Optional[str] = None  # predict: the predictions file (or folder, for a task that writes several)
    batch_size: int = 64
    overwrite: bool = False
    format: Optional[str] = None
    text_column: Optional[str] = None
    text_pair_column: Optional[str] = None
    label_column: Optional[str] = None
    encoding: Optional[str] = None
    metric: Optional[str] = None  # a scoring other than the one the model was trained with (question answering)
    predictions_dir: Optional[str] = None  # eval: also write the predictions here (question answering)


@dataclasses.dataclass
class CardModel:
    """The task's part of a model card: what the model is and how its inputs are prepared (see
    :mod:`nlp_cv_tricks.hub`, which adds the run's data, training and metrics)."""

    library: str  # "transformers" or "timm"
    architecture: str
    own_code: bool  # the package's own architecture, saved with its modeling code (auto_map)
    base_model: Optional[str]  # a Hub id, for the card's base_model metadata
    origin: str  # one sentence: fine-tuned from ... / trained from scratch ...
    from_scratch: bool
    inputs: list = dataclasses.field(default_factory=list)
    vectors: Optional[dict] = None


class Task:
    # ---- what the task is (class attributes; a subclass for a new task sets them) -----------------------------
    name: ClassVar[str] = ""  # the recipe's ``task:`` value
    description: ClassVar[str] = ""  # in words, for the model card: "text classification"
    pipeline_tag: ClassVar[Optional[str]] = None  # the Hub pipeline tag of its models
    modality: ClassVar[str] = "text"  # what one example is: "text" or "image"
    auto_class: ClassVar[str] = "AutoModelForSequenceClassification"  # how transformers loads its models
    uses_tokenizer: ClassVar[bool] = True
    eval_data_hint: ClassVar[str] = "FILE"  # what ``eval --data`` takes, in the hint printed after training

    label_keys: tuple[str, ...] = ("labels",)

    def labels_of(self, batch: dict) -> Optional[torch.Tensor]:
        return batch.get(self.label_keys[0])

    def model_inputs(self, batch: dict) -> dict:
        return {k: v for k, v in batch.items() if k not in self.label_keys}

    def forward(self, model: torch.nn.Module, batch: dict) -> Any:
        """Run the model without labels (the trainer computes the loss, so tricks can replace it)."""
        return model(**self.model_inputs(batch))

    def logits_of(self, outputs: Any) -> torch.Tensor:
        return outputs.logits

    def default_loss(self, outputs: Any, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def eval_outputs(self, outputs: Any, batch: dict) -> tuple:
        """Tensors to gather across processes for metrics (padded consistently per batch)."""
        raise NotImplementedError

    def compute_metrics(self, gathered: list[tuple], context: Optional[EvalContext] = None) -> dict:
        """Metrics of one evaluation from the gathered :meth:`eval_outputs` (numpy arrays, one tuple per batch);
        ``context``: the step and where this evaluation may write files."""
        raise NotImplementedError

    def metric_names(self) -> Optional[set[str]]:
        """The names :meth:`compute_metrics` returns (without the ``eval/`` prefix), so a mistyped
        ``train.metric`` is refused before training; None when they depend on the data (not checked)."""
        return None

    @classmethod
    def training_labels(cls, recipe) -> Optional[tuple[list, list[str]]]:
        """``(label ids, label names)`` of the recipe's training rows, read without building the model; None
        when only the built task knows them."""
        return None

    # ---- a saved model: load, prepare data, evaluate, predict ----------------------------------------------------
    @classmethod
    def recognizes(cls, model_dir: Path) -> bool:
        """True when ``model_dir`` (a resolved model directory) holds a model of this task although no saved
        recipe names the task (a model copied without its ``recipe.yaml``)."""
        return False

    @classmethod
    def load_for_inference(cls, model_dir: str) -> Any:
        """The saved model and what its inputs need (tokenizer, options), ready for :meth:`evaluate` /
        :meth:`predict`."""
        raise NotImplementedError(f"task {cls.name or cls.__name__!r} cannot load a saved model for inference")

    @classmethod
    def preprocess_for_inference(cls, loaded: Any, data: Any, request: InferenceRequest) -> Any:
        """The model inputs for raw ``data``, prepared as in training."""
        raise NotImplementedError(f"task {cls.name or cls.__name__!r} has no inference preprocessing")

    @classmethod
    def evaluate(cls, request: InferenceRequest) -> dict:
        """Metrics of the saved model on the labelled ``request.data`` (what ``eval`` prints)."""
        raise NotImplementedError(f"task {cls.name or cls.__name__!r} cannot evaluate a saved model (eval)")

    @classmethod
    def predict(cls, request: InferenceRequest) -> int:
        """Write the predictions of the saved model for ``request.data`` to ``request.out``; the number written."""
        raise NotImplementedError(f"task {cls.name or cls.__name__!r} cannot predict with a saved model (predict)")

    @classmethod
    def predict_message(cls, request: InferenceRequest, n: int) -> str:
        """What ``predict`` prints when it is done."""
        return f"wrote {n} predictions to {request.out}"

    # ---- the model card and the command line ------------------------------------------------------------------
    @classmethod
    def card_model(cls, config: dict, recipe: dict) -> CardModel:
        """The card's facts about the model saved with ``config`` (its ``config.json``) by a run of ``recipe``
        (its ``recipe.yaml``, as a mapping)."""
        raise NotImplementedError(f"task {cls.name or cls.__name__!r} has no model card")

    @classmethod
    def card_recipe_keeps(cls, section: str, key: str, section_values: dict) -> bool:
        """Whether the card's copy of the recipe shows ``section.key`` (a key that means nothing for the task
        is left out)."""
        return True

    @classmethod
    def card_shows_columns(cls) -> bool:
        """Whether the card lists the data's text and label columns."""
        return False

    @classmethod
    def card_usage(cls, repo_id: str, model: CardModel) -> list[str]:
        """The card's "How to use" lines (markdown) for the model pushed to ``repo_id``."""
        trust = ", trust_remote_code=True" if model.own_code else ""
        auto, tok = cls.auto_class, cls.uses_tokenizer
        lines = ["```python", f"from transformers import {auto}" + (", AutoTokenizer" if tok else ""), "",
                 f'model = {auto}.from_pretrained("{repo_id}"{trust})']
        if tok:
            lines.append(f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{trust})')
        return lines + ["```", ""]

    @classmethod
    def card_limitations(cls, model: CardModel, max_length: Any) -> list[str]:
        """The card's task-specific limitation lines (the ones every card has are added by the card)."""
        return []

    @classmethod
    def cli_summary(cls, model_dir: Any) -> list[str]:
        """The lines ``train`` prints after the run: how to load the saved model, and the ``eval`` command."""
        return load_lines(model_dir, cls.auto_class, cls.uses_tokenizer, cls.eval_data_hint)


class ClassificationTask(Task):
    """Single-label classification: cross-entropy on ``outputs.logits`` against ``batch["labels"]``."""

    def __init__(self, label_names: Optional[list[str]] = None):
        self.label_names = label_names

    def default_loss(self, outputs, batch):
        logits = self.logits_of(outputs)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch["labels"].view(-1))

    def eval_outputs(self, outputs, batch):
        return self.logits_of(outputs).float(), batch["labels"]

    def compute_metrics(self, gathered, context=None) -> dict:
        logits = np.concatenate([g[0] for g in gathered])
        labels = np.concatenate([g[1] for g in gathered])
        loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()))
        out = classification_metrics(logits, labels, self.label_names)
        out["loss"] = loss
        return out

    def metric_names(self) -> Optional[set[str]]:
        return classification_metric_names(self.label_names)
