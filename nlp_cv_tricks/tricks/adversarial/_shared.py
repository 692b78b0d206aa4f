"""What every adversarial trick shares: option checks, the gradient of a perturbation only (the intermediate
passes of PGD and FreeLB-style loops), folding captured gradients, the all-reduce of a step without a pass, and
the name of the logged adversarial loss."""

from __future__ import annotations

import math
from typing import Optional

import torch

from ...engine.events import Trick

__all__ = ["sync_skipped_step", "HookedAttack"]


def _finite(t: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(t.float(), nan=0.0, posinf=0.0, neginf=0.0)


def _fold(grads: list, shape: torch.Size) -> Optional[torch.Tensor]:
    """Sum the captured gradients into ``shape``: several forwards of the same batch (R-Drop) add up, and a
    forward on a batch repeated m times (R-Drop with ``concat``) folds back onto ``shape``."""
    total = None
    for g in grads:
        if g is None:
            continue
        if g.shape != shape:
            if g.dim() == len(shape) and g.shape[1:] == shape[1:] and shape[0] and g.shape[0] % shape[0] == 0:
                g = g.reshape(g.shape[0] // shape[0], *shape).sum(0)
            else:
                raise RuntimeError(
                    f"the clean pass produced an embedding gradient of shape {tuple(g.shape)} but the adversarial "
                    f"pass embeds shape {tuple(shape)}; the model embeds inputs of different shapes in one forward")
        total = g.float() if total is None else total + g.float()
    return total


def _positive(name: str, value, allow_zero: bool = False) -> float:
    v = float(value)
    if v < 0 or (v == 0 and not allow_zero) or not math.isfinite(v):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return v


def _grad_of(step, loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradient of ``loss`` w.r.t. ``inputs`` only (no parameter gradient is touched), fp16-scaled like the
    clean backward so that small gradients do not underflow (directions are normalised afterwards)."""
    scaler = getattr(step.accelerator, "scaler", None)
    if scaler is not None:
        loss = scaler.scale(loss)
    try:
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    except RuntimeError as e:  # reentrant activation checkpointing refuses autograd.grad
        if "checkpoint" in str(e).lower():
            raise RuntimeError("multi-step adversarial training needs non-reentrant gradient checkpointing: "
                               "gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': "
                               "False})") from e
        raise
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


def _perturbation_grad(step, delta) -> torch.Tensor:
    """One intermediate pass of a multi-step attack (PGD on embeddings or pixels): the gradient of the loss
    w.r.t. the perturbation only, inside the step's accumulation block without synchronisation. ``delta``: the
    perturbation, or a function that returns it after the forward (when the forward creates it)."""
    with step.extra_pass(last=False):
        loss, _ = step.compute_loss()
        (g,) = _grad_of(step, loss, [delta() if callable(delta) else delta])
    return g


def sync_skipped_step(step) -> None:
    """A trick with ``extra_backward`` that makes no pass in this step (before its ``start_step``): the trainer
    ran the clean backward without DDP synchronisation expecting a later synchronised pass, so all-reduce the
    gradients here (mean over processes; a no-op in one process, idempotent if another trick syncs too)."""
    if not (step.deferred_sync and step.sync_gradients
            and step.accelerator.num_processes > 1):
        return
    for p in step.model.parameters():
        if p.grad is not None:
            p.grad.copy_(step.accelerator.reduce(p.grad, "mean"))


def _adv_key(step, trick) -> str:
    """``adv_loss``, or ``adv_loss/<trick>`` when several adversarial tricks run together (each keeps its own)."""
    tricks = getattr(step.state, "tricks", None) or []
    n = sum(1 for t in tricks if getattr(t, "adversarial", False))
    return "adv_loss" if n <= 1 else f"adv_loss/{trick.name}"


class HookedAttack(Trick):
    """The life of an attack's capture hook, shared by the embedding and pixel attacks: a subclass sets
    ``self._hook`` in ``on_step_start``; after the clean backward :meth:`_attack` runs on it (a step without a hook
    still joins the other processes' extra passes), and the hook is removed after every attack and at the end."""

    extra_backward = True
    adversarial = True  # logs its own adv_loss/<name> when several adversarial tricks run together
    _hook = None

    def _remove(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def after_backward(self, step) -> None:
        if self._hook is None:
            sync_skipped_step(step)
            return
        try:
            self._attack(step, self._hook)
        finally:
            self._remove()

    def on_fit_end(self, trainer) -> None:
        self._remove()

    def _attack(self, step, hook) -> None:
        raise NotImplementedError
