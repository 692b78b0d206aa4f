"""The passes of one micro-batch, the same wherever the loop is: the package's trainer, a
``transformers.Trainer`` (``integrations.transformers``), a user's own loop (``integrations.loop``)."""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch

from .events import Trick, _Plugin
from .step import MicroBatch, StepContext

__all__ = ["chain_forward_loss", "run_passes"]


def chain_forward_loss(step: StepContext, plugins: Iterable, compute: Callable[[], tuple]) -> Callable[[], tuple]:
    """``compute`` wrapped by every plug-in that overrides ``forward_loss``; the first listed is the outermost."""
    fn = compute
    for trick in reversed(list(plugins)):
        if getattr(type(trick), "forward_loss", Trick.forward_loss) is not Trick.forward_loss:
            fn = (lambda t, inner: (lambda: t.forward_loss(step, inner)))(trick, fn)
    return fn


def run_passes(step: StepContext, plugins: Iterable, compute: Callable[[], tuple],
               check: Optional[Callable[[torch.Tensor], bool]] = None) -> bool:
    """The forward and backward passes of one micro-batch, the same wherever the loop is (the package's trainer,
    a ``transformers.Trainer``, a user's own loop): the acting tricks' ``on_step_start``, the forward and loss
    through the ``forward_loss`` wrappers, the clean backward (kept local under DDP when a trick makes further
    passes), the tricks' ``after_backward`` extra passes, then the plug-ins' ``on_micro_batch`` observation (a
    read-only :class:`~.step.MicroBatch`; built only when a plug-in overrides the hook). ``check(loss)`` may veto
    the backward (a non-finite loss: no further pass nor observation); returns whether the passes ran.
    ``step.loss`` / ``step.outputs`` hold the clean ones."""
    plugins = list(plugins)
    acting = [t for t in plugins if isinstance(t, Trick)]
    step.deferred_sync = any(t.extra_backward for t in acting)
    for trick in acting:
        trick.on_step_start(step)
    with step.no_sync():
        step.loss, step.outputs = chain_forward_loss(step, plugins, compute)()
        ok = check(step.loss) if check is not None else True
        if ok:
            step.backward(step.loss)
    if ok:
        for trick in acting:
            trick.after_backward(step)
        observers = [p for p in plugins
                     if getattr(type(p), "on_micro_batch", _Plugin.on_micro_batch) is not _Plugin.on_micro_batch]
        if observers:
            view = MicroBatch(step)
            for p in observers:
                p.on_micro_batch(step.state, view)
    return ok
