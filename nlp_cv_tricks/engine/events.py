"""Hook points of the training step, and the two kinds of plug-in: a :class:`Trick` acts on the step (extra
passes, a replaced loss, perturbed embeddings); a :class:`Callback` only observes (logs, evaluations, reports,
warnings). Both receive a :class:`~nlp_cv_tricks.engine.state.TrainState` (the run's state: a data object the
loop updates), never the Trainer.

The trainer owns the loop; a plug-in owns one idea and overrides any of the hooks below; the defaults do
nothing, so it pays only for what it uses. The order of one optimizer step (one accumulation block) is
(``*`` = tricks only)::

    on_fit_start(state)                                  once, after accelerator.prepare
    for each micro-batch:
        with accelerator.accumulate(model):
          * on_step_start(step)                            e.g. register an embedding hook
          * loss, outputs = forward_loss(step, compute)    R-Drop: two forwards + KL; default: compute()
                (compute() = model forward + criterion; the criterion may be replaced by loss_fn)
            step.backward(loss)
          * after_backward(step)                           FGM/PGD/AWP: extra forward/backward passes
            on_micro_batch(state, view)                    observe the micro-batch: its loss, outputs, logits
            if step.sync_gradients:                        end of the accumulation block
                gradient clipping
                before_optimizer_step(step)                e.g. read per-layer gradient norms
                optimizer.step(); scheduler.step(); zero_grad
                after_optimizer_step(step)
    on_eval_end(state, metrics)                            after every evaluation
    on_epoch_end(state, epoch)
    on_fit_end(state)
    on_run_end(state, result)                            the run's files are written (e.g. the end-of-run report)

Every extra forward/backward a trick makes happens inside the same ``accelerator.accumulate`` block, through
``step.backward`` (which scales the loss for gradient accumulation and, in fp16, for the GradScaler). A trick
that makes extra backward passes sets ``extra_backward = True``: the trainer then runs the clean backward
without DDP gradient synchronisation and the trick makes its *last* pass inside ``step.sync_pass()``, so DDP
all-reduces once per optimizer step, whatever the number of passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .state import TrainState
    from .step import MicroBatch, StepContext

__all__ = ["Callback", "Trick", "check_plugins"]


class _Plugin:
    """The hooks both kinds of plug-in share: the fit level, the observation points of a step, and state."""

    name: str = "plugin"
    extra_backward: bool = False
    replaces_criterion: bool = False

    # ---- fit level -------------------------------------------------------------------------------
    def on_fit_start(self, state: "TrainState") -> None:
        """Called once after ``accelerator.prepare`` and before the first step (and after a resume)."""

    def on_epoch_end(self, state: "TrainState", epoch: int) -> None:
        """Called at the end of every epoch (after the epoch-end evaluation, if any)."""

    def on_eval_end(self, state: "TrainState", metrics: dict) -> None:
        """Called after every evaluation with the metrics dict (keys like ``eval/accuracy``)."""

    def on_fit_end(self, state: "TrainState") -> None:
        """Called once when training ends (normally, by early stopping or by ``max_steps``)."""

    def on_run_end(self, state: "TrainState", result: Any) -> None:
        """Called once on every process after the run's files are written (the model, ``metrics.json``) and the
        trackers finished; ``result`` is the run's ``FitResult``."""

    # ---- observation points of a step -------------------------------------------------------------
    def on_micro_batch(self, state: "TrainState", view: "MicroBatch") -> None:
        """Called after the passes of each micro-batch (forward, loss, backward, the tricks' extra passes), inside
        the accumulation block and before any optimizer step; ``view`` is read only: the batch, the clean loss
        (detached), the clean forward's outputs and logits. Not called for a micro-batch skipped for a
        non-finite loss. The package's trainer and the integrations (``transformers.Trainer``, the step API)
        call it alike."""

    def before_optimizer_step(self, step: "StepContext") -> None:
        """Called at the end of each accumulation block, after clipping, before ``optimizer.step()``."""

    def after_optimizer_step(self, step: "StepContext") -> None:
        """Called after ``optimizer.step()``, ``scheduler.step()`` and ``zero_grad()``."""

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """JSON-serialisable state saved with checkpoints (for exact resume). Default: nothing."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned. On resume the trainer adds ``_checkpoint_dir`` (the checkpoint
        directory being read), so files a plug-in wrote next to the checkpoint are found after the run moved."""

    def tensors(self) -> dict:
        """Tensor state (e.g. EMA's averaged weights) for a loop that keeps checkpoints in memory or its own
        format (the step API of :mod:`nlp_cv_tricks.integrations`); a plug-in with some writes them as a file
        from ``state_dict`` in the package's trainer. Default: none."""
        return {}

    def load_tensors(self, tensors: dict) -> None:
        """Restore what :meth:`tensors` returned."""

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


class Callback(_Plugin):
    """An observer: it logs, evaluates, writes reports or warns, and never changes the step (its step hooks are
    the observation points only: ``on_micro_batch``, ``before_optimizer_step``, ``after_optimizer_step``; it may
    still ask the run to stop through ``state.should_stop``). Recipes list callbacks under ``callbacks:`` (the
    table: :mod:`nlp_cv_tricks.callbacks.registry`)."""

    name: str = "callback"


class Trick(_Plugin):
    """Base class of a trick: it acts on the step. Override any hook; every default is a no-op.

    Attributes:
        name: the recipe key the trick is registered under.
        extra_backward: True when ``after_backward`` makes further backward passes (FGM, PGD, FreeLB, AWP).
        replaces_criterion: True when ``loss_fn`` replaces the classification criterion; at most one active
            trick may do that (label smoothing and focal loss do not compose silently).
    """

    name: str = "trick"

    # ---- step level ------------------------------------------------------------------------------
    def on_step_start(self, step: "StepContext") -> None:
        """Called at the start of each micro-batch, inside the accumulation block, before any forward."""

    def loss_fn(self, logits: torch.Tensor, labels: torch.Tensor, step: "StepContext") -> Optional[torch.Tensor]:
        """Replace the criterion: return a scalar loss from logits and labels (or None to keep the default).

        Only tricks with ``replaces_criterion = True`` are asked.
        """
        return None

    def forward_loss(
        self, step: "StepContext", compute: Callable[[], tuple[torch.Tensor, Any]]
    ) -> tuple[torch.Tensor, Any]:
        """Wrap the forward and loss of a micro-batch. ``compute()`` runs the model on ``step.batch`` and
        returns ``(loss, outputs)``; the default returns it unchanged. Wrappers of several tricks nest in
        recipe order (the first trick listed is the outermost)."""
        return compute()

    def after_backward(self, step: "StepContext") -> None:
        """Called after the clean backward of each micro-batch. Extra passes go here; call
        ``step.backward(loss)`` for each, and make the last one inside ``with step.sync_pass():``."""


def check_plugins(plugins: Sequence[_Plugin], where: str = "tricks") -> list:
    """The plug-ins of one run, checked: a name appears once (a trick runs once per step) and at most one
    replaces the criterion."""
    plugins = list(plugins)
    seen: dict[str, int] = {}
    for i, t in enumerate(plugins):
        if t.name in seen:
            raise ValueError(f"{where}: {t.name!r} appears twice ({where}[{seen[t.name]}] and {where}[{i}]); a trick "
                             "runs once per step — keep one (tricks+= appends to the recipe's list)")
        seen[t.name] = i
    crit = [t.name for t in plugins if t.replaces_criterion]
    if len(crit) > 1:
        raise ValueError(f"{where}: {crit} all replace the loss; choose one")
    return plugins
