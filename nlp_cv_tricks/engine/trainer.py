"""The trainer: one loop on ``accelerate.Accelerator`` with hook points for tricks.

Built on Accelerate rather than ``transformers.Trainer`` because tricks such as FGM, PGD and R-Drop must act on
the step itself (extra forwards and backwards, a replaced loss), which Trainer callbacks can only observe.

A run directory holds::

    recipe.yaml          the resolved recipe
    history.jsonl        one JSON object per logging/evaluation step
    logs/                tracker output (TensorBoard by default)
    checkpoints/step_N/  accelerate.save_state + trainer_state.json (for exact resume; the LR schedule's state
                         is in it, engine/checkpoint.py)
    best/                the selected model: save_pretrained (safetensors) + tokenizer + recipe + metrics
    metrics.json         final summary
    .nlp_cv_tricks_run.json  the run manifest: what this run wrote (output.overwrite removes only that)
    .nlp_cv_tricks.lock  while the run trains: who holds the folder (engine/run_lock.py)
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, broadcast_object_list, set_seed

from ..config import Recipe, flat_recipe, recipe_to_dict, save_recipe
from ..utils.io import WriteError, append_json_line, atomic_write_text, json_default, replace_dir, writing
from ..utils.progress import Progress
from .checkpoint import load_scheduler_state, rebuild_scheduler_state, scheduler_state, without_pickled_objects
from .events import Callback, Trick
from .state import TrainState
from .optimizer_factory import build_optimizer, build_scheduler, param_groups  # noqa: F401  (their home)
from .resume_check import RESUME_CHANGES_FILE, check_resume, data_fingerprint, load_error
from .run_lock import RunLock, RunLockedError
from .run_manifest import RunDirError, prepare_run_dir, remove_stale_temp_files
from .run_stop import InterruptGuard, TrainingInterrupted, TrainingWriteError
from .passes import run_passes
from .result import FitResult, NonFiniteLossError, greater_is_better, metric_key
from .step import StepContext
from .task import ClassificationTask, EvalContext, Task

logger = logging.getLogger(__name__)

__all__ = ["Trainer", "FitResult", "NonFiniteLossError", "make_accelerator", "build_optimizer", "build_scheduler"]


def _other_accelerator() -> bool:
    """An accelerator other than CUDA that Accelerate would use for multi-process training."""
    from accelerate.utils import is_mlu_available, is_npu_available, is_xpu_available

    return bool(is_npu_available() or is_xpu_available() or is_mlu_available())


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons (precision, accumulation); several single-process runs in one
    process (sweeps, ablations, tests) that differ in them need them cleared. A no-op under a distributed
    launcher, whose state it is."""
    from accelerate.state import AcceleratorState, GradientState

    if PartialState._shared_state.get("num_processes", 1) > 1:
        return
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@dataclass
class _Loop:
    """The running state of one ``fit()``: the step plan, the position in the epoch, the logging interval's
    running loss and logs (what a checkpoint saves of it), and what the stages share."""

    train_dl: Any
    optimizer: Any
    total_steps: int
    num_epochs: int
    constrain: Any = None
    start_epoch: int = 0
    skip_batches: int = 0
    rng_after_load: Optional[dict] = None
    resumed_loss: tuple = (0.0, 0)
    bar: Any = None
    t0: float = 0.0
    loss_sum: Any = None
    loss_count: int = 0
    trick_logs: dict = field(default_factory=dict)
    skipped: int = 0
    grad_norm: Any = None
    epoch: int = 0
    batches_in_epoch: int = 0
    first_step: int = 0
    done: bool = False


def make_accelerator(recipe: Recipe, output_dir: Optional[str]) -> Accelerator:
    """The Accelerator of a run; its ``project_dir`` is the run directory (``{timestamp}`` resolved once on
    the main process and broadcast, so every process writes to the same place)."""
    cfg = recipe.train
    if cfg.mixed_precision == "fp16" and not (torch.cuda.is_available() and not cfg.cpu):
        raise ValueError("train.mixed_precision=fp16 needs a CUDA GPU; on CPU use bf16 or no")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    # Accelerate only runs several processes on CPU (DDP over gloo) when asked for the CPU explicitly;
    # otherwise each launched process would silently train alone.
    cpu = cfg.cpu or (world_size > 1 and not torch.cuda.is_available() and not _other_accelerator())
    if world_size == 1:
        reset_accelerate_state()  # start each single-process run afresh
    if output_dir is None:
        state = PartialState(cpu=cpu)
        stamp = [datetime.now().strftime("%Y%m%d-%H%M%S")]
        if state.num_processes > 1:
            broadcast_object_list(stamp)
        output_dir = recipe.output.dir.format(name=recipe.name, timestamp=stamp[0])
    log_with = None if recipe.output.report_to == "none" else recipe.output.report_to
    if log_with == "tensorboard":
        from ..utils.optional import available, install_hint

        if not available("tensorboard"):
            logger.warning("tensorboard is not installed; tracking only to history.jsonl (%s, or "
                           "output.report_to=none)", install_hint("tracking"))
            log_with = None
    acc = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=cfg.mixed_precision,
        cpu=cpu,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(output_dir),
                                            logging_dir=str(Path(output_dir) / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
        step_scheduler_with_optimizer=False,
    )
    if world_size > 1 and acc.num_processes != world_size:
        raise RuntimeError(f"launched with WORLD_SIZE={world_size} but Accelerate runs {acc.num_processes} "
                           f"process(es) ({acc.distributed_type}); check the accelerate launch configuration")
    return acc



def _on_state(name: str, doc: Optional[str] = None) -> property:
    """A Trainer attribute that is a field of its :class:`TrainState` (one value, read and written in one place)."""
    return property(lambda self: getattr(self.state, name), lambda self, value: setattr(self.state, name, value),
                    doc=doc or f"``state.{name}``")


class Trainer:
    """Fine-tune a model on prepared (tokenized) datasets under a recipe.

    It runs what it is handed and never looks a name up: :func:`nlp_cv_tricks.runner.build_trainer` builds data,
    model, task and plug-ins from a recipe, or pass them yourself::

        trainer = Trainer(recipe, model=model, tokenizer=tok, train_dataset=train, eval_dataset=dev,
                          tricks=build_tricks(recipe.tricks), callbacks=build_callbacks(recipe.callbacks))
        result = trainer.fit()
    """

    def __init__(
        self,
        recipe: Recipe,
        model: torch.nn.Module,
        train_dataset,
        eval_dataset=None,
        tokenizer=None,
        task: Optional[Task] = None,
        tricks: Optional[list[Trick]] = None,
        callbacks: Optional[list[Callback]] = None,
        collate_fn=None,
        accelerator: Optional[Accelerator] = None,
        output_dir: Optional[str] = None,
        eval_collate_fn=None,
    ):
        # what the plug-ins see of the run: the loop keeps its counters there and hands it its objects
        self.state = TrainState(recipe=recipe, cfg=recipe.train)
        self.recipe = recipe
        self.cfg = recipe.train
        self.model = model
        self.tokenizer = tokenizer
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.task = task or ClassificationTask(
            [model.config.id2label[i] for i in range(len(model.config.id2label))] if hasattr(model, "config") else None
        )
        if tricks is None and callbacks is None and (recipe.tricks or recipe.callbacks):
            raise ValueError("Trainer takes ready plug-ins: pass tricks=nlp_cv_tricks.build_tricks(recipe.tricks) and "
                             "callbacks=nlp_cv_tricks.build_callbacks(recipe.callbacks), or build the whole run with "
                             "nlp_cv_tricks.build_trainer(recipe)")
        # every plug-in, in order (tricks act on the step, callbacks observe)
        self.tricks = list(tricks or []) + list(callbacks or [])
        self.collate_fn = collate_fn or self._default_collator()
        self.eval_collate_fn = eval_collate_fn or self.collate_fn
        # the default collator pads token columns per batch; such data can be served from pre-padded tensors
        self._default_collate = self.collate_fn if collate_fn is None else None
        self.accelerator = accelerator or make_accelerator(recipe, output_dir)
        self.output_dir = Path(output_dir or self.accelerator.project_dir
                               or recipe.output.dir.format(name=recipe.name, timestamp=datetime.now().strftime("%Y%m%d-%H%M%S")))
        self.history_path = self.output_dir / "history.jsonl"
        self.label_counts: Optional[list[int]] = None
        if "labels" in getattr(train_dataset, "column_names", []):
            n = len(getattr(self.task, "label_names", None) or [])
            counts = np.bincount(np.asarray(train_dataset["labels"][:]), minlength=n)
            self.label_counts = counts.tolist()
        self.state.metric_key, self.state.greater_is_better = self._metric_key(), self._greater_is_better()
        self.state.evaluate_fn = lambda dataset=None, prefix="eval": self.evaluate(dataset, prefix=prefix)
        self.state.record_output_fn = self.record_output

    # where the run is and what it trains live in the state the plug-ins read; these are its names on the Trainer
    model = _on_state("model")
    task = _on_state("task")
    accelerator = _on_state("accelerator")
    output_dir = _on_state("output_dir")
    history_path = _on_state("log_history")
    train_dataset = _on_state("train_dataset")
    eval_dataset = _on_state("eval_dataset")
    label_counts = _on_state("label_counts")
    tricks = _on_state("plugins", "every plug-in of the run, in order (tricks, then callbacks)")
    optimizer = _on_state("optimizer")
    scheduler = _on_state("scheduler")
    global_step = _on_state("global_step")
    best_metric = _on_state("best_metric")
    best_step = _on_state("best_step")
    bad_evals = _on_state("bad_evals")
    should_stop = _on_state("should_stop")
    metrics = _on_state("metrics")

    def _default_collator(self):
        from transformers import DataCollatorWithPadding

        if self.tokenizer is None:
            return None
        pad8 = self.cfg.mixed_precision != "no" and torch.cuda.is_available()
        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=8 if pad8 else None)

    # ---- the loss --------------------------------------------------------------------------------
    def criterion(self, outputs: Any, batch: dict, step: Optional[StepContext] = None) -> torch.Tensor:
        """The run's loss (through the ``loss_fn`` of a trick that replaces it): :meth:`TrainState.criterion`."""
        return self.state.criterion(outputs, batch, step)

    def _compute(self, step: StepContext):
        """The clean forward and loss of a micro-batch (what the tricks' ``forward_loss`` wrappers wrap)."""
        outputs = self.task.forward(self.model, step.batch)
        return self.criterion(outputs, step.batch, step), outputs

    # ---- data loaders ----------------------------------------------------------------------------
    def _loader_input(self, dataset, collate_fn):
        """``(dataset, collate_fn)`` for a DataLoader: the pre-padded tensor view of a token dataset when the
        default collator would pad it (``data.tensor_batches``; same batches, no per-row work), else as given."""
        if not self.recipe.data.tensor_batches or collate_fn is None or collate_fn is not self._default_collate:
            return dataset, collate_fn
        from ..data.batches import PaddedTokenDataset, identity_collate, tensor_batch_reason

        reason = tensor_batch_reason(dataset, self.tokenizer)
        if reason is None:
            try:
                return PaddedTokenDataset(dataset, self.tokenizer.pad_token_id,
                                          getattr(self.tokenizer, "pad_token_type_id", 0) or 0,
                                          getattr(collate_fn, "pad_to_multiple_of", None)), identity_collate
            except ValueError as e:
                reason = str(e)
        logger.info("batches padded per step by the collator (no tensor batches: %s)", reason)
        return dataset, collate_fn

    def _train_dataloader(self):
        cfg = self.cfg
        data, collate = self._loader_input(self.train_dataset, self.collate_fn)
        if self.recipe.data.group_by_length and "input_ids" in self.train_dataset.column_names:
            from ..data.text import LengthGroupedSampler

            # the tensor view knows its row lengths; otherwise read them from the dataset once
            lengths = (data.lengths.tolist() if hasattr(data, "lengths")
                       else [len(x) for x in self.train_dataset["input_ids"]])
            sampler = LengthGroupedSampler(lengths, cfg.batch_size * self.accelerator.num_processes, seed=cfg.seed)
            return torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, sampler=sampler,
                                               collate_fn=collate, num_workers=self.recipe.data.num_workers)
        return torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                           collate_fn=collate, num_workers=self.recipe.data.num_workers)

    def _eval_dataloader(self, dataset):
        data, collate = self._loader_input(dataset, self.eval_collate_fn)
        return torch.utils.data.DataLoader(data, batch_size=self.cfg.eval_batch_size, shuffle=False,
                                           collate_fn=collate, num_workers=self.recipe.data.num_workers)

    # ---- output ----------------------------------------------------------------------------------
    def _prepare_output_dir(self, resuming: bool) -> None:
        """The run directory and its manifest (``run_manifest``): ``output.overwrite=true`` removes only what a
        run of this package recorded there, never the recipe being trained from."""
        self._run_manifest = None
        refused = [None]
        if self.accelerator.is_main_process:
            try:
                self._run_manifest = prepare_run_dir(self.output_dir, resuming=resuming,
                                                     overwrite=self.recipe.output.overwrite,
                                                     recipe_source=self.recipe.source)
            except RunDirError as e:
                refused = [str(e)]
        if self.accelerator.num_processes > 1:  # every process stops with the message (none waits forever)
            broadcast_object_list(refused)
        if refused[0] is not None:
            raise RunDirError(refused[0])
        self.accelerator.wait_for_everyone()

    def record_output(self, rel: str, kind: str = "tree") -> None:
        """Record ``rel`` (relative to the run directory; ``file``, ``tree`` or ``dir``) in the run manifest
        before writing it, so ``output.overwrite=true`` removes it later. Tricks that write into the run
        directory call this too."""
        manifest = getattr(self, "_run_manifest", None)
        if manifest is not None:
            manifest.add(rel, kind)

    def _log(self, record: dict) -> None:
        record = {k: v for k, v in record.items() if v is not None}
        if self.accelerator.is_main_process:
            self.record_output("history.jsonl", "file")
            append_json_line(self.history_path, record, "the training history")
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k not in ("step",)}
        if self.accelerator.trackers:
            self.accelerator.log(scalars, step=record.get("step", self.global_step))

    # ---- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, dataset=None, prefix: str = "eval") -> dict:
        """Evaluate on ``dataset`` (default: the eval set) with ``gather_for_metrics``; returns prefixed metrics."""
        dl = self._eval_dl if dataset is None else self.accelerator.prepare(self._eval_dataloader(dataset))
        was_training = self.model.training
        self.model.eval()
        gathered = []
        for batch in dl:
            outputs = self.task.forward(self.model, batch)
            tensors = self.task.eval_outputs(outputs, batch)
            tensors = self.accelerator.gather_for_metrics(tensors)
            gathered.append(tuple(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t for t in tensors))
        if was_training:
            self.model.train()
        main = self.accelerator.is_main_process and getattr(self, "output_dir", None) is not None
        context = EvalContext(self.global_step, Path(self.output_dir) if main else None, self.record_output)
        metrics = self.task.compute_metrics(gathered, context)  # the task sees the step, not the Trainer
        return {f"{prefix}/{k}": v for k, v in metrics.items()}

    def _metric_key(self) -> str:
        return metric_key(self.cfg)

    def _greater_is_better(self) -> bool:
        return greater_is_better(self.cfg)

    def _after_eval(self, metrics: dict, epoch: float) -> None:
        for trick in self.tricks:
            trick.on_eval_end(self.state, metrics)
        self.metrics = metrics
        key = self._metric_key()
        value = metrics.get(key)
        if value is None:
            raise KeyError(f"train.metric={self.cfg.metric!r}: evaluation produced no {key!r} "
                           f"(available: {', '.join(k for k in metrics if isinstance(metrics[k], (int, float)))})")
        better = self.best_metric is None or (
            value > self.best_metric if self._greater_is_better() else value < self.best_metric
        )
        if better:
            self.best_metric, self.best_step, self.bad_evals = float(value), self.global_step, 0
            if self.recipe.output.save_best:
                self._keep_best(metrics)
        else:
            self.bad_evals += 1
            if self.cfg.early_stopping_patience and self.bad_evals >= self.cfg.early_stopping_patience:
                self.should_stop = True
        record = {"step": self.global_step, "epoch": round(epoch, 4), **{
            k: v for k, v in metrics.items() if not isinstance(v, (list, dict, str))}}
        record["best/" + key] = self.best_metric
        if self.should_stop:
            record["early_stop"] = 1
        self._log(record)
        if self.accelerator.is_main_process:
            logger.info("step %d: %s=%.4f (best %.4f at step %s)", self.global_step, key, value,
                        self.best_metric, self.best_step)

    # ---- saving ----------------------------------------------------------------------------------
    def _keep_best(self, metrics: dict) -> None:
        """A new best model. With checkpoints on (``train.save_steps``) or several processes, best/ is written at
        once, so a run that dies leaves the best model so far next to the checkpoint it resumes from. Without
        checkpoints (nothing to resume from anyway) the best weights are copied in memory and written once when
        training ends (or stops at a Ctrl-C or a non-finite loss), instead of one full model write per improvement; a run killed mid-way
        then leaves no best/ (and no partial one)."""
        if self.cfg.save_steps or self.accelerator.num_processes > 1:
            self.save_model(self.output_dir / "best", metrics)
            return
        before = (getattr(self, "_best_kept", None) or {}).get("state_dict")
        self._best_kept = {"state_dict": _cpu_copy(self.accelerator.get_state_dict(self.model), before),
                           "metrics": metrics, "step": self.global_step, "summary": self._training_summary()}

    def _write_kept_best(self, stopping: bool = False) -> None:
        """best/ from the weights :meth:`_keep_best` held in memory, if any. ``stopping`` (a Ctrl-C, a non-finite
        loss): a failed write or a second Ctrl-C is a warning, the stop goes on."""
        kept, self._best_kept = getattr(self, "_best_kept", None), None
        if kept is None:
            return
        if not stopping:
            self.save_model(self.output_dir / "best", kept["metrics"], snapshot=kept)
            return
        try:
            self.save_model(self.output_dir / "best", kept["metrics"], snapshot=kept)
        except (KeyboardInterrupt, WriteError) as e:
            logger.warning("the best model (step %s) was not written: %s", kept["step"], e or "interrupted")

    def save_model(self, directory: os.PathLike, metrics: Optional[dict] = None,
                   snapshot: Optional[dict] = None) -> None:
        """``save_pretrained`` (safetensors) + tokenizer + recipe + metrics, written to a temporary directory and
        swapped in, so a crash never leaves a half-written model where the previous one was. ``snapshot``: weights
        kept earlier (state_dict, step, summary) instead of the model's current ones."""
        directory = Path(directory)
        self.accelerator.wait_for_everyone()
        model = self.accelerator.unwrap_model(self.model)
        state_dict = snapshot["state_dict"] if snapshot else self.accelerator.get_state_dict(self.model)
        step = snapshot["step"] if snapshot else self.global_step
        summary = snapshot["summary"] if snapshot else self._training_summary()
        if self.accelerator.is_main_process:
            if directory.resolve().parent == self.output_dir.resolve():
                for name in (directory.name, directory.name + ".tmp", directory.name + ".old"):
                    self.record_output(name, "tree")
            def fill(tmp: Path) -> None:
                model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
                if self.tokenizer is not None:
                    self.tokenizer.save_pretrained(tmp)
                save_recipe(self.recipe, tmp / "recipe.yaml")
                # what the model card reports: how far training had got when these weights were saved
                atomic_write_text(tmp / "training_summary.json", json.dumps(summary, indent=2, default=json_default))
                if metrics is not None:
                    atomic_write_text(tmp / "eval_metrics.json", json.dumps(
                        {"step": step, **metrics}, indent=2, default=json_default))

            # a failed write (disk full, file too large) leaves the previous model in place
            replace_dir(directory, fill, f"the model (step {step})")
        self.accelerator.wait_for_everyone()

    def _training_summary(self) -> dict:
        """Facts of the saved weights: the optimizer step and the epochs it amounts to, and the run's plan."""
        per_epoch = getattr(self, "steps_per_epoch", None)
        try:
            examples = len(self.train_dataset)
        except TypeError:
            examples = None
        return {"step": self.global_step,
                "epoch": round(self.global_step / per_epoch, 4) if per_epoch else None,
                "steps_per_epoch": per_epoch, "planned_steps": getattr(self, "total_steps", None),
                "train_examples": examples, "batch_size": self.cfg.batch_size,
                "gradient_accumulation_steps": self.cfg.gradient_accumulation_steps,
                "num_processes": self.accelerator.num_processes}

    def _trainer_state(self, epoch: int, batches_in_epoch: int) -> dict:
        return {
            **self.state.checkpoint_fields(),  # global_step, best_metric, best_step, bad_evals
            "total_steps": getattr(self, "total_steps", None),
            "epoch": epoch,
            "batches_in_epoch": batches_in_epoch,
            "tricks": [{"name": t.name, "state": t.state_dict()} for t in self.tricks],
            # the running training-loss average of the current logging interval, so history stays exact
            "loss_sum": self._interval_loss[0],
            "loss_count": self._interval_loss[1],
            "lr_scheduler": scheduler_state(self.scheduler),  # plain numbers, read back without unpickling
            # what the run is trained with: a resume compares these with its own (engine/resume_check.py)
            "recipe": recipe_to_dict(self.recipe),
            "data_files": getattr(self, "_data_files", None) or {},
            "label_names": list(getattr(self.task, "label_names", None) or []) or None,
            "resume_changes": getattr(self, "_resume_changes", []),
        }

    def save_checkpoint(self, epoch: int, batches_in_epoch: int, loss_sum=None, loss_count: int = 0) -> Path:
        path = self.output_dir / "checkpoints" / f"step_{self.global_step}"
        total = float(self.accelerator.reduce(loss_sum, "sum")) if loss_sum is not None else 0.0
        self._interval_loss = (total, loss_count * self.accelerator.num_processes)
        if self.accelerator.is_main_process:
            self.record_output(f"checkpoints/{path.name}", "tree")
            remove_stale_temp_files(path)  # written again (after a resume): an interrupted save's leftovers go
        try:  # trainer_state.json is written last: a checkpoint without it is never resumed from
            with writing(path, "the checkpoint"):
                self.accelerator.save_state(str(path), safe_serialization=True)
                if self.accelerator.is_main_process:
                    atomic_write_text(path / "trainer_state.json", json.dumps(
                        self._trainer_state(epoch, batches_in_epoch), indent=2, default=json_default))
        except WriteError as e:
            if self.accelerator.is_main_process:
                shutil.rmtree(path, ignore_errors=True)  # the half-written checkpoint, to free the space it took
            raise WriteError(path, e.reason, e.what) from e
        limit = self.cfg.save_total_limit
        if limit and self.accelerator.is_main_process:
            for old in _list_checkpoints(self.output_dir)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return path

    def _resolve_resume(self) -> Optional[Path]:
        spec = self.cfg.resume_from
        if not spec:
            return None
        if spec == "latest":
            ckpts = _list_checkpoints(self.output_dir)
            if not ckpts:
                raise FileNotFoundError(f"train.resume_from=latest: no checkpoints under {self.output_dir / 'checkpoints'}")
            return ckpts[-1]
        path = Path(spec)
        if not (path / "trainer_state.json").is_file():
            raise FileNotFoundError(f"train.resume_from={spec!r} is not a checkpoint directory (no trainer_state.json)")
        return path

    # ---- the loop --------------------------------------------------------------------------------
    def _check_metric(self) -> None:
        """A mistyped ``train.metric`` is refused before anything is trained or written."""
        m = self.cfg.metric
        names = self.task.metric_names() if self.eval_dataset is not None else None
        name = m[len("eval/"):] if m.startswith("eval/") else m
        from ..config import RecipeError

        where = f"{self.recipe.source}: " if self.recipe.source else ""
        if names is not None and "/" in m and not m.startswith("eval/") and m in names:
            raise RecipeError(f"{where}train.metric={m!r}: a name with '/' is a full history key; did you mean "
                              f"'eval/{m}'?")
        if names is None or name in names or ("/" in m and not m.startswith("eval/")):
            return

        near = [n for n in sorted(names) if n.startswith(name)][:1] or difflib.get_close_matches(name, sorted(names), n=1)
        raise RecipeError(f"{where}train.metric={m!r} is not a "
                          f"metric of this task" + (f"; did you mean {near[0]!r}?" if near else "")
                          + f" (choose from {', '.join(sorted(n for n in names if '/' not in n))})")

    def fit(self) -> FitResult:
        """Train under the recipe: check a resume, prepare, run the epochs, save the selected model. Each named
        step below is one stage; the order of the hooks inside a step is documented in :mod:`.events`."""
        self._check_metric()
        self.state.metric_key, self.state.greater_is_better = self._metric_key(), self._greater_is_better()
        self._lock_run_dir()  # held until fit returns or raises: no second training, resume or overwrite here
        self._interrupt = InterruptGuard(enabled=bool(self.cfg.save_steps) and self.accelerator.num_processes == 1)
        try:
            with self._interrupt:
                resume_path, resume_change = self._check_resume()  # before anything is touched
                self._prepare_output_dir(resuming=resume_path is not None)
                loop = self._prepare()
                if resume_path is not None:
                    self._restore(loop, resume_path, resume_change)
                self._start(loop, resuming=resume_path is not None)
                for epoch in range(loop.start_epoch, loop.num_epochs):
                    if loop.done or self.should_stop:
                        break
                    self._train_epoch(loop, epoch)
                return self._finish(loop)
        except TrainingInterrupted as e:
            e.main_process = self.accelerator.is_main_process
            raise
        except KeyboardInterrupt:  # a second Ctrl-C, or the first without checkpoints: stopped at once
            self._write_kept_best(stopping=True)  # the best model so far (runs without checkpoints)
            raise TrainingInterrupted(self.output_dir, self.global_step, getattr(self, "total_steps", None),
                                      saved_now=False, main_process=self.accelerator.is_main_process) from None
        except WriteError as e:
            raise TrainingWriteError(e, self.output_dir) from e
        except NonFiniteLossError:  # the best model before the loss went bad is kept (runs without checkpoints)
            self._write_kept_best(stopping=True)
            raise
        finally:
            self._interrupt = None
            if self._run_lock is not None:
                self._run_lock.release()
                self._run_lock = None

    def _lock_run_dir(self) -> None:
        """The run directory's lock (:mod:`.run_lock`), taken by the main process; a folder another training
        holds stops every process with the holder named."""
        self._run_lock = None
        refused = [None]
        if self.accelerator.is_main_process:
            try:
                self._run_lock = RunLock(self.output_dir, "training").acquire()
            except RunLockedError as e:
                refused = [str(e)]
        if self.accelerator.num_processes > 1:
            broadcast_object_list(refused)
        if refused[0] is not None:
            raise RunLockedError(refused[0])

    # ---- the stages of fit() -------------------------------------------------------------------------
    def _check_resume(self):
        """The checkpoint to resume from (or None) and, when resuming, the check that its recipe, data and labels
        are the current ones (:func:`.resume_check.check_resume`: refused changes raise, safe ones are noted)."""
        resume_path = self._resolve_resume()
        self._data_files = data_fingerprint(self.recipe)  # content hashes, saved with each checkpoint
        self._resume_changes: list = []
        resume_change = None
        if resume_path is not None:
            resume_change = check_resume(self.recipe, resume_path,
                                         json.loads((resume_path / "trainer_state.json").read_text()),
                                         getattr(self.task, "label_names", None), self._data_files, self.output_dir)
        return resume_path, resume_change

    def _prepare(self) -> "_Loop":
        """Seed, data loaders, optimizer, ``accelerator.prepare``, the step plan and the schedule."""
        acc, cfg = self.accelerator, self.cfg
        set_seed(cfg.seed)
        train_dl = self._train_dataloader()
        eval_dl = self._eval_dataloader(self.eval_dataset) if self.eval_dataset is not None else None
        optimizer = build_optimizer(self.model, cfg)
        if eval_dl is not None:
            self.model, optimizer, train_dl, self._eval_dl = acc.prepare(self.model, optimizer, train_dl, eval_dl)
        else:
            self.model, optimizer, train_dl = acc.prepare(self.model, optimizer, train_dl)
            self._eval_dl = None
        self.optimizer = optimizer
        steps_per_epoch = math.ceil(len(train_dl) / cfg.gradient_accumulation_steps)
        total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
        num_epochs = math.ceil(total_steps / steps_per_epoch) if cfg.max_steps else cfg.epochs
        # not registered with accelerator.register_for_checkpointing: its state goes into trainer_state.json
        self.scheduler = build_scheduler(optimizer, cfg, total_steps)
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        # weight constraints of the model (e.g. Kim 2014's max-norm on TextCNN's classifier), after each update
        constrain = getattr(acc.unwrap_model(self.model), "apply_weight_constraints", None)
        return _Loop(train_dl=train_dl, optimizer=optimizer, total_steps=total_steps, num_epochs=num_epochs,
                     constrain=constrain)

    def _restore(self, loop: "_Loop", resume_path: Path, resume_change: Optional[dict]) -> None:
        """Model, optimizer, scheduler and RNG states from the checkpoint; the position in the epoch, the running
        loss of the logging interval, the best metric and the plug-ins' states from ``trainer_state.json``."""
        acc, cfg = self.accelerator, self.cfg
        try:  # an earlier version's pickled scheduler file is left unread (engine/checkpoint.py)
            with without_pickled_objects(resume_path) as readable:
                acc.load_state(str(readable), load_kwargs={"weights_only": True})  # optimizer.bin: tensors only
        except (RuntimeError, ValueError) as e:  # e.g. size mismatch: the model built now is not the checkpoint's
            if not any(m in str(e) for m in ("state_dict", "size mismatch", "parameter group")):
                raise
            raise load_error(resume_path, e) from None
        state = json.loads((resume_path / "trainer_state.json").read_text())
        self._resume_changes = list(state.get("resume_changes", [])) + ([resume_change] if resume_change else [])
        if resume_change and acc.is_main_process:
            self.record_output(RESUME_CHANGES_FILE, "file")
            with open(self.output_dir / RESUME_CHANGES_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(resume_change, default=json_default, ensure_ascii=False) + "\n")
        self.state.load_checkpoint_fields(state)
        self._restore_scheduler(state)
        loop.start_epoch, loop.skip_batches = state["epoch"], state["batches_in_epoch"]
        loop.resumed_loss = (state.get("loss_sum", 0.0), state.get("loss_count", 0))
        before = state.get("total_steps")
        if before and before != loop.total_steps and acc.is_main_process and cfg.lr_scheduler not in (
                "constant", "constant_with_warmup"):
            logger.warning("resuming a run planned for %d steps as one of %d: the %s learning-rate schedule "
                           "is recomputed for %d steps (the rate at step %d changes)", before, loop.total_steps,
                           cfg.lr_scheduler, loop.total_steps, self.global_step)
        for trick, saved in zip(self.tricks, state.get("tricks", [])):
            # files a trick kept next to the checkpoint are found from where the checkpoint is now
            trick.load_state_dict({**saved.get("state", {}), "_checkpoint_dir": str(resume_path)})
        if loop.skip_batches >= len(loop.train_dl):
            loop.start_epoch, loop.skip_batches = loop.start_epoch + 1, 0
        loop.rng_after_load = _rng_state()
        self._truncate_history(self.global_step)
        if acc.is_main_process:
            logger.info("resumed from %s at step %d (epoch %d, batch %d)", resume_path, self.global_step,
                        loop.start_epoch, loop.skip_batches)

    def _restore_scheduler(self, state: dict) -> None:
        """The LR schedule's position from ``trainer_state.json``. A checkpoint of an earlier version kept it only
        in the pickled ``custom_checkpoint_0.pkl``, which Accelerate reads with ``weights_only=False`` (a tampered
        file could run code): it is not read; the state is computed from the step count and the optimizer's
        restored rates instead (a ``LambdaLR``'s state is a function of its step count), which is the same."""
        saved = state.get("lr_scheduler")
        if saved is not None:
            load_scheduler_state(self.scheduler, saved)
            return
        n = rebuild_scheduler_state(self.scheduler, self.optimizer, self.global_step)
        if n != self.global_step and self.accelerator.is_main_process:
            logger.info("checkpoint of an earlier version: the learning-rate schedule resumes at step %d of %d "
                        "(optimizer steps skipped before the checkpoint)", n, self.global_step)

    def _start(self, loop: "_Loop", resuming: bool) -> None:
        """The plug-ins' ``on_fit_start``, the run's first files, the trackers, the progress display and the
        running loss of the logging interval."""
        acc = self.accelerator
        for trick in self.tricks:
            trick.on_fit_start(self.state)
        # the run's first files: a run that failed while starting left the directory empty, so the corrected
        # command can use it again. A resumed run keeps the recipe.yaml the run started with (its changes are in
        # resume_changes.jsonl)
        if acc.is_main_process and (not resuming or not (self.output_dir / "recipe.yaml").is_file()):
            self.record_output("recipe.yaml", "file")
            save_recipe(self.recipe, self.output_dir / "recipe.yaml")
        if not acc.trackers and acc.log_with:
            if acc.is_main_process:
                self.record_output("logs/nlp-cv-tricks", "tree")
            flat = flat_recipe(self.recipe)
            acc.init_trackers("nlp-cv-tricks", config={k: v for k, v in flat.items()
                                                       if isinstance(v, (int, float, str, bool))})
        loop.bar = Progress(total=loop.total_steps, initial=self.global_step, desc="train", unit="step",
                            enabled=acc.is_local_main_process and self.cfg.progress_bar)
        loop.t0 = time.perf_counter()
        n_proc = acc.num_processes
        loop.loss_sum = torch.full((), loop.resumed_loss[0] / n_proc, device=acc.device)
        loop.loss_count = loop.resumed_loss[1] // n_proc
        loop.epoch, loop.batches_in_epoch = loop.start_epoch, loop.skip_batches
        self.state.epoch = loop.start_epoch + loop.skip_batches / max(len(loop.train_dl), 1)
        loop.first_step = self.global_step
        self.model.train()
        loop.done = self.global_step >= loop.total_steps

    def _train_epoch(self, loop: "_Loop", epoch: int) -> None:
        """One epoch (the rest of it when resuming), then its evaluation and the plug-ins' ``on_epoch_end``."""
        acc, cfg = self.accelerator, self.cfg
        loop.epoch = epoch
        loop.train_dl.set_epoch(epoch)
        from ..data.vision import set_augmentation_epoch

        # seeded image augmentation draws from (seed, epoch, example); accelerate's set_epoch above reaches the
        # dataset only when the sampler takes no epoch, so the epoch is given to it here
        set_augmentation_epoch(loop.train_dl.dataset, epoch)
        dl = loop.train_dl
        loop.batches_in_epoch = 0
        if epoch == loop.start_epoch and loop.skip_batches:
            dl = acc.skip_first_batches(loop.train_dl, loop.skip_batches)
            loop.batches_in_epoch = loop.skip_batches
        for batch in dl:
            if loop.rng_after_load is not None:  # starting the skipping iterator consumed random numbers
                _set_rng_state(loop.rng_after_load)
                loop.rng_after_load = None
            loop.batches_in_epoch += 1
            self._micro_batch(loop, batch)
            if not acc.sync_gradients:
                continue
            if self._after_optimizer_step(loop):
                loop.done = True
                break
        else:
            # the epoch ran to its end
            if self._eval_dl is not None and cfg.eval_each_epoch and not (
                cfg.eval_steps and self.global_step % cfg.eval_steps == 0):
                self._after_eval(self.evaluate(), epoch + 1)
            for trick in self.tricks:
                trick.on_epoch_end(self.state, epoch)
            return
        # stopped inside the epoch (max_steps or early stopping): evaluate the final state if not yet done
        if self._eval_dl is not None and not (cfg.eval_steps and self.global_step % cfg.eval_steps == 0) \
                and not self.should_stop and cfg.eval_each_epoch:
            self._after_eval(self.evaluate(), epoch + loop.batches_in_epoch / len(loop.train_dl))
        for trick in self.tricks:
            trick.on_epoch_end(self.state, epoch)

    def _micro_batch(self, loop: "_Loop", batch: dict) -> None:
        """Forward, loss and backward of one micro-batch with the tricks' passes, inside one accumulation block;
        at the block's end clipping and the optimizer step."""
        acc, cfg = self.accelerator, self.cfg
        with acc.accumulate(self.model):
            step = StepContext(self.state, batch, self.global_step, acc.sync_gradients)
            finite = run_passes(step, self.tricks, lambda: self._compute(step),
                                check=lambda loss: self._check_finite(loss, loop.epoch, loop.batches_in_epoch))
            if finite:
                loop.loss_sum += step.loss.detach().float()
                loop.loss_count += 1
            else:
                loop.skipped += 1
                loop.optimizer.zero_grad(set_to_none=True)
            if acc.sync_gradients:
                if finite and cfg.max_grad_norm:
                    loop.grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                for trick in self.tricks:
                    trick.before_optimizer_step(step)
                if finite:
                    loop.optimizer.step()
                    if not acc.optimizer_step_was_skipped:
                        self.scheduler.step()
                        if loop.constrain is not None:
                            loop.constrain()
                loop.optimizer.zero_grad(set_to_none=True)
                for trick in self.tricks:
                    trick.after_optimizer_step(step)
            for k, v in step.logs.items():  # once per micro-batch, after all of its hooks
                loop.trick_logs.setdefault(k, []).append(v)

    def _after_optimizer_step(self, loop: "_Loop") -> bool:
        """Count the step; log, evaluate and checkpoint on their intervals. True when the run is to stop."""
        cfg = self.cfg
        self.global_step += 1
        loop.bar.update(1)
        epoch_progress = loop.epoch + loop.batches_in_epoch / len(loop.train_dl)
        self.state.epoch = epoch_progress
        if self.global_step % cfg.logging_steps == 0 or self.global_step == loop.total_steps:
            self._log_interval(loop, epoch_progress)
        if self._eval_dl is not None and cfg.eval_steps and self.global_step % cfg.eval_steps == 0:
            self._after_eval(self.evaluate(), epoch_progress)
        if cfg.save_steps and self.global_step % cfg.save_steps == 0:
            self.save_checkpoint(loop.epoch, loop.batches_in_epoch, loop.loss_sum, loop.loss_count)
        guard = getattr(self, "_interrupt", None)
        if guard is not None and guard.requested:  # Ctrl-C: a checkpoint at this step, then stop
            if self.global_step % cfg.save_steps:
                self.save_checkpoint(loop.epoch, loop.batches_in_epoch, loop.loss_sum, loop.loss_count)
            raise TrainingInterrupted(self.output_dir, self.global_step, loop.total_steps, saved_now=True)
        return self.global_step >= loop.total_steps or self.should_stop

    def _log_interval(self, loop: "_Loop", epoch_progress: float) -> None:
        """One history row: the mean loss of the interval (over processes), the rate, the gradient norm and the
        tricks' logged values; the interval restarts."""
        acc = self.accelerator
        mean_loss = acc.reduce(loop.loss_sum / max(loop.loss_count, 1), "mean").item() if loop.loss_count \
            else float("nan")
        record = {"step": self.global_step, "epoch": round(epoch_progress, 4), "train/loss": mean_loss,
                  "train/lr": self.scheduler.get_last_lr()[0],
                  "train/grad_norm": float(loop.grad_norm) if loop.grad_norm is not None else None,
                  "train/skipped_nonfinite": loop.skipped or None,
                  "train/seconds": round(time.perf_counter() - loop.t0, 3)}
        record.update({f"train/{k}": float(np.mean(v)) for k, v in loop.trick_logs.items()})
        self._log(record)
        loop.bar.set_postfix(loss=f"{mean_loss:.4f}")
        loop.loss_sum.zero_()
        loop.loss_count, loop.trick_logs = 0, {}

    def _finish(self, loop: "_Loop") -> FitResult:
        """The last checkpoint, the plug-ins' ``on_fit_end``, the model (best, else final), ``metrics.json``, the
        trackers and the end-of-run report."""
        acc, cfg = self.accelerator, self.cfg
        loop.bar.close()
        train_seconds = time.perf_counter() - loop.t0
        if cfg.save_steps and self.global_step % cfg.save_steps and self.global_step > loop.first_step:
            # the last step too (not only every save_steps): a run extended later resumes from its end
            self.save_checkpoint(loop.epoch, loop.batches_in_epoch, loop.loss_sum, loop.loss_count)
        for trick in self.tricks:
            trick.on_fit_end(self.state)
        self._write_kept_best()
        model_dir = self.output_dir / "best"
        acc.wait_for_everyone()
        if not (self.recipe.output.save_best and self.best_step is not None and model_dir.is_dir()):
            # nothing was selected (no evaluation, or selection off): the final weights are the model
            model_dir = self.output_dir / "final"
            self.save_model(model_dir, self.metrics or None)
        summary = {
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "metric": self._metric_key(),
            "train_seconds": round(train_seconds, 2),
            "distributed_type": getattr(acc.distributed_type, "value", str(acc.distributed_type)),
            "num_processes": acc.num_processes,
            "mixed_precision": acc.mixed_precision,
            "stopped_early": self.should_stop,
            "last_eval": {k: v for k, v in self.metrics.items() if not isinstance(v, (list, dict))},
            "model_dir": str(model_dir),
        }
        if acc.is_main_process:
            self.record_output("metrics.json", "file")
            atomic_write_text(self.output_dir / "metrics.json", json.dumps(summary, indent=2, default=json_default))
        acc.wait_for_everyone()
        for tracker in acc.trackers:  # finish trackers; the process group stays up for further runs
            tracker.finish()
        result = FitResult(str(self.output_dir), str(model_dir), self.best_metric, self.best_step, self.global_step,
                           self.metrics, train_seconds, self.should_stop)
        for plugin in self.tricks:  # e.g. the end-of-run report (a callback the runner adds)
            plugin.on_run_end(self.state, result)
        return result

    def _check_finite(self, loss: torch.Tensor, epoch: int, batch_index: int) -> bool:
        bad = ~torch.isfinite(loss.detach())
        if self.cfg.nonfinite == "skip" and self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad.float(), "sum") > 0  # all processes skip together
        if not bool(bad):
            return True
        where = f"step {self.global_step + 1} (epoch {epoch}, batch {batch_index})"
        if self.cfg.nonfinite == "skip":
            logger.warning("non-finite loss %s at %s: step skipped", loss.item(), where)
            return False
        raise NonFiniteLossError(
            f"loss is {loss.item()} at {where}; training stopped. Lower train.learning_rate, enable "
            "train.max_grad_norm, check the data, or set train.nonfinite=skip to skip such steps")

    def _truncate_history(self, step: int) -> None:
        if not self.accelerator.is_main_process or not self.history_path.exists():
            return
        keep = [ln for ln in self.history_path.read_text(encoding="utf-8").splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(self.history_path, "".join(ln + "\n" for ln in keep))


def _cpu_copy(state_dict: dict, into: Optional[dict] = None) -> dict:
    """A CPU copy of a state dict; entries that are the same tensor (tied weights) stay one tensor. ``into``: an
    earlier copy whose tensors are overwritten where the shape and dtype match (no new 100 MB allocation each time)."""
    out, seen = {}, {}
    for k, v in state_dict.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), v.stride(), v.dtype)
        if key not in seen:
            old = (into or {}).get(k)
            if old is not None and old.shape == v.shape and old.dtype == v.dtype and all(
                    old is not t for t in seen.values()):
                seen[key] = old.copy_(v.detach())
            else:
                seen[key] = v.detach().to("cpu", copy=True)
        out[k] = seen[key]
    return out


def _list_checkpoints(output_dir: Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := re.fullmatch(r"step_(\d+)", p.name))
             and (p / "trainer_state.json").is_file()]
    return [p for _, p in sorted(found)]

