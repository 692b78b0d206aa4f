"""The tricks inside ``transformers.Trainer``: :class:`TricksTrainer`, or :func:`with_tricks` on your own subclass.

::

    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    trainer = TricksTrainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                            compute_metrics=compute_metrics,
                            tricks=["fgm", {"rdrop": {"alpha": 0.5}}], callbacks=["grad_norm_logging"])
    trainer.train()

``training_step`` is overridden (a ``TrainerCallback`` can only observe): each micro-batch runs the same
:func:`~nlp_cv_tricks.engine.step.run_passes` as the package's own trainer — the tricks' ``forward_loss`` wrappers
(R-Drop), the criterion a trick replaces (focal loss, label smoothing, class weights: from the logits and
``labels``), the clean backward and the tricks' extra passes (FGM, PGD, FreeLB, AWP) inside the same accumulation
step, with DDP all-reducing once per optimizer step. What ``transformers.Trainer`` does stays its own: your
``compute_loss`` (the default criterion), gradient accumulation and its loss normalisation
(``num_items_in_batch``; every pass of a micro-batch is scaled alike), mixed precision, clipping, the optimizer
and schedule, evaluation, ``report_to`` (the tricks' values such as ``adv_loss`` are logged with the training
loss) and ``resume_from_checkpoint`` (the tricks' state, EMA's averaged weights included, is saved in every
``checkpoint-N`` folder and restored from it). The optimizer-step and epoch hooks run from a ``TrainerCallback``
the trainer adds itself; the evaluation hook runs on transformers' dev metrics before they are logged, so what a
trick adds (EMA's ``eval_ema_*``) is in the same row and in what ``evaluate()`` returns, and ``lr_halving`` follows
``metric_for_best_model``. ``callbacks=`` takes ``TrainerCallback``s as always and the package's observers by
name. A trick that cannot work here is refused when the trainer is built, with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

try:
    import transformers
    from transformers import TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint
except ImportError as e:  # pragma: no cover - transformers is a core dependency
    raise ImportError("the transformers.Trainer integration needs transformers: pip install 'transformers>=5.0'") \
        from e

from ..engine.passes import run_passes
from ..engine.state import TrainState
from ..engine.step import StepContext
from ..utils.io import atomic_write_text, json_default
from .host import HostTask, build_plugins, check_model, host_state

__all__ = ["TricksTrainerMixin", "TricksTrainer", "with_tricks", "STATE_FILE"]

STATE_FILE = "nlp_cv_tricks_state.json"  # the tricks' state inside each checkpoint-N folder


def _ours(metrics: dict, prefix: str = "eval") -> dict:
    """``eval_accuracy`` -> ``eval/accuracy`` (the package's metric names); other keys unchanged."""
    p = prefix + "_"
    return {(f"{prefix}/{k[len(p):]}" if k.startswith(p) else k): v for k, v in metrics.items()}


def _hf(key: str) -> str:
    """``eval_ema/accuracy`` -> ``eval_ema_accuracy`` (transformers' metric names)."""
    return key.replace("/", "_")


class _Bridge(TrainerCallback):
    """The plug-ins' fit, optimizer-step, epoch and checkpoint hooks, at transformers' callback points."""

    def __init__(self, trainer: "TricksTrainerMixin"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._nct_start()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):  # after clipping, before optimizer.step()
        step = self.trainer._nct_last
        if step is not None:
            for p in self.trainer.nct_plugins:
                p.before_optimizer_step(step)
            self.trainer._nct_collect(step)

    def on_step_end(self, args, state, control, **kwargs):  # after optimizer, scheduler and zero_grad
        run, step = self.trainer._nct_run, self.trainer._nct_last
        if step is not None:
            run.global_step = state.global_step
            for p in self.trainer.nct_plugins:
                p.after_optimizer_step(step)
            self.trainer._nct_collect(step)
            self.trainer._nct_last = None
        if run is not None and run.should_stop:
            control.should_training_stop = True

    def on_epoch_end(self, args, state, control, **kwargs):
        run = self.trainer._nct_run
        if run is not None:
            for p in self.trainer.nct_plugins:
                p.on_epoch_end(run, max(int(round(state.epoch or 0)) - 1, 0))
            if run.should_stop:
                control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        run = self.trainer._nct_run
        if run is not None:
            for p in self.trainer.nct_plugins:
                p.on_fit_end(run)

    def on_save(self, args, state, control, **kwargs):
        self.trainer._nct_save(Path(args.output_dir) / f"checkpoint-{state.global_step}")


class TricksTrainerMixin:
    """Adds the package's tricks to a ``transformers.Trainer`` subclass (put it first in the bases, or use
    :func:`with_tricks`). Extra constructor arguments: ``tricks`` (recipe names, recipe-style dicts or Trick
    instances) and, inside ``callbacks``, the package's observers (names, dicts or Callback instances) next to
    ``TrainerCallback``s."""

    def __init__(self, *args, tricks: Any = (), callbacks: Optional[list] = None, **kwargs):
        hf_callbacks, ours = [], []
        for cb in callbacks or []:
            is_hf = isinstance(cb, TrainerCallback) or (isinstance(cb, type) and issubclass(cb, TrainerCallback))
            (hf_callbacks if is_hf else ours).append(cb)
        self.nct_plugins = build_plugins(tricks, ours, where=f"{type(self).__name__} tricks")
        super().__init__(*args, callbacks=hf_callbacks or None, **kwargs)
        check_model(self.nct_plugins, self.model)
        self._nct_run: Optional[TrainState] = None  # the state the plug-ins see
        self._nct_last: Optional[StepContext] = None
        self._nct_logs: dict[str, list[float]] = {}
        self._nct_in_eval = False
        self._nct_resume: Optional[Path] = None
        self.add_callback(_Bridge(self))

    # ---- the run the tricks see ----------------------------------------------------------------------
    def _nct_start(self) -> TrainState:
        if self._nct_run is not None:
            return self._nct_run
        args = self.args
        metric = args.metric_for_best_model or "loss"
        metric = metric[len("eval_"):] if metric.startswith("eval_") else metric
        gib = args.greater_is_better if args.greater_is_better is not None else not metric.endswith("loss")
        trainer = self
        run = host_state(
            self.model_wrapped, self.nct_plugins, self.accelerator,
            HostTask(lambda model, batch: trainer.compute_loss(model, dict(batch), return_outputs=True)),
            optimizer=self.optimizer, scheduler=self.lr_scheduler, output_dir=args.output_dir,
            train_dataset=self.train_dataset, eval_dataset=self.eval_dataset, evaluate=self._nct_evaluate,
            metric=f"eval/{metric}", greater_is_better=gib,
            checkpoint_dir=lambda: Path(args.output_dir) / f"checkpoint-{trainer.state.global_step}")
        run.global_step = self.state.global_step
        run.cfg.gradient_accumulation_steps = args.gradient_accumulation_steps
        self._nct_run = run
        saved = self._nct_load_saved()
        for p in self.nct_plugins:
            if p.name in saved:  # before on_fit_start: EMA builds its average from the restored weights
                p.load_state_dict({**saved[p.name], "_checkpoint_dir": str(self._nct_resume)})
        for p in self.nct_plugins:
            p.on_fit_start(run)
        return run

    def _nct_evaluate(self, dataset: Any = None, prefix: str = "eval") -> dict:
        """An evaluation for a plug-in (EMA's averaged weights, train_eval), outside transformers' own
        evaluate so it is neither logged twice nor reported to callbacks."""
        dl = self.get_eval_dataloader(dataset)
        out = self.evaluation_loop(dl, description="nlp-cv-tricks", metric_key_prefix=prefix)
        return _ours(out.metrics, prefix)

    # ---- the step ----------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        run = self._nct_start()
        run.model, run.optimizer, run.scheduler = model, self.optimizer, self.lr_scheduler
        run.global_step = self.state.global_step
        model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        step = StepContext(run, inputs, self.state.global_step, self.accelerator.sync_gradients)
        step.loss_scale = self._nct_loss_scale(inputs, num_items_in_batch)

        def compute():
            outputs = run.task.forward(model, step.batch)
            return run.criterion(outputs, step.batch, step), outputs

        with self.compute_loss_context_manager():
            run_passes(step, self.nct_plugins, compute)
        for k, v in step.logs.items():
            self._nct_logs.setdefault(k, []).append(v)
        step.logs = {}
        self._nct_last = step
        return step.loss.detach() * step.loss_scale  # what transformers adds up for the logged training loss

    def _nct_loss_scale(self, inputs: dict, num_items_in_batch) -> float:
        """What transformers.Trainer multiplies a micro-batch's mean loss by: its share of the items in the
        optimizer step when ``num_items_in_batch`` is counted (times the processes when tokens are averaged
        across devices), else 1 / the micro-batches in the step."""
        if num_items_in_batch is None:
            return 1.0 / max(int(getattr(self, "current_gradient_accumulation_steps", 1) or 1), 1)
        labels = inputs.get("shift_labels")
        if labels is None:
            labels = inputs.get("labels")
            if labels is not None and getattr(self, "_loss_shifts_labels", False):
                labels = labels[..., 1:]
        if labels is None:
            return 1.0 / max(int(getattr(self, "current_gradient_accumulation_steps", 1) or 1), 1)
        scale = float(labels.ne(-100).sum()) / float(num_items_in_batch)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            scale *= self.accelerator.num_processes
        return scale

    def _nct_collect(self, step: StepContext) -> None:
        for k, v in step.logs.items():
            self._nct_logs.setdefault(k, []).append(v)
        step.logs = {}

    # ---- evaluation and logging ------------------------------------------------------------------------
    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs and self._nct_logs:  # a training log: add the tricks' values of the interval
            logs.update({k: round(sum(v) / len(v), 6) for k, v in self._nct_logs.items() if v})
            self._nct_logs = {}
        elif "eval_runtime" in logs and self._nct_run is not None and not self._nct_in_eval:
            self._nct_eval_end(logs)  # an evaluation of the dev set, before it is logged and returned
        return super().log(logs, *args, **kwargs)

    def _nct_eval_end(self, metrics: dict) -> None:
        """The plug-ins' ``on_eval_end`` on transformers' dev metrics (``eval_accuracy`` seen as
        ``eval/accuracy``); what they add (EMA's ``eval_ema_*``, ``lr_halvings``) joins the same log row and the
        metrics ``evaluate()`` returns."""
        run = self._nct_run
        ours = _ours(metrics, "eval")
        before = set(ours)
        run.metrics = dict(ours)
        self._nct_in_eval = True
        try:
            for p in self.nct_plugins:
                p.on_eval_end(run, ours)
        finally:
            self._nct_in_eval = False
        metrics.update({_hf(k): v for k, v in ours.items() if k not in before})
        if run.should_stop:
            self.control.should_training_stop = True

    # ---- checkpoints -----------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        path = resume_from_checkpoint
        if path is True or (isinstance(path, str) and path == "latest"):
            path = get_last_checkpoint(self.args.output_dir)
        self._nct_resume = Path(path) if isinstance(path, (str, os.PathLike)) and path else None
        self._nct_run = None  # a new fit: the plug-ins start again (from the checkpoint's state when resuming)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, *args, **kwargs)

    def _nct_load_saved(self) -> dict:
        if self._nct_resume is None:
            return {}
        f = self._nct_resume / STATE_FILE
        if not f.is_file():
            if self.nct_plugins:
                import logging

                logging.getLogger(__name__).warning(
                    "%s has no %s: the tricks start afresh (a checkpoint written without them)", self._nct_resume,
                    STATE_FILE)
            return {}
        try:
            saved = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{f}: the tricks' state cannot be read ({e}); resume from another checkpoint") from None
        return {entry["name"]: entry.get("state", {}) for entry in saved.get("plugins", [])}

    def _nct_save(self, ckpt: Path) -> None:
        if self._nct_run is None or not self.is_world_process_zero() or not ckpt.is_dir():
            return
        self._nct_run.global_step = self.state.global_step
        plugins = [{"name": p.name, "state": p.state_dict()} for p in self.nct_plugins]
        atomic_write_text(ckpt / STATE_FILE, json.dumps({"plugins": plugins}, indent=2, default=json_default))


def with_tricks(trainer_cls: type) -> type:
    """Your ``transformers.Trainer`` subclass with the tricks added (``tricks=`` and the package's observers in
    ``callbacks=``): ``MyTrainerWithTricks = with_tricks(MyTrainer)``."""
    if not (isinstance(trainer_cls, type) and issubclass(trainer_cls, transformers.Trainer)):
        raise TypeError(f"with_tricks takes a transformers.Trainer subclass, got {trainer_cls!r}")
    if issubclass(trainer_cls, TricksTrainerMixin):
        return trainer_cls
    return type(f"{trainer_cls.__name__}WithTricks", (TricksTrainerMixin, trainer_cls),
                {"__module__": trainer_cls.__module__, "__doc__": trainer_cls.__doc__})


class TricksTrainer(TricksTrainerMixin, transformers.Trainer):
    """``transformers.Trainer`` with the package's tricks: ``TricksTrainer(..., tricks=["fgm"])``."""

