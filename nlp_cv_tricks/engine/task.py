"""A task tells the trainer how to run the model on a batch, what the default loss is, and how to score.

The trainer is task-agnostic; text classification is the built-in task. Other tasks (question answering,
image classification) implement the same small interface.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics.classification import classification_metrics

__all__ = ["Task", "ClassificationTask"]


class Task:
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

    def compute_metrics(self, gathered: list[tuple], trainer) -> dict:
        raise NotImplementedError

    def metric_names(self) -> Optional[set[str]]:
        """The names :meth:`compute_metrics` returns (without the ``eval/`` prefix), so a mistyped
        ``train.metric`` is refused before training; None when they depend on the data (not checked)."""
        return None


class ClassificationTask(Task):
    """Single-label classification: cross-entropy on ``outputs.logits`` against ``batch["labels"]``."""

    def __init__(self, label_names: Optional[list[str]] = None):
        self.label_names = label_names

    def default_loss(self, outputs, batch):
        logits = self.logits_of(outputs)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch["labels"].view(-1))

    def eval_outputs(self, outputs, batch):
        return self.logits_of(outputs).float(), batch["labels"]

    def compute_metrics(self, gathered, trainer=None) -> dict:
        logits = np.concatenate([g[0] for g in gathered])
        labels = np.concatenate([g[1] for g in gathered])
        loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()))
        out = classification_metrics(logits, labels, self.label_names)
        out["loss"] = loss
        return out

    def metric_names(self) -> Optional[set[str]]:
        names = {"accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro", "recall_macro", "auc",
                 "pr_auc", "loss", "n"}
        for label in self.label_names or []:
            names |= {f"{m}/{label}" for m in ("precision", "recall", "f1", "support")}
        return names
