"""The narrow view of a running fit that plug-ins (tricks and callbacks) receive instead of the Trainer.

What a plug-in may read: the recipe and its ``train`` section, the prepared model and accelerator, the optimizer
and scheduler, the task, the training data and its label counts, the run directory, the step, the last metrics
and the best so far, which metric selects the model, and the other plug-ins. What it may do: evaluate, unwrap the
model, record a file it writes into the run directory, and ask the run to stop (``state.should_stop = True``). Everything else of the Trainer stays private, so
its internals can change without breaking a plug-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["TrainState"]


class TrainState:
    """Read-mostly view of the running fit (see the module docstring)."""

    def __init__(self, trainer: "Trainer"):
        self._trainer = trainer

    # ---- what the run is ---------------------------------------------------------------------------
    @property
    def recipe(self):
        return self._trainer.recipe

    @property
    def cfg(self):
        """The recipe's ``train`` section."""
        return self._trainer.cfg

    @property
    def output_dir(self) -> Path:
        return self._trainer.output_dir

    @property
    def checkpoint_dir(self) -> Path:
        """The checkpoint directory of the current step: where a plug-in's ``state_dict`` may write files that
        belong with the checkpoint being saved (``checkpoints/step_N`` of the run; a host loop names its own)."""
        own = getattr(self._trainer, "checkpoint_dir", None)
        if own is not None:
            return Path(own)
        return Path(self.output_dir) / "checkpoints" / f"step_{self.global_step}"

    @property
    def task(self):
        return self._trainer.task

    @property
    def train_dataset(self):
        return self._trainer.train_dataset

    @property
    def eval_dataset(self):
        return self._trainer.eval_dataset

    @property
    def label_counts(self) -> Optional[list[int]]:
        """Training examples per class id (None when the data has no ``labels`` column)."""
        return self._trainer.label_counts

    @property
    def tricks(self) -> tuple:
        """Every plug-in of the run, in recipe order."""
        return tuple(self._trainer.tricks)

    # ---- what is being trained ---------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        """The prepared (possibly DDP-wrapped) model."""
        return self._trainer.model

    def unwrap_model(self) -> torch.nn.Module:
        return self._trainer.accelerator.unwrap_model(self._trainer.model)

    @property
    def accelerator(self):
        return self._trainer.accelerator

    @property
    def optimizer(self):
        return getattr(self._trainer, "optimizer", None)

    @property
    def scheduler(self):
        return getattr(self._trainer, "scheduler", None)

    # ---- where the run is --------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        return self._trainer.global_step

    @property
    def metrics(self) -> dict:
        """The metrics of the last evaluation."""
        return self._trainer.metrics

    @property
    def best_metric(self) -> Optional[float]:
        return self._trainer.best_metric

    @property
    def best_step(self) -> Optional[int]:
        return self._trainer.best_step

    @property
    def metric_key(self) -> str:
        """The history key that selects the model, e.g. ``eval/accuracy``."""
        return self._trainer._metric_key()

    @property
    def greater_is_better(self) -> bool:
        return self._trainer._greater_is_better()

    # ---- what a plug-in may do ---------------------------------------------------------------------
    def evaluate(self, dataset: Any = None, prefix: str = "eval") -> dict:
        """Evaluate the current model on ``dataset`` (default: the dev set); metric keys are ``prefix/...``."""
        return self._trainer.evaluate(dataset, prefix=prefix)

    @property
    def should_stop(self) -> bool:
        return self._trainer.should_stop

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        self._trainer.should_stop = bool(value)

    def record_output(self, rel: str, kind: str = "tree") -> None:
        """Record ``rel`` (a ``file``, ``tree`` or ``dir`` relative to the run directory) in the run manifest
        before writing it, so ``output.overwrite=true`` removes it later (a no-op in a host's loop)."""
        record = getattr(self._trainer, "record_output", None)
        if record is not None:
            record(rel, kind)

    def criterion(self, outputs: Any, batch: dict, step) -> torch.Tensor:
        """The run's loss (through a trick's ``loss_fn`` when one replaces it)."""
        return self._trainer.criterion(outputs, batch, step)
