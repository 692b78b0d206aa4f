"""Adversarial training: FGM, PGD and FreeLB on the embedding output, AWP on the weights, FGSM/PGD on pixels.

All of them follow the same step shape (see :mod:`nlp_cv_tricks.engine.events`): the trainer runs the clean
forward/backward, then ``after_backward`` makes the adversarial pass(es) through ``step.backward`` inside the
same accumulation block, so gradient accumulation, fp16 loss scaling and DDP stay correct. The *last* pass of a
step runs inside ``step.extra_pass(last=True)`` (DDP all-reduces there, once); intermediate PGD passes only ask
``torch.autograd.grad`` for the gradient of the perturbation and never touch parameter gradients.

Embedding tricks (FGM, PGD, FreeLB) perturb the *output* of ``model.get_input_embeddings()`` through a forward
hook, never ``weight.data``: that works for every model with input embeddings (HF encoders, this package's own
models), with FSDP/ZeRO-3 sharding, and nothing needs restoring (the hook is removed at the end of the step, in a
``finally``). Every trick always makes the same number of passes, even when a gradient is zero or non-finite
(fp16 overflow: the perturbation is then zero and the GradScaler skips the step), so DDP ranks never disagree on
the number of collective calls.

Norms are per example by default (``norm="example"``: the L2 norm of one example's gradient over all its tokens
and hidden units, as in Miyato et al.), which makes the result independent of how a batch is split into
micro-batches. ``norm="batch"`` gives the norm over the whole micro-batch (the popular FGM snippet that
normalises the gradient of the embedding matrix), ``norm="token"`` one norm per token vector.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Optional, Sequence

import torch

from ..engine.events import Trick

__all__ = [
    "fgm_perturbation", "project_l2", "pgd_step", "freelb_init", "fgsm_perturbation", "project_linf",
    "awp_perturbation", "input_embeddings", "EmbeddingOutputHook", "sync_skipped_step", "FGM", "PGD", "FreeLB", "AWP",
    "PixelFGSM", "PixelPGD",
]

_NORMS = ("example", "batch", "token")


# ---------------------------------------------------------------------------------------------------------
# pure functions
# ---------------------------------------------------------------------------------------------------------
def _finite(t: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(t.float(), nan=0.0, posinf=0.0, neginf=0.0)


def _norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """L2 norm of ``t`` broadcastable against ``t``: per example (dim 0), whole tensor, or per last-dim vector."""
    if norm == "example":
        return t.reshape(t.size(0), -1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))
    if norm == "batch":
        return t.norm()
    if norm == "token":
        return t.norm(dim=-1, keepdim=True)
    raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")


def _apply_mask(t: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if mask is None:
        return t
    m = mask.to(t.dtype)
    while m.dim() < t.dim():
        m = m.unsqueeze(-1)
    return t * m


def fgm_perturbation(grad: torch.Tensor, epsilon: float, norm: str = "example",
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """FGM direction ``r = epsilon * g / ||g||`` (fp32). Zero where the gradient is zero or non-finite.

    Args:
        grad: gradient of the loss with respect to the embedding output, shape ``(B, ...)``.
        epsilon: L2 size of the perturbation (per example, per batch or per token, see ``norm``).
        mask: optional ``(B, L)`` mask; masked positions (padding) get no perturbation.
    """
    g = _apply_mask(_finite(grad), mask)
    n = _norm(g, norm)
    return float(epsilon) * g / n.clamp_min(1e-12)


def project_l2(delta: torch.Tensor, epsilon: float, norm: str = "example") -> torch.Tensor:
    """Project ``delta`` onto the L2 ball of radius ``epsilon`` (per example/batch/token); ``epsilon <= 0``
    means no bound."""
    if epsilon is None or epsilon <= 0:
        return delta
    n = _norm(delta.float(), norm)
    factor = torch.clamp(float(epsilon) / n.clamp_min(1e-12), max=1.0)
    return delta * factor.to(delta.dtype)


def pgd_step(delta: torch.Tensor, grad: torch.Tensor, alpha: float, epsilon: float, norm: str = "example",
             mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One L2 PGD ascent step (Madry et al. 2018): ``proj_eps(delta + alpha * g / ||g||)``."""
    return project_l2(delta.float() + fgm_perturbation(grad, alpha, norm, mask), epsilon, norm)


def freelb_init(shape: Sequence[int], init_mag: float, mask: Optional[torch.Tensor] = None,
                device=None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """FreeLB's random start (Zhu et al. 2020, reference code): uniform in ``[-1, 1]`` on the real tokens,
    scaled by ``init_mag / sqrt(n_tokens * hidden)`` per example, so its norm is at most ``init_mag``."""
    if init_mag <= 0:
        return torch.zeros(tuple(shape), device=device)
    delta = torch.rand(tuple(shape), device=device, generator=generator) * 2 - 1
    delta = _apply_mask(delta, mask)
    hidden = shape[-1]
    if mask is not None:
        n_tok = mask.float().reshape(mask.size(0), -1).sum(1).clamp_min(1)
    else:
        n_tok = torch.full((shape[0],), float(math.prod(shape[1:-1]) or 1), device=delta.device)
    mag = init_mag / torch.sqrt(n_tok * hidden)
    return delta * mag.view(-1, *([1] * (delta.dim() - 1)))


def fgsm_perturbation(grad: torch.Tensor, epsilon: float) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): ``epsilon * sign(grad)`` (L-infinity), zero where the gradient is not
    finite."""
    return float(epsilon) * torch.sign(_finite(grad))


def project_linf(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Clamp every coordinate of ``delta`` into ``[-epsilon, epsilon]``."""
    return delta.clamp(-float(epsilon), float(epsilon))


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


# ---------------------------------------------------------------------------------------------------------
# the embedding hook
# ---------------------------------------------------------------------------------------------------------
def _get_module(model: torch.nn.Module, path: str) -> torch.nn.Module:
    mod = model
    for part in path.split("."):
        if not hasattr(mod, part):
            raise ValueError(f"module path {path!r}: {type(mod).__name__} has no attribute {part!r}")
        mod = getattr(mod, part)
    if not isinstance(mod, torch.nn.Module):
        raise ValueError(f"module path {path!r} names a {type(mod).__name__}, not a torch.nn.Module")
    return mod


def input_embeddings(model: torch.nn.Module, module: Optional[str] = None) -> torch.nn.Module:
    """The module whose output gets perturbed: ``module`` (a dotted path) or ``model.get_input_embeddings()``."""
    if module:
        return _get_module(model, module)
    getter = getattr(model, "get_input_embeddings", None)
    emb = getter() if callable(getter) else None
    if emb is None:
        raise ValueError(
            f"{type(model).__name__} has no get_input_embeddings(); embedding-space adversarial training needs "
            "it, or give the trick the dotted path of the embedding module, e.g. {module: 'encoder.embed'}")
    return emb


def _batch_mask(batch: Any, shape: torch.Size) -> Optional[torch.Tensor]:
    """The batch's attention mask when it lines up with the first two dims of the embedding output."""
    if isinstance(batch, dict) and len(shape) >= 3:
        m = batch.get("attention_mask")
        if torch.is_tensor(m) and tuple(m.shape) == tuple(shape[:2]):
            return m
    return None


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


def _adv_key(step, trick) -> str:
    """``adv_loss``, or ``adv_loss/<trick>`` when several adversarial tricks run together (each keeps its own)."""
    tricks = getattr(step.state, "tricks", None) or []
    n = sum(1 for t in tricks if isinstance(t, (_EmbeddingAdversarial, AWP, _PixelAdversarial)))
    return "adv_loss" if n <= 1 else f"adv_loss/{trick.name}"


class EmbeddingOutputHook:
    """A forward hook on an embedding module with two modes.

    * ``capture`` (from creation): every forward output that requires grad gets a tensor hook that stores its
      gradient; the outputs themselves are unchanged.
    * ``perturb``: ``delta_fn(output)`` is added to every output (cast to the output's dtype).

    Remove it with :meth:`remove` (idempotent).
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.grads: list[Optional[torch.Tensor]] = []
        self.delta_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _store(self, i: int, g: torch.Tensor) -> None:
        self.grads[i] = g.detach()

    def _hook(self, module, inputs, output):
        if not torch.is_tensor(output):
            raise TypeError(f"{type(module).__name__} returns {type(output).__name__}; embedding-space adversarial "
                            "training needs a module that returns one tensor (name it with the trick's `module`)")
        if self.delta_fn is None:
            if not torch.is_grad_enabled():
                return None
            if not output.requires_grad:  # frozen embeddings: still let the gradient reach this point
                output = output.detach().requires_grad_(True)
            i = len(self.grads)
            self.grads.append(None)
            output.register_hook(lambda g, i=i: self._store(i, g))
            return output
        self.calls += 1
        delta = self.delta_fn(output)
        return output + delta.to(output.dtype)

    def clean_grad(self, shape: torch.Size) -> Optional[torch.Tensor]:
        return _fold(self.grads, shape)

    def perturb(self, delta_fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.delta_fn = delta_fn

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.grads = []
        self.delta_fn = None


# ---------------------------------------------------------------------------------------------------------
# shared machinery
# ---------------------------------------------------------------------------------------------------------
def _check_norm(norm: str) -> str:
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    return norm


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


class _EmbeddingAdversarial(Trick):
    """Registers the capture hook at step start, runs :meth:`_attack` after the clean backward, removes it."""

    extra_backward = True

    def __init__(self, module: Optional[str], adv_weight: float, start_step: int):
        self.module = module
        self.adv_weight = _positive("adv_weight", adv_weight, allow_zero=True)
        if int(start_step) < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        self.start_step = int(start_step)
        self._hook: Optional[EmbeddingOutputHook] = None

    def _remove(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_step_start(self, step) -> None:
        self._remove()
        if step.global_step >= self.start_step:
            self._hook = EmbeddingOutputHook(input_embeddings(step.unwrapped_model, self.module))

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

    def _first_direction(self, step, hook, out: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        g = hook.clean_grad(out.shape)
        if g is None:
            g = torch.zeros(out.shape, device=out.device)
        return g, _batch_mask(step.batch, out.shape)

    def _final_pass(self, step) -> torch.Tensor:
        with step.extra_pass(last=True):
            loss, _ = step.compute_loss()
            step.backward(loss * self.adv_weight)
        return loss.detach()

    def _attack(self, step, hook: EmbeddingOutputHook) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# tricks on the embedding output
# ---------------------------------------------------------------------------------------------------------
class FGM(_EmbeddingAdversarial):
    """Fast Gradient Method on the embedding output.

    Source: Miyato, Dai & Goodfellow, "Adversarial Training Methods for Semi-Supervised Text Classification",
    ICLR 2017. After the clean backward, the embedding output of the micro-batch is moved by
    ``r = epsilon * g / ||g||`` (``g``: gradient of the loss w.r.t. that output) and a second forward/backward
    adds the gradient of ``adv_weight * loss(x + r)``.

    Expected effect: a robustness regulariser, commonly +0.5 to +1.5 points on text classification and MRC
    fine-tuning (the "works wonders for NLP" tip); it may do nothing on clean, easy data.
    Cost: one extra forward and backward per micro-batch (about 2x step time), no extra parameter memory.

    Recipe key ``fgm``: ``epsilon`` (0.2), ``norm`` (example|batch|token), ``adv_weight`` (1.0),
    ``start_step`` (0), ``module`` (dotted path of the embedding module; default get_input_embeddings()).

    ``epsilon`` is the L2 size per example (``norm: example``, the default: the result does not depend on how a
    batch is split by gradient accumulation or DDP). It should scale with the embedding vectors' norm (~1.1 per
    token in BERT-style MiniLM). Measured on MiniLM / SST-2 (1,728 sentences, 54 steps, one seed): plain 0.791 dev
    accuracy; epsilon 1.0 per example kept training at chance (0.509); 0.2 per example 0.783; 1.0 with
    ``norm: batch`` (one norm over the micro-batch, the scale of the popular implementation that perturbs the
    embedding weight, about epsilon / sqrt(batch) per example) 0.804. See benchmarks/RESULTS.md, tricks section.
    """

    name = "fgm"

    def __init__(self, epsilon: float = 0.2, norm: str = "example", adv_weight: float = 1.0,
                 start_step: int = 0, module: Optional[str] = None):
        super().__init__(module, adv_weight, start_step)
        self.epsilon = _positive("fgm.epsilon", epsilon)
        self.norm = _check_norm(norm)

    def _attack(self, step, hook):
        cache: dict = {}

        def delta_fn(out):
            if out.shape not in cache:
                g, mask = self._first_direction(step, hook, out)
                cache[out.shape] = fgm_perturbation(g, self.epsilon, self.norm, mask)
            return cache[out.shape]

        hook.perturb(delta_fn)
        step.log(_adv_key(step, self), self._final_pass(step))


class PGD(_EmbeddingAdversarial):
    """Projected Gradient Descent on the embedding output, K ascent steps inside an L2 ball.

    Source: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018; the NLP
    variant perturbs embeddings (as popularised for BERT fine-tuning). Starting from the clean gradient,
    ``delta <- proj_eps(delta + alpha * g / ||g||)`` K times; passes 1..K-1 only compute the gradient of the
    perturbation (``torch.autograd.grad``), pass K adds the gradient of ``adv_weight * loss(x + delta)`` to the
    parameters. So the update is clean gradient + gradient at the strongest perturbation found.

    Expected effect: like FGM, sometimes a little stronger; more sensitive to ``epsilon``/``alpha``.
    Cost: K extra forward/backward passes per micro-batch, (K+1)x step time; intermediate backwards skip the
    weight-gradient accumulation.

    Recipe key ``pgd``: ``epsilon`` (0.2), ``alpha`` (0.06), ``steps`` K (3), ``norm`` (example), ``adv_weight``,
    ``start_step``, ``module``. The defaults keep FGM's per-example scale (see :class:`FGM`).
    """

    name = "pgd"

    def __init__(self, epsilon: float = 0.2, alpha: float = 0.06, steps: int = 3, norm: str = "example",
                 adv_weight: float = 1.0, start_step: int = 0, module: Optional[str] = None):
        super().__init__(module, adv_weight, start_step)
        self.epsilon = _positive("pgd.epsilon", epsilon)
        self.alpha = _positive("pgd.alpha", alpha)
        if int(steps) < 1:
            raise ValueError(f"pgd.steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.norm = _check_norm(norm)

    def _attack(self, step, hook):
        state: dict = {}

        def delta_fn(out):
            if "delta" not in state:
                g, mask = self._first_direction(step, hook, out)
                state["mask"] = mask
                state["delta"] = pgd_step(torch.zeros(out.shape, device=out.device), g, self.alpha,
                                          self.epsilon, self.norm, mask)
            d = state["delta"]
            if d.shape != out.shape:
                raise RuntimeError(f"pgd: embedding output shape changed from {tuple(d.shape)} to "
                                   f"{tuple(out.shape)} between passes")
            if state.get("leaf"):
                d.requires_grad_(True)
            return d

        hook.perturb(delta_fn)
        for k in range(self.steps - 1):
            state["leaf"] = True
            with step.extra_pass(last=False):
                loss, _ = step.compute_loss()
                (g,) = _grad_of(step, loss, [state["delta"]])
            state["delta"] = pgd_step(state["delta"].detach(), g, self.alpha, self.epsilon, self.norm,
                                      state["mask"])
            state["leaf"] = False
        step.log(_adv_key(step, self), self._final_pass(step))


class FreeLB(_EmbeddingAdversarial):
    """FreeLB: "free" large-batch adversarial training on the embedding output.

    Source: Zhu et al., "FreeLB: Enhanced Adversarial Training for Natural Language Understanding", ICLR 2020.
    K adversarial passes; each adds ``adv_weight * loss(x + delta_k) / K`` to the parameter gradients (the
    "free" part: gradients of every ascent step are used) and moves ``delta`` by ``alpha * g / ||g||``,
    projected to ``epsilon`` (``epsilon=0``: no bound). ``delta_1`` is the paper's random start (``init_mag``)
    plus one ascent step along the clean gradient.

    Difference to the paper: the paper's update is the mean of the K adversarial gradients only; here the
    trainer's clean backward always comes first (the hook API), so the update is clean + mean of K
    adversarial gradients, on the same scale as FGM and PGD.

    Expected effect: reported +0.5 to +1 GLUE points over the plain fine-tune for BERT/RoBERTa.
    Cost: K extra forward/backward passes per micro-batch ((K+1)x step time).

    Recipe key ``freelb``: ``steps`` K (3), ``alpha`` (0.1), ``epsilon`` (0 = unbounded), ``init_mag`` (0.0),
    ``norm``, ``adv_weight``, ``start_step``, ``module``.
    """

    name = "freelb"

    def __init__(self, steps: int = 3, alpha: float = 0.1, epsilon: float = 0.0, init_mag: float = 0.0,
                 norm: str = "example", adv_weight: float = 1.0, start_step: int = 0,
                 module: Optional[str] = None):
        super().__init__(module, adv_weight, start_step)
        if int(steps) < 1:
            raise ValueError(f"freelb.steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.alpha = _positive("freelb.alpha", alpha)
        self.epsilon = _positive("freelb.epsilon", epsilon, allow_zero=True)
        self.init_mag = _positive("freelb.init_mag", init_mag, allow_zero=True)
        self.norm = _check_norm(norm)

    def _attack(self, step, hook):
        state: dict = {}

        def delta_fn(out):
            if "delta" not in state:
                g, mask = self._first_direction(step, hook, out)
                state["mask"] = mask
                start = freelb_init(out.shape, self.init_mag, mask, device=out.device)
                state["delta"] = pgd_step(start, g, self.alpha, self.epsilon, self.norm, mask)
            d = state["delta"]
            if not state["last"]:
                d.requires_grad_(True)
            return d

        losses = []
        for k in range(self.steps):
            last = k == self.steps - 1
            state["last"] = last
            hook.perturb(delta_fn)
            with step.extra_pass(last=last):
                loss, _ = step.compute_loss()
                step.backward(loss * (self.adv_weight / self.steps))
            losses.append(loss.detach())
            if not last:
                d = state["delta"]
                g = d.grad if d.grad is not None else torch.zeros_like(d)
                state["delta"] = pgd_step(d.detach(), g, self.alpha, self.epsilon, self.norm, state["mask"])
        step.log(_adv_key(step, self), torch.stack(losses).mean())


# ---------------------------------------------------------------------------------------------------------
# AWP: adversarial weight perturbation
# ---------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------
# pixels
# ---------------------------------------------------------------------------------------------------------
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


class _PixelAdversarial(Trick):
    extra_backward = True

    def __init__(self, epsilon: float, key: str, clamp, adv_weight: float, start_step: int):
        self.epsilon = _positive(f"{self.name}.epsilon", epsilon)
        self.key = key
        if clamp is not None and (len(clamp) != 2 or float(clamp[0]) >= float(clamp[1])):
            raise ValueError(f"{self.name}.clamp must be [min, max] with min < max, got {clamp!r}")
        self.clamp = None if clamp is None else [float(clamp[0]), float(clamp[1])]
        self.adv_weight = _positive(f"{self.name}.adv_weight", adv_weight, allow_zero=True)
        self.start_step = int(start_step)
        self._hook: Optional[_PixelHook] = None

    def _remove(self):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_step_start(self, step):
        self._remove()
        if step.global_step >= self.start_step:
            self._hook = _PixelHook(step.unwrapped_model, self.key, self.clamp)

    def on_fit_end(self, trainer):
        self._remove()

    def _shape(self, step) -> torch.Size:
        x = step.batch.get(self.key) if isinstance(step.batch, dict) else None
        if not torch.is_tensor(x):
            raise ValueError(f"{self.name}: the batch has no tensor {self.key!r} (keys: "
                             f"{sorted(step.batch) if isinstance(step.batch, dict) else type(step.batch).__name__})")
        return x.shape

    def after_backward(self, step):
        if self._hook is None:
            sync_skipped_step(step)
            return
        try:
            self._attack(step, self._hook)
        finally:
            self._remove()

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
            with step.extra_pass(last=False):
                loss, _ = step.compute_loss()
                (g,) = _grad_of(step, loss, [leaf])
            delta = project_linf(delta.detach() + fgsm_perturbation(g, self.alpha), self.epsilon)
        hook.delta = delta.detach()
        self._final_pass(step)
