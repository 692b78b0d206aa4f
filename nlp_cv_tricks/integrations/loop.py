"""The tricks inside your own Accelerate or PyTorch loop: one call in place of ``loss.backward()``.

Plain PyTorch (the single-trick case, as people write FGM by hand)::

    from nlp_cv_tricks.integrations import TrickStep

    fgm = TrickStep(model, "fgm")                 # or ["fgm", {"rdrop": {"alpha": 1.0}}, FocalLoss(gamma=2)]
    for batch in loader:
        loss = fgm.step(batch)                    # forward, loss, backward, FGM's adversarial pass
        optimizer.step(); optimizer.zero_grad()

Accelerate, with gradient accumulation and DDP::

    tricks = TrickStep(model, ["fgm", "ema"], accelerator=accelerator)
    for batch in loader:
        with accelerator.accumulate(model):
            loss = tricks.step(batch)             # the extra passes stay inside the accumulation block
            tricks.before_optimizer_step()        # only tricks that read gradients (grad_norm_logging) need it
            optimizer.step(); scheduler.step(); optimizer.zero_grad()
            tricks.after_optimizer_step()         # EMA updates here; a no-op between accumulation steps

The loss comes from the model (``model(**batch).loss``, labels in the batch) or from ``compute_loss(model, batch)``
(returning the loss, or ``(loss, outputs)``); tricks that replace the loss (focal loss, label smoothing, class
weights) use the logits and ``batch["labels"]``. The same :func:`~nlp_cv_tricks.engine.step.run_passes` runs the
passes as in the package's trainer, so every extra forward/backward happens inside the same accumulation block and
DDP all-reduces once per optimizer step.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from ..engine.passes import run_passes
from ..engine.step import StepContext
from .host import HostTask, LoopAccelerator, build_plugins, check_model, host_state

__all__ = ["TrickStep"]


class TrickStep:
    """Tricks and callbacks for a user's own loop (see the module docstring).

    Args:
        model: the model being trained (as your loop calls it: prepared by Accelerate, DDP-wrapped, or bare).
        tricks: recipe names, recipe-style dicts or Trick/Callback instances (one or a list).
        accelerator: your ``accelerate.Accelerator``; without one, a plain PyTorch loop (``loss.backward()``,
            ``torch.distributed`` under DDP).
        gradient_accumulation_steps: without an accelerator, the micro-batches per optimizer step (the backward
            is divided by it, as Accelerate does).
        compute_loss: ``fn(model, batch) -> loss or (loss, outputs)``; default: the model's own loss.
        optimizer, scheduler: needed by the tricks that change the learning rate (``lr_halving``).
        train_dataset: lets class weights and focal ``alpha`` derive from the label counts (or give
            ``label_counts``).
        evaluate: ``fn(dataset, prefix) -> {"<prefix>/<metric>": value}``, for tricks that evaluate (EMA's
            ``eval_ema`` metrics, ``train_eval``); ``metric``/``greater_is_better``: what ``lr_halving`` tracks.
        output_dir: where tricks that write files (``layer_report``, EMA's checkpoint) write.
    """

    def __init__(self, model: torch.nn.Module, tricks: Any = (), accelerator: Any = None, *,
                 callbacks: Any = (), gradient_accumulation_steps: int = 1,
                 compute_loss: Optional[Callable] = None, optimizer: Any = None, scheduler: Any = None,
                 train_dataset: Any = None, label_counts: Optional[list[int]] = None,
                 evaluate: Optional[Callable] = None, metric: str = "eval/accuracy", greater_is_better: bool = True,
                 output_dir: Optional[str] = None):
        if int(gradient_accumulation_steps) < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}")
        if accelerator is not None and gradient_accumulation_steps != 1:
            raise ValueError("with an accelerator, set gradient accumulation on it "
                             "(Accelerator(gradient_accumulation_steps=...)), not on TrickStep")
        self.plugins = build_plugins(tricks, callbacks, where="TrickStep tricks")
        check_model(self.plugins, model)
        names = {p.name for p in self.plugins}
        if "lr_halving" in names and optimizer is None:
            raise ValueError("TrickStep: lr_halving changes the learning rate of your optimizer: pass optimizer= "
                             "(and scheduler=, so a schedule keeps the new level), and call tricks.evaluated(metrics) "
                             "after each evaluation")
        if "train_eval" in names and (evaluate is None or train_dataset is None):
            raise ValueError("TrickStep: train_eval scores a sample of the training data at each evaluation: pass "
                             "evaluate=fn(dataset, prefix) and train_dataset=")
        self._plain = accelerator is None
        self.accelerator = accelerator if accelerator is not None else LoopAccelerator(model)
        self._accum = int(gradient_accumulation_steps)
        self._micro = 0
        self._state = host_state(model, self.plugins, self.accelerator, HostTask(compute_loss), optimizer=optimizer,
                                 scheduler=scheduler, output_dir=output_dir, train_dataset=train_dataset,
                                 label_counts=label_counts, metric=metric, greater_is_better=greater_is_better,
                                 evaluate=None if evaluate is None else (lambda ds, prefix: evaluate(ds, prefix)))
        self._started = False
        self._last: Optional[StepContext] = None
        self.logs: dict[str, list[float]] = {}

    # ---- what a loop calls ---------------------------------------------------------------------------
    @property
    def state(self):
        """The :class:`~nlp_cv_tricks.engine.state.TrainState` the tricks see (this loop updates it)."""
        return self._state

    @property
    def global_step(self) -> int:
        return self._state.global_step

    def step(self, batch: dict, compute_loss: Optional[Callable] = None) -> torch.Tensor:
        """Forward, loss and backward of one micro-batch, with every trick's passes. Returns the clean loss
        (detached, unscaled). Call it inside ``accelerator.accumulate(model)`` when you accumulate gradients."""
        if not self._started:
            self._started = True
            for p in self.plugins:
                p.on_fit_start(self.state)
        if compute_loss is not None:
            self._state.task.compute_loss = compute_loss
        if self._plain:
            self._micro += 1
            self.accelerator.sync_gradients = self._micro % self._accum == 0
        sync = bool(getattr(self.accelerator, "sync_gradients", True))
        step = StepContext(self.state, batch, self._state.global_step, sync)
        if self._plain and self._accum > 1:
            step.loss_scale = 1.0 / self._accum
        run_passes(step, self.plugins, lambda: self._compute(step))
        self._collect(step)  # once: the optimizer-step hooks collect only what they log themselves
        self._last = step
        return step.loss.detach()

    def _compute(self, step: StepContext):
        outputs = self._state.task.forward(self._state.model, step.batch)
        return self._state.criterion(outputs, step.batch, step), outputs

    def before_optimizer_step(self) -> None:
        """The plug-ins' ``before_optimizer_step`` (after clipping, before ``optimizer.step()``); a no-op between
        accumulation steps."""
        if self._last is not None and self._last.sync_gradients:
            for p in self.plugins:
                p.before_optimizer_step(self._last)
            self._collect(self._last)

    def after_optimizer_step(self) -> None:
        """The plug-ins' ``after_optimizer_step`` (EMA's update) and the step count; a no-op between
        accumulation steps."""
        step = self._last
        if step is None or not step.sync_gradients:
            return
        for p in self.plugins:
            p.after_optimizer_step(step)
        self._collect(step)
        self._state.global_step += 1
        self._last = None

    def evaluated(self, metrics: dict) -> dict:
        """Tell the tricks about an evaluation (``{"eval/accuracy": ...}``); they may add metrics (EMA's
        ``eval_ema/*``), halve the learning rate or ask to stop (``self.should_stop``). Returns the metrics."""
        self._state.metrics = dict(metrics)
        for p in self.plugins:
            p.on_eval_end(self.state, metrics)
        return metrics

    def epoch_end(self, epoch: int) -> None:
        for p in self.plugins:
            p.on_epoch_end(self.state, epoch)

    def end(self) -> None:
        """The plug-ins' ``on_fit_end`` (hooks removed, final reports written)."""
        for p in self.plugins:
            p.on_fit_end(self.state)

    @property
    def should_stop(self) -> bool:
        return self._state.should_stop

    def pop_logs(self) -> dict[str, float]:
        """The tricks' logged values (e.g. ``adv_loss``, ``rdrop_kl``) averaged since the last call."""
        out = {k: float(sum(v) / len(v)) for k, v in self.logs.items() if v}
        self.logs = {}
        return out

    def __getitem__(self, name: str):
        """The plug-in registered under ``name`` (e.g. ``tricks["ema"].ema.module``, the averaged model)."""
        for p in self.plugins:
            if p.name == name:
                return p
        raise KeyError(f"no trick {name!r} here (have: {[p.name for p in self.plugins]})")

    # ---- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The plug-ins' states and the step count, to save with your checkpoint (tensors included: EMA's
        averaged weights), e.g. through ``accelerator.register_for_checkpointing(tricks)`` or
        ``safetensors``/``torch.save`` of your own."""
        out: dict = {"global_step": self._state.global_step, "plugins": {}}
        for p in self.plugins:
            tensors = p.tensors()
            out["plugins"][p.name] = {"tensors": tensors} if tensors else {"state": p.state_dict()}
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (before or after the first step)."""
        self._state.global_step = int(state.get("global_step", 0))
        for p in self.plugins:
            entry = state.get("plugins", {}).get(p.name)
            if entry is None:
                continue
            if entry.get("tensors"):
                p.load_tensors(entry["tensors"])
            elif entry.get("state"):
                p.load_state_dict(entry["state"])

    def _collect(self, step: StepContext) -> None:
        for k, v in step.logs.items():
            self.logs.setdefault(k, []).append(v)
        step.logs = {}
