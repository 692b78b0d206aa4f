"""What a plug-in sees of one micro-batch: a trick the model, the batch and the operations it may perform
(:class:`StepContext`); an observer the micro-batch once its passes ran (:class:`MicroBatch`, read only). The
passes themselves: :func:`nlp_cv_tricks.engine.passes.run_passes`."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Optional

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .state import TrainState

__all__ = ["MicroBatch", "StepContext"]


class StepContext:
    """One micro-batch inside an ``accelerator.accumulate`` block.

    Attributes:
        state: the run as plug-ins see it (:class:`~nlp_cv_tricks.engine.state.TrainState`).
        model: the prepared (possibly DDP-wrapped) model; ``unwrapped_model`` is the bare module.
        batch: the micro-batch (a dict of tensors, labels included).
        global_step: optimizer steps completed before this one.
        sync_gradients: True on the last micro-batch of an accumulation block (gradients get all-reduced and
            the optimizer steps).
        loss / outputs: set by the trainer after the clean forward.
    """

    def __init__(self, state: "TrainState", batch: dict, global_step: int, sync_gradients: bool):
        self.state = state
        self.accelerator = state.accelerator
        self.model = state.model
        self.batch = batch
        self.global_step = global_step
        self.sync_gradients = sync_gradients
        self.loss: Optional[torch.Tensor] = None
        self.outputs: Any = None
        self.logs: dict[str, float] = {}
        # True when a trick makes extra backward passes: the trainer runs the clean backward without DDP
        # synchronisation and the last extra pass (``extra_pass(last=True)``) all-reduces. A trick that makes no
        # pass in a step where this is set must all-reduce itself (``tricks.adversarial.sync_skipped_step``).
        self.deferred_sync = False
        # what every backward of this micro-batch is multiplied by before ``accelerator.backward`` (which divides
        # by the accumulation steps it knows of): 1 in the package's trainer; a host loop that normalises the
        # loss itself (transformers.Trainer's ``num_items_in_batch``) sets it
        self.loss_scale: float = 1.0

    # ---- model access ----------------------------------------------------------------------------
    @property
    def unwrapped_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @property
    def labels(self) -> Optional[torch.Tensor]:
        return self.state.task.labels_of(self.batch)

    def forward(self, batch: Optional[dict] = None) -> Any:
        """Run the model on ``batch`` (default: this micro-batch) without computing the loss inside the model."""
        return self.state.task.forward(self.model, self.batch if batch is None else batch)

    def criterion(self, outputs: Any, batch: Optional[dict] = None) -> torch.Tensor:
        """The loss of ``outputs`` against the labels of ``batch``, through any trick's ``loss_fn``."""
        return self.state.criterion(outputs, self.batch if batch is None else batch, self)

    def compute_loss(self, batch: Optional[dict] = None) -> tuple[torch.Tensor, Any]:
        """Plain forward + criterion (no ``forward_loss`` wrappers): what adversarial passes use."""
        outputs = self.forward(batch)
        return self.criterion(outputs, batch), outputs

    # ---- backward --------------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor) -> None:
        """Backward of a pass (the clean one and every extra one), scaled for gradient accumulation and fp16
        alike."""
        self.accelerator.backward(loss * self.loss_scale if self.loss_scale != 1.0 else loss)

    def sync_pass(self):
        """Context for the *last* extra forward/backward of a step: gradients are all-reduced there (DDP).

        Outside it, when the trainer has deferred synchronisation, extra passes accumulate locally."""
        return contextlib.nullcontext()

    def no_sync(self):
        """Context for a pass whose gradients must stay local (used by the trainer for the clean pass when a
        trick makes further backward passes)."""
        if self.deferred_sync and self.sync_gradients and self.accelerator.num_processes > 1:
            return self.accelerator.no_sync(self.model)
        return contextlib.nullcontext()

    def extra_pass(self, last: bool):
        """``with step.extra_pass(last=i == k - 1):`` around each extra forward+backward of a trick."""
        return self.sync_pass() if last else self.no_sync()

    # ---- logging ---------------------------------------------------------------------------------
    def log(self, name: str, value: float | torch.Tensor) -> None:
        """Record a scalar; the trainer averages it over the logging interval as ``train/<name>``."""
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean().item()
        self.logs[name] = float(value)


class MicroBatch:
    """A micro-batch once its passes ran (forward, loss, backward and every trick's extra passes), as observers
    see it in ``on_micro_batch``: read only, nothing here is to be changed or backpropagated.

    Attributes:
        batch: the micro-batch the clean forward got (after a trick's change of it, e.g. mixup's mixed inputs).
        loss: the clean loss, detached.
        outputs: the clean forward's model outputs (the first forward of the micro-batch: not R-Drop's second nor
            an adversarial pass).
        global_step: optimizer steps completed before this one.
        sync_gradients: True on the last micro-batch of an accumulation block.
    """

    __slots__ = ("batch", "loss", "outputs", "global_step", "sync_gradients", "_task")

    def __init__(self, step: StepContext):
        self.batch, self.outputs = step.batch, step.outputs
        self.loss = step.loss.detach()
        self.global_step, self.sync_gradients = step.global_step, step.sync_gradients
        self._task = step.state.task

    @property
    def logits(self) -> torch.Tensor:
        """The clean forward's logits (through the run's task), detached."""
        return self._task.logits_of(self.outputs).detach()

    @property
    def labels(self) -> Optional[torch.Tensor]:
        """The labels of the micro-batch (through the run's task)."""
        return self._task.labels_of(self.batch)
