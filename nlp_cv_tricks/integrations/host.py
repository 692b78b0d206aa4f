"""What the tricks see of a loop that is not the package's own: the same
:class:`~nlp_cv_tricks.engine.state.TrainState` the package's trainer gives them.

A trick reads the run through ``TrainState`` (the model, the accelerator, the task, the step, the label counts, the
optimizer, ...). :func:`host_state` fills one for a ``transformers.Trainer`` or a user's own loop, which updates it
as it goes, so the same Trick objects run unchanged; :class:`HostTask` runs the user's model the way their loop does
(the model's own loss by default, or their ``compute_loss``); :class:`LoopAccelerator` stands in for
``accelerate.Accelerator`` in a plain PyTorch loop (with or without ``torch.nn.parallel.DistributedDataParallel``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.events import Callback, Trick, check_plugins
from ..engine.state import TrainState
from ..engine.task import Task

__all__ = ["HostTask", "LoopAccelerator", "build_plugins", "check_model", "host_state", "label_counts_from"]


class HostTask(Task):
    """How a host loop runs its model: ``compute_loss(model, batch)`` (returning the loss, or ``(loss,
    outputs)``) when given, else ``model(**batch)`` with the labels in, so the model's own loss is the default
    criterion. A trick that replaces the criterion (focal loss, label smoothing, class weights) gets the logits
    (``outputs.logits``, ``outputs["logits"]``, ``outputs[1]`` after a loss, or a bare tensor) and
    ``batch[label_key]``."""

    def __init__(self, compute_loss: Optional[Callable] = None, label_key: str = "labels"):
        self.compute_loss = compute_loss
        self.label_keys = (label_key,)

    def forward(self, model: torch.nn.Module, batch: dict) -> Any:
        if self.compute_loss is None:
            return model(**batch)
        got = self.compute_loss(model, batch)
        loss, outputs = got if isinstance(got, tuple) and len(got) == 2 else (got, None)
        return _Outputs(loss, outputs)

    def default_loss(self, outputs: Any, batch: dict) -> torch.Tensor:
        if isinstance(outputs, _Outputs):
            return outputs.loss
        loss = outputs.get("loss") if isinstance(outputs, dict) else getattr(outputs, "loss", None)
        if loss is None and isinstance(outputs, (tuple, list)) and len(outputs) > 1 and outputs[0].dim() == 0:
            loss = outputs[0]
        if loss is not None:
            return loss
        labels = self.labels_of(batch)
        if labels is None:
            raise ValueError(f"the model returned no loss and the batch has no {self.label_keys[0]!r}: pass "
                             "compute_loss=, or put the labels in the batch")
        logits = self.logits_of(outputs)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1))

    def logits_of(self, outputs: Any) -> torch.Tensor:
        if isinstance(outputs, _Outputs):
            outputs = outputs.outputs
        if torch.is_tensor(outputs):
            return outputs
        logits = outputs.get("logits") if isinstance(outputs, dict) else getattr(outputs, "logits", None)
        if logits is None and isinstance(outputs, (tuple, list)) and outputs:
            logits = outputs[1] if len(outputs) > 1 and outputs[0].dim() == 0 else outputs[0]
        if logits is None:
            raise ValueError(f"no logits in the model outputs ({type(outputs).__name__}): a trick that replaces "
                             "the criterion or compares two forwards needs them (return them from compute_loss "
                             "as (loss, outputs) with outputs.logits)")
        return logits


class _Outputs(dict):
    """The loss and outputs a user's ``compute_loss`` returned, readable where model outputs are expected."""

    def __init__(self, loss: torch.Tensor, outputs: Any):
        super().__init__()
        self.loss, self.outputs = loss, outputs
        self["loss"] = loss
        if outputs is not None:
            try:
                self["logits"] = HostTask.logits_of(HostTask(), outputs)
            except ValueError:
                pass

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class LoopAccelerator:
    """The part of ``accelerate.Accelerator`` the tricks use, for a plain PyTorch loop: ``backward``,
    ``unwrap_model``, ``no_sync`` and ``reduce`` over ``torch.distributed`` when the model is wrapped in
    ``DistributedDataParallel``. ``sync_gradients`` is set by the step API for each micro-batch."""

    scaler = None
    mixed_precision = "no"

    def __init__(self, model: torch.nn.Module):
        self._model = model
        self.sync_gradients = True

    @property
    def num_processes(self) -> int:
        dist = torch.distributed
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def is_main_process(self) -> bool:
        dist = torch.distributed
        return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0

    @property
    def device(self) -> torch.device:
        p = next(self._model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def unwrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return getattr(model, "module", model) if isinstance(
            model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)) else model

    def no_sync(self, model: torch.nn.Module):
        return model.no_sync() if hasattr(model, "no_sync") else contextlib.nullcontext()

    def reduce(self, tensor: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.num_processes == 1:
            return tensor
        out = tensor.clone()
        torch.distributed.all_reduce(out)
        return out / self.num_processes if reduction == "mean" else out


def label_counts_from(dataset: Any, label_key: str = "labels") -> Optional[list[int]]:
    """Examples per class id in a dataset with a ``labels`` (or ``label``) column; None when it has none."""
    cols = getattr(dataset, "column_names", None) or []
    for key in (label_key, "labels", "label"):
        if key in cols:
            labels = np.asarray(dataset[key][:])
            if labels.ndim == 1 and labels.size and np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0:
                return np.bincount(labels).tolist()
    return None


def build_plugins(tricks: Iterable[Any] | Any = (), callbacks: Iterable[Any] = (), where: str = "tricks") -> list:
    """Tricks and callbacks from recipe names, recipe-style dicts (``{"fgm": {"epsilon": 0.5}}``) or instances,
    checked as a recipe's are (a name appears once; one trick at most replaces the loss)."""
    from ..callbacks.registry import build_callbacks
    from ..runner import build_tricks  # names become objects in one place (observers under tricks: still run)

    if isinstance(tricks, (str, dict, Trick, Callback)):
        tricks = [tricks]
    plugins = check_plugins(build_tricks(tricks, where) + build_callbacks(callbacks), where)
    for p in plugins:
        if isinstance(p, Trick) and getattr(p, "use_for_eval", False):
            raise ValueError(f"{where}: {p.name} with use_for_eval=true cannot run in this loop: the loop saves and "
                             "selects checkpoints itself, and would save the averaged weights in place of the "
                             f"trained ones; use {p.name} with use_for_eval=false (its metrics are added as eval_ema)")
    return plugins


def check_model(plugins: list, model: torch.nn.Module) -> None:
    """Refuse, before any step, an embedding-space trick on a model whose embedding module cannot be found."""
    from ..tricks.adversarial import _EmbeddingAdversarial, input_embeddings

    bare = getattr(model, "module", model)
    for p in plugins:
        if isinstance(p, _EmbeddingAdversarial):
            try:
                input_embeddings(bare, p.module)
            except ValueError as e:
                raise ValueError(f"trick {p.name!r}: {e}") from None


def host_state(model: torch.nn.Module, plugins: list, accelerator: Any, task: Task, optimizer: Any = None,
               scheduler: Any = None, output_dir: Optional[str] = None, train_dataset: Any = None,
               eval_dataset: Any = None, label_counts: Optional[list[int]] = None,
               evaluate: Optional[Callable[[Any, str], dict]] = None, metric: str = "eval/accuracy",
               greater_is_better: bool = True, checkpoint_dir: Optional[Callable[[], Path]] = None) -> TrainState:
    """The :class:`TrainState` of a host loop: what it has of a run (the host updates ``global_step``,
    ``metrics``, ``model``, ... as it goes, and reads ``should_stop``)."""
    return TrainState(
        model=model, accelerator=accelerator, task=task, plugins=plugins, optimizer=optimizer, scheduler=scheduler,
        cfg=SimpleNamespace(save_steps=0, gradient_accumulation_steps=1),
        output_dir=Path(output_dir) if output_dir is not None else Path("."),
        train_dataset=train_dataset, eval_dataset=eval_dataset,
        label_counts=label_counts if label_counts is not None else label_counts_from(train_dataset),
        metric_key=metric, greater_is_better=greater_is_better, evaluate_fn=evaluate, checkpoint_dir_fn=checkpoint_dir)
