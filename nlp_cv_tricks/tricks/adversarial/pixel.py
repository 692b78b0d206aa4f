"""Adversarial training on the image input: FGSM and L-infinity PGD, through a forward pre-hook on the model
that swaps in a gradient-tracking (capture) or perturbed (attack) copy of the pixels."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ._shared import HookedAttack, _adv_key, _finite, _fold, _perturbation_grad, _positive

__all__ = ["fgsm_perturbation", "project_linf", "PixelFGSM", "PixelPGD"]


def fgsm_perturbation(grad: torch.Tensor, epsilon: float) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): ``epsilon * sign(grad)`` (L-infinity), zero where the gradient is not
    finite."""
    return float(epsilon) * torch.sign(_finite(grad))


def project_linf(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Clamp every coordinate of ``delta`` into ``[-epsilon, epsilon]``."""
    return delta.clamp(-float(epsilon), float(epsilon))


class _PixelHook:
    """Forward pre-hook on the whole model that finds the image tensor (keyword ``key`` or first positional
    argument) and either makes it a gradient-tracking leaf (capture) or adds ``delta`` to it (perturb)."""

    def __init__(self, model: torch.nn.Module, key: str, clamp: Optional[Sequence[float]]):
        self.key, self.clamp = key, clamp
        self.inputs: list[torch.Tensor] = []
        self.delta: Optional[torch.Tensor] = None
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _swap(self, x: torch.Tensor) -> torch.Tensor:
        if self.delta is None:
            if not torch.is_grad_enabled():
                return x
            leaf = x.detach().requires_grad_(True)
            self.inputs.append(leaf)
            return leaf
        if self.delta.shape != x.shape:
            raise RuntimeError(f"pixel adversarial: input shape changed from {tuple(self.delta.shape)} to "
                               f"{tuple(x.shape)} between passes")
        adv = x.detach() + self.delta.to(x.dtype)
        if self.clamp is not None:
            adv = adv.clamp(float(self.clamp[0]), float(self.clamp[1]))
        return adv

    def _hook(self, module, args, kwargs):
        if self.key in kwargs and torch.is_tensor(kwargs[self.key]):
            kwargs = dict(kwargs)
            kwargs[self.key] = self._swap(kwargs[self.key])
            return args, kwargs
        if args and torch.is_tensor(args[0]) and args[0].is_floating_point():
            return (self._swap(args[0]),) + tuple(args[1:]), kwargs
        raise ValueError(f"pixel adversarial: the model was called without a float tensor {self.key!r} (keyword) "
                         "or a float tensor as first argument")

    def clean_grad(self, shape) -> torch.Tensor:
        grads = [x.grad for x in self.inputs if x.grad is not None]
        total = _fold(grads, shape) if grads else None
        return torch.zeros(shape) if total is None else total

    def remove(self):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.inputs, self.delta = [], None


class _PixelAdversarial(HookedAttack):

    def __init__(self, epsilon: float, key: str, clamp, adv_weight: float, start_step: int):
        self.epsilon = _positive(f"{self.name}.epsilon", epsilon)
        self.key = key
        if clamp is not None and (len(clamp) != 2 or float(clamp[0]) >= float(clamp[1])):
            raise ValueError(f"{self.name}.clamp must be [min, max] with min < max, got {clamp!r}")
        self.clamp = None if clamp is None else [float(clamp[0]), float(clamp[1])]
        self.adv_weight = _positive(f"{self.name}.adv_weight", adv_weight, allow_zero=True)
        self.start_step = int(start_step)
        self._hook: Optional[_PixelHook] = None

    def on_step_start(self, step):
        self._remove()
        if step.global_step >= self.start_step:
            self._hook = _PixelHook(step.unwrapped_model, self.key, self.clamp)

    def _shape(self, step) -> torch.Size:
        x = step.batch.get(self.key) if isinstance(step.batch, dict) else None
        if not torch.is_tensor(x):
            raise ValueError(f"{self.name}: the batch has no tensor {self.key!r} (keys: "
                             f"{sorted(step.batch) if isinstance(step.batch, dict) else type(step.batch).__name__})")
        return x.shape

    def _final_pass(self, step):
        with step.extra_pass(last=True):
            loss, _ = step.compute_loss()
            step.backward(loss * self.adv_weight)
        step.log(_adv_key(step, self), loss.detach())


class PixelFGSM(_PixelAdversarial):
    """FGSM adversarial training on the image input.

    Source: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015. After
    the clean backward, ``x_adv = clamp(x + epsilon * sign(grad_x))`` and a second forward/backward adds the
    gradient of ``adv_weight * loss(x_adv)`` (the paper's objective with weight 0.5/0.5 is ``adv_weight=1`` and
    half the learning rate).

    Expected effect: robustness to small input noise; on clean accuracy, usually neutral to slightly negative.
    Cost: one extra forward/backward (2x step time).

    Recipe key ``pixel_fgsm``: ``epsilon`` (in units of the model input, i.e. after normalisation; default
    0.03), ``key`` (``pixel_values``), ``clamp`` ([min, max] of valid inputs or null), ``adv_weight``,
    ``start_step``.
    """

    name = "pixel_fgsm"

    def __init__(self, epsilon: float = 0.03, key: str = "pixel_values", clamp: Optional[list] = None,
                 adv_weight: float = 1.0, start_step: int = 0):
        super().__init__(epsilon, key, clamp, adv_weight, start_step)

    def _attack(self, step, hook):
        shape = self._shape(step)
        hook.delta = fgsm_perturbation(hook.clean_grad(shape), self.epsilon)
        self._final_pass(step)


class PixelPGD(_PixelAdversarial):
    """L-infinity PGD adversarial training on the image input.

    Source: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    ``delta`` starts at a uniform random point of the epsilon-box (``random_start``) and takes one signed step
    along the clean gradient, then K-1 more signed steps of size ``alpha`` (gradient of the perturbation only),
    each clipped to ``[-epsilon, epsilon]``; the last pass adds the gradient of ``adv_weight * loss(x + delta)``.

    Expected effect: the standard robust-training baseline; lowers clean accuracy a little on small data.
    Cost: K extra forward/backward passes ((K+1)x step time).

    Recipe key ``pixel_pgd``: ``epsilon`` (0.03), ``alpha`` (0.01), ``steps`` (3), ``random_start`` (true),
    ``key``, ``clamp``, ``adv_weight``, ``start_step``.
    """

    name = "pixel_pgd"

    def __init__(self, epsilon: float = 0.03, alpha: float = 0.01, steps: int = 3, random_start: bool = True,
                 key: str = "pixel_values", clamp: Optional[list] = None, adv_weight: float = 1.0,
                 start_step: int = 0):
        super().__init__(epsilon, key, clamp, adv_weight, start_step)
        self.alpha = _positive("pixel_pgd.alpha", alpha)
        if int(steps) < 1:
            raise ValueError(f"pixel_pgd.steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.random_start = bool(random_start)

    def _attack(self, step, hook):
        shape = self._shape(step)
        g = hook.clean_grad(shape)
        start = (torch.rand(shape, device=g.device) * 2 - 1) * self.epsilon if self.random_start \
            else torch.zeros(shape, device=g.device)
        delta = project_linf(start + fgsm_perturbation(g, self.alpha), self.epsilon)
        for _ in range(self.steps - 1):
            leaf = delta.detach().requires_grad_(True)
            hook.delta = leaf
            g = _perturbation_grad(step, leaf)
            delta = project_linf(delta.detach() + fgsm_perturbation(g, self.alpha), self.epsilon)
        hook.delta = delta.detach()
        self._final_pass(step)
