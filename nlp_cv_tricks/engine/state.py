"""The state of a running fit: a data object the loop updates and checkpoints, and that plug-ins (tricks and
callbacks) receive instead of the loop (as ``transformers.TrainerState`` next to ``transformers.Trainer``).

Two kinds of field:

* **Where the run is**, updated by the loop: ``global_step``, ``epoch`` (fractional: epochs done), the last
  evaluation's ``metrics``, ``best_metric`` / ``best_step`` / ``bad_evals`` (model selection and early stopping),
  ``should_stop`` (a plug-in sets it to end the run). :meth:`TrainState.checkpoint_fields` is what a checkpoint
  keeps of them.
* **What the run is**, handed in by the loop that owns it: the recipe and its ``train`` section (``cfg``), the
  prepared model, the accelerator, the optimizer and scheduler, the task, the datasets and their label counts, the
  run directory and its ``history.jsonl`` (``log_history``), the metric that selects the model, every plug-in, and
  the operations a plug-in may ask for (evaluate, record a file it writes into the run directory). The package's
  trainer fills them; a host loop (``nlp_cv_tricks.integrations``) fills what it has.

Nothing here reaches back into the loop: a plug-in sees these fields and nothing else of it, so the loop's
internals can change without breaking a plug-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

__all__ = ["TrainState"]

# the fields of where the run is that a checkpoint keeps (trainer_state.json uses these names)
_CHECKPOINTED = ("global_step", "best_metric", "best_step", "bad_evals")


@dataclass(eq=False)
class TrainState:
    """What plug-ins read of a running fit (see the module docstring)."""

    # ---- what the run is (handed in) ----------------------------------------------------------------
    model: Any = None  # the prepared (possibly DDP-wrapped) model
    accelerator: Any = None
    task: Any = None
    plugins: list = field(default_factory=list)  # every plug-in of the run, in order (tricks, then callbacks)
    optimizer: Any = None
    scheduler: Any = None
    recipe: Any = None
    cfg: Any = None  # the recipe's ``train`` section
    output_dir: Optional[Path] = None
    log_history: Optional[Path] = None  # history.jsonl: one JSON object per logging/evaluation step
    train_dataset: Any = None
    eval_dataset: Any = None
    label_counts: Optional[list[int]] = None  # training examples per class id (None without a ``labels`` column)
    metric_key: str = "eval/accuracy"  # the history key that selects the model
    greater_is_better: bool = True
    # ---- where the run is (updated by the loop) ----------------------------------------------------
    global_step: int = 0
    epoch: float = 0.0
    metrics: dict = field(default_factory=dict)  # the metrics of the last evaluation
    best_metric: Optional[float] = None
    best_step: Optional[int] = None
    bad_evals: int = 0
    should_stop: bool = False
    # ---- what a plug-in may ask the loop for (handed in) -------------------------------------------
    evaluate_fn: Optional[Callable[[Any, str], dict]] = field(default=None, repr=False)
    record_output_fn: Optional[Callable[[str, str], None]] = field(default=None, repr=False)
    checkpoint_dir_fn: Optional[Callable[[], Any]] = field(default=None, repr=False)

    # ---- derived views -----------------------------------------------------------------------------
    @property
    def tricks(self) -> tuple:
        """Every plug-in of the run, in recipe order."""
        return tuple(self.plugins)

    @property
    def checkpoint_dir(self) -> Path:
        """The checkpoint directory of the current step: where a plug-in's ``state_dict`` may write files that
        belong with the checkpoint being saved (``checkpoints/step_N`` of the run; a host loop names its own)."""
        if self.checkpoint_dir_fn is not None:
            return Path(self.checkpoint_dir_fn())
        return Path(self.output_dir or ".") / "checkpoints" / f"step_{self.global_step}"

    def unwrap_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def criterion(self, outputs: Any, batch: dict, step=None) -> torch.Tensor:
        """The run's loss: the ``loss_fn`` of the plug-in that replaces the criterion (at most one does), else the
        task's default loss."""
        for p in self.plugins:
            if getattr(p, "replaces_criterion", False):
                loss = p.loss_fn(self.task.logits_of(outputs), self.task.labels_of(batch), step)
                if loss is not None:
                    return loss
                break
        return self.task.default_loss(outputs, batch)

    # ---- what a plug-in may do ---------------------------------------------------------------------
    def evaluate(self, dataset: Any = None, prefix: str = "eval") -> dict:
        """Evaluate the current model on ``dataset`` (default: the dev set); metric keys are ``prefix/...``."""
        if self.evaluate_fn is None:
            raise RuntimeError("a trick asked for an evaluation, but this loop gave no way to evaluate: pass "
                               "evaluate=fn (fn(dataset, prefix) -> {'<prefix>/<metric>': value}) to the step API")
        return self.evaluate_fn(dataset, prefix)

    def record_output(self, rel: str, kind: str = "tree") -> None:
        """Record ``rel`` (a ``file``, ``tree`` or ``dir`` relative to the run directory) in the run manifest
        before writing it, so ``output.overwrite=true`` removes it later (a no-op in a host's loop)."""
        if self.record_output_fn is not None:
            self.record_output_fn(rel, kind)

    # ---- checkpoints -------------------------------------------------------------------------------
    def checkpoint_fields(self) -> dict:
        """What a checkpoint keeps of where the run is (the keys of ``trainer_state.json``)."""
        return {k: getattr(self, k) for k in _CHECKPOINTED}

    def load_checkpoint_fields(self, saved: dict) -> None:
        """Restore what :meth:`checkpoint_fields` returned (a key a checkpoint lacks keeps its value)."""
        for k in _CHECKPOINTED:
            if k in saved:
                setattr(self, k, saved[k])
