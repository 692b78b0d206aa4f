"""Adversarial weight perturbation (AWP): the selected weights move along this micro-batch's gradient, one more
pass adds the gradient there, and the weights are restored exactly."""

from __future__ import annotations

import re
from typing import Optional

import torch

from ...engine.events import Trick
from ._shared import _adv_key, _grad_of, _positive, sync_skipped_step

__all__ = ["awp_perturbation", "AWP"]


def awp_perturbation(weight: torch.Tensor, grad: torch.Tensor, adv_lr: float) -> torch.Tensor:
    """AWP step for one weight tensor (Wu et al. 2020, as in the widely used Kaggle implementation):
    ``adv_lr * g / ||g|| * ||w||`` — a step relative to the weight's own size. Zero for a zero or non-finite
    gradient."""
    g = grad.float()
    if not torch.isfinite(g).all():
        return torch.zeros_like(weight, dtype=torch.float32)
    gn = g.norm()
    if gn == 0:
        return torch.zeros_like(g)
    return float(adv_lr) * g / (gn + 1e-6) * (weight.detach().float().norm() + 1e-6)


class AWP(Trick):
    """Adversarial Weight Perturbation.

    Source: Wu, Xia & Wang, "Adversarial Weight Perturbation Helps Robust Generalization", NeurIPS 2020; the
    form used here is the one popular in Kaggle NLP competitions: every selected weight ``w`` moves by
    ``adv_lr * g / ||g|| * ||w||`` and is clipped to ``[w - adv_eps*|w|, w + adv_eps*|w|]``; one more
    forward/backward on the perturbed weights adds its gradient; the weights are then restored exactly from a
    copy (in a ``finally``). ``g`` is this micro-batch's gradient only: under gradient accumulation the
    gradient already accumulated from earlier micro-batches is subtracted (kept in a copy at step start).

    Unlike FGM/PGD, AWP has to edit the weights themselves, so it does not work with FSDP/ZeRO-3 sharded
    parameters. Like every public implementation it perturbs per micro-batch, so with accumulation it equals
    the unaccumulated run only when the micro-batches give the same gradient direction.

    Expected effect: regularises towards flat minima; helped in Kaggle NLP (e.g. Feedback Prize) after the
    first epoch (``start_step``). Cost: 1 extra forward/backward per step (``steps`` extra passes in general),
    plus a copy of the perturbed weights.

    Recipe key ``awp``: ``adv_lr`` (1.0), ``adv_eps`` (0.01), ``params`` (regex on parameter names, default
    ``weight``), ``exclude`` (regex, default ``embeddings|LayerNorm|norm``), ``steps`` (1), ``adv_weight``
    (1.0), ``start_step`` (0).
    """

    name = "awp"

    extra_backward = True
    adversarial = True  # logs its own adv_loss/<name> when several adversarial tricks run together

    def __init__(self, adv_lr: float = 1.0, adv_eps: float = 0.01, params: str = "weight",
                 exclude: Optional[str] = r"embeddings|LayerNorm|norm", steps: int = 1, adv_weight: float = 1.0,
                 start_step: int = 0):
        self.adv_lr = _positive("awp.adv_lr", adv_lr, allow_zero=True)
        self.adv_eps = _positive("awp.adv_eps", adv_eps, allow_zero=True)
        try:
            self._params_re = re.compile(params)
            self._exclude_re = re.compile(exclude) if exclude else None
        except re.error as e:
            raise ValueError(f"awp.params/exclude must be regular expressions: {e}") from e
        self.params, self.exclude = params, exclude
        if int(steps) < 1:
            raise ValueError(f"awp.steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.adv_weight = _positive("awp.adv_weight", adv_weight, allow_zero=True)
        self.start_step = int(start_step)
        self._prev: dict[str, torch.Tensor] = {}
        self._active = False

    def targets(self, model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
        """The parameters AWP perturbs: trainable, matching ``params``, not matching ``exclude``."""
        out = []
        for name, p in model.named_parameters():
            if not p.requires_grad or not self._params_re.search(name):
                continue
            if self._exclude_re is not None and self._exclude_re.search(name):
                continue
            out.append((name, p))
        if not out:
            raise ValueError(f"awp: no trainable parameter matches params={self.params!r} "
                             f"(exclude={self.exclude!r}) in {type(model).__name__}")
        return out

    def on_step_start(self, step) -> None:
        self._prev = {}
        self._active = step.global_step >= self.start_step
        if not self._active:
            return
        for name, p in self.targets(step.unwrapped_model):
            if p.grad is not None:  # gradient accumulated from earlier micro-batches of this block
                self._prev[name] = p.grad.detach().clone()

    def _micro_grad(self, name: str, p: torch.nn.Parameter) -> torch.Tensor:
        if p.grad is None:
            return torch.zeros_like(p, dtype=torch.float32)
        g = p.grad.detach().float()
        prev = self._prev.get(name)
        return g - prev.float() if prev is not None else g

    def after_backward(self, step) -> None:
        if not self._active:
            sync_skipped_step(step)
            return
        targets = self.targets(step.unwrapped_model)
        backup = {n: p.detach().clone() for n, p in targets}
        bound = {n: self.adv_eps * w.abs() for n, w in backup.items()}
        grads = {n: self._micro_grad(n, p) for n, p in targets}
        self._prev = {}
        try:
            for k in range(self.steps):
                with torch.no_grad():
                    for n, p in targets:
                        p.add_(awp_perturbation(p, grads[n], self.adv_lr).to(p.dtype))
                        p.copy_(torch.maximum(torch.minimum(p, backup[n] + bound[n]), backup[n] - bound[n]))
                last = k == self.steps - 1
                with step.extra_pass(last=last):
                    loss, _ = step.compute_loss()
                    if last:
                        step.backward(loss * self.adv_weight)
                    else:
                        gs = _grad_of(step, loss, [p for _, p in targets])
                        grads = {n: g.float() for (n, _), g in zip(targets, gs)}
            step.log(_adv_key(step, self), loss.detach())
        finally:
            with torch.no_grad():
                for n, p in targets:
                    p.copy_(backup[n])
