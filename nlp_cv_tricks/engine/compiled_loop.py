"""The training loop for a model whose steps are one compiled call over numpy arrays (the FastText kernels of
:mod:`nlp_cv_tricks.models.fasttext_kernels`): no torch, no Accelerate, no per-step Python.

It keeps the trainer's contract for the run directory, so a run looks the same whichever loop trained it: the
lock and the manifest (``output.overwrite`` removes only what a run wrote), ``recipe.yaml``, ``history.jsonl``
with the same rows (the mean loss and the rate every ``logging_steps``, the evaluation of each epoch with the best
so far), best/ written whole at the end (or at a Ctrl-C, or before a non-finite loss stops the run), the final
weights in ``final/`` when nothing was selected, ``metrics.json``, TensorBoard scalars when ``output.report_to``
asks for them, and the same one-sentence errors for a failed write or a Ctrl-C. The recipe options it runs are
what :func:`compiled_loop_reasons` accepts; the runner falls back to the trainer for any other.

The model is a ready object (:class:`CompiledModel`); the runner builds it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from ..config import Recipe, TrainConfig, flat_recipe, save_recipe
from ..metrics.classification import METRIC_NAMES, classification_metrics
from ..utils.io import WriteError, append_json_line, atomic_write_text, json_default, replace_dir
from ..utils.progress import Progress
from .result import FitResult, NonFiniteLossError, greater_is_better, metric_key
from .run_lock import RunLock
from .run_manifest import prepare_run_dir
from .run_stop import TrainingInterrupted, TrainingWriteError

__all__ = ["CompiledModel", "CompiledLoop", "compiled_loop_reasons", "schedule_factors", "SCHEDULES"]

logger = logging.getLogger(__name__)

# the train options the loop runs as the trainer does; any other option must keep its default
_RUNS = {"seed", "epochs", "max_steps", "batch_size", "eval_batch_size", "optimizer", "learning_rate", "momentum",
         "weight_decay", "lr_scheduler", "warmup_ratio", "warmup_steps", "max_grad_norm", "logging_steps",
         "eval_each_epoch", "metric", "greater_is_better", "early_stopping_patience", "save_total_limit", "cpu",
         "progress_bar", "engine", "resume_force"}
SCHEDULES = ("linear", "constant", "constant_with_warmup", "cosine")


class CompiledModel(Protocol):
    """What the loop trains: ``train_steps`` runs SGD steps in place (batches of ``order`` from ``start``, step
    ``k`` at rate ``lrs[k]``, each step's mean loss into ``losses``; returns the steps done, fewer when a loss is
    not finite), ``eval_logits`` scores the dev texts, ``snapshot`` copies the weights (into an earlier copy when
    given), ``write(directory, weights)`` writes a loadable model (weights, config, code, tokenizer);
    ``weights`` are the arrays being trained."""

    num_train: int
    weights: dict

    def train_steps(self, order: np.ndarray, start: int, batch_size: int, lrs: np.ndarray,
                    losses: np.ndarray) -> int: ...

    def eval_logits(self) -> np.ndarray: ...

    def snapshot(self, into: Optional[dict] = None) -> dict: ...

    def write(self, directory: Path, weights: dict) -> None: ...


def compiled_loop_reasons(recipe: Recipe) -> list[str]:
    """Why the compiled loop cannot run ``recipe``'s training as the trainer would (empty: it can)."""
    cfg, out = recipe.train, []
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name not in _RUNS and getattr(cfg, f.name) != getattr(defaults, f.name):
            out.append(f"train.{f.name}={getattr(cfg, f.name)!r}")
    if cfg.optimizer != "sgd":
        out.append(f"train.optimizer={cfg.optimizer!r} (it runs sgd)")
    if cfg.momentum:
        out.append(f"train.momentum={cfg.momentum} (it runs plain SGD)")
    if cfg.weight_decay:
        out.append(f"train.weight_decay={cfg.weight_decay}")
    if cfg.max_grad_norm:
        out.append(f"train.max_grad_norm={cfg.max_grad_norm}")
    if cfg.lr_scheduler not in SCHEDULES:
        out.append(f"train.lr_scheduler={cfg.lr_scheduler!r} (it runs {', '.join(SCHEDULES)})")
    metric = cfg.metric[len("eval/"):] if cfg.metric.startswith("eval/") else cfg.metric
    if metric not in METRIC_NAMES:  # per-class metrics and mistyped names: the trainer checks them against the labels
        out.append(f"train.metric={cfg.metric!r}")
    if recipe.data.group_by_length:  # the trainer's batches are then grouped by length
        out.append("data.group_by_length")
    if recipe.tricks:
        out.append("tricks")
    if recipe.callbacks:
        out.append("callbacks")
    if recipe.output.report_to not in ("none", "tensorboard"):
        out.append(f"output.report_to={recipe.output.report_to!r}")
    return out


def schedule_factors(name: str, warmup: int, total: int, steps: np.ndarray) -> np.ndarray:
    """The learning-rate factor at each of ``steps`` (0-based optimizer steps): the schedules of
    ``transformers.get_scheduler`` (cosine with half a cycle), as numbers."""
    s = np.asarray(steps, dtype=np.float64)
    warm = s / max(1, warmup)
    if name == "constant":
        return np.ones_like(s)
    if name == "constant_with_warmup":
        return np.where(s < warmup, warm, 1.0)
    if name == "linear":
        return np.where(s < warmup, warm, np.maximum(0.0, (total - s) / max(1, total - warmup)))
    if name == "cosine":
        progress = (s - warmup) / max(1, total - warmup)
        return np.where(s < warmup, warm, np.maximum(0.0, 0.5 * (1.0 + np.cos(math.pi * 2.0 * 0.5 * progress))))
    raise ValueError(f"schedule {name!r}: the compiled loop runs {', '.join(SCHEDULES)}")


def _eval_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy (float64)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


class CompiledLoop:
    """Train a :class:`CompiledModel` under ``recipe`` into ``output_dir``. ``eval_labels``: the dev labels (None:
    no evaluation, the final weights are the model); ``label_names`` name the classes in the metrics;
    ``end_hooks``: called as ``hook(record_output, output_dir, result)`` after ``metrics.json`` (the end-of-run
    report); ``imports_done``: waits for modules imported in another thread while the loop trains (called before
    anything is saved: two threads importing one module at once can see it half-initialised)."""

    def __init__(self, recipe: Recipe, model: CompiledModel, output_dir: str, eval_labels: Optional[np.ndarray],
                 label_names: Sequence[str], end_hooks: Sequence[Callable] = (),
                 imports_done: Callable[[], None] = lambda: None):
        self.recipe, self.cfg, self.model = recipe, recipe.train, model
        self.output_dir = Path(output_dir)
        self.eval_labels = None if eval_labels is None else np.asarray(eval_labels, dtype=np.int64)
        self.label_names = list(label_names)
        self.end_hooks = list(end_hooks)
        self.imports_done = imports_done
        self.metric_key, self.greater_is_better = metric_key(self.cfg), greater_is_better(self.cfg)
        self.history_path = self.output_dir / "history.jsonl"
        self.global_step, self.best_metric, self.best_step, self.bad_evals = 0, None, None, 0
        self.should_stop, self.metrics = False, {}
        self._manifest, self._kept = None, None

    # ---- the run directory -------------------------------------------------------------------------------------
    def record_output(self, rel: str, kind: str = "tree") -> None:
        if self._manifest is not None:
            self._manifest.add(rel, kind)

    def _log(self, record: dict) -> None:
        record = {k: v for k, v in record.items() if v is not None}
        self.record_output("history.jsonl", "file")
        append_json_line(self.history_path, record, "the training history")
        self._rows.append(record)

    def _summary(self) -> dict:
        per_epoch, total = self.steps_per_epoch, self.total_steps
        return {"step": self.global_step, "epoch": round(self.global_step / per_epoch, 4) if per_epoch else None,
                "steps_per_epoch": per_epoch, "planned_steps": total, "train_examples": self.model.num_train,
                "batch_size": self.cfg.batch_size, "gradient_accumulation_steps": 1, "num_processes": 1}

    def _save(self, directory: Path, weights: dict, metrics: Optional[dict], step: int, summary: dict) -> None:
        self.imports_done()
        for name in (directory.name, directory.name + ".tmp", directory.name + ".old"):
            self.record_output(name, "tree")

        def fill(tmp: Path) -> None:
            self.model.write(tmp, weights)
            save_recipe(self.recipe, tmp / "recipe.yaml")
            atomic_write_text(tmp / "training_summary.json", json.dumps(summary, indent=2, default=json_default))
            if metrics is not None:
                atomic_write_text(tmp / "eval_metrics.json", json.dumps({"step": step, **metrics}, indent=2,
                                                                        default=json_default))

        replace_dir(directory, fill, f"the model (step {step})")

    def _write_kept_best(self, stopping: bool = False) -> None:
        kept, self._kept = self._kept, None
        if kept is None:
            return
        try:
            self._save(self.output_dir / "best", kept["weights"], kept["metrics"], kept["step"], kept["summary"])
        except (KeyboardInterrupt, WriteError) as e:
            if not stopping:
                raise
            logger.warning("the best model (step %s) was not written: %s", kept["step"], e or "interrupted")

    # ---- evaluation --------------------------------------------------------------------------------------------
    def evaluate(self) -> dict:
        logits = self.model.eval_logits()
        out = classification_metrics(logits, self.eval_labels, self.label_names)
        out["loss"] = _eval_loss(logits, self.eval_labels)
        return {f"eval/{k}": v for k, v in out.items()}

    def _after_eval(self, metrics: dict, epoch: float) -> None:
        self.metrics = metrics
        value = metrics.get(self.metric_key)
        if value is None:
            raise KeyError(f"train.metric={self.cfg.metric!r}: evaluation produced no {self.metric_key!r} "
                           f"(available: {', '.join(k for k in metrics if isinstance(metrics[k], (int, float)))})")
        better = self.best_metric is None or (value > self.best_metric if self.greater_is_better
                                              else value < self.best_metric)
        if better:
            self.best_metric, self.best_step, self.bad_evals = float(value), self.global_step, 0
            if self.recipe.output.save_best:
                # at the last step the weights change no more: they are kept as they are, without a copy
                last = self.global_step >= self.total_steps
                weights = self.model.weights if last else self.model.snapshot((self._kept or {}).get("weights"))
                self._kept = {"weights": weights, "metrics": metrics, "step": self.global_step,
                              "summary": self._summary()}
        else:
            self.bad_evals += 1
            if self.cfg.early_stopping_patience and self.bad_evals >= self.cfg.early_stopping_patience:
                self.should_stop = True
        record = {"step": self.global_step, "epoch": round(epoch, 4),
                  **{k: v for k, v in metrics.items() if not isinstance(v, (list, dict, str))}}
        record["best/" + self.metric_key] = self.best_metric
        if self.should_stop:
            record["early_stop"] = 1
        self._log(record)
        logger.info("step %d: %s=%.4f (best %.4f at step %s)", self.global_step, self.metric_key, value,
                    self.best_metric, self.best_step)

    # ---- the loop ----------------------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        lock = RunLock(self.output_dir, "training").acquire()
        try:
            try:
                return self._fit()
            except KeyboardInterrupt:  # stopped at once (no checkpoints): the best model so far is written
                self._write_kept_best(stopping=True)
                raise TrainingInterrupted(self.output_dir, self.global_step, getattr(self, "total_steps", None),
                                          saved_now=False) from None
            except NonFiniteLossError:
                self._write_kept_best(stopping=True)
                raise
        except WriteError as e:
            if isinstance(e, TrainingWriteError):
                raise
            raise TrainingWriteError(e, self.output_dir) from e
        finally:
            lock.release()

    def _fit(self) -> FitResult:
        cfg = self.cfg
        self._manifest = prepare_run_dir(self.output_dir, resuming=False, overwrite=self.recipe.output.overwrite,
                                         recipe_source=self.recipe.source)
        self._rows: list[dict] = []
        n = self.model.num_train
        self.steps_per_epoch = per_epoch = math.ceil(n / cfg.batch_size)
        self.total_steps = total = cfg.max_steps or per_epoch * cfg.epochs
        num_epochs = math.ceil(total / per_epoch) if cfg.max_steps else cfg.epochs
        warmup = cfg.warmup_steps or int(math.ceil(cfg.warmup_ratio * total))
        rates = cfg.learning_rate * schedule_factors(cfg.lr_scheduler, warmup, total, np.arange(total + 1))
        self.record_output("recipe.yaml", "file")
        save_recipe(self.recipe, self.output_dir / "recipe.yaml")
        rng = np.random.default_rng(cfg.seed)
        bar = Progress(total=total, desc="train", unit="step", enabled=cfg.progress_bar)
        losses = np.zeros(per_epoch, dtype=np.float64)
        t0 = time.perf_counter()
        interval = max(1, cfg.logging_steps)
        run_loss, run_count = 0.0, 0
        evaluating = self.eval_labels is not None and cfg.eval_each_epoch
        for epoch in range(num_epochs):
            if self.should_stop or self.global_step >= total:
                break
            order = rng.permutation(n).astype(np.int64)
            steps = min(per_epoch, total - self.global_step)
            done_in_epoch = 0
            while done_in_epoch < steps:
                # up to the next logging step: the interval's loss is logged exactly where the trainer logs it
                chunk = min(steps - done_in_epoch, interval - self.global_step % interval)
                first = self.global_step
                done = self.model.train_steps(order, done_in_epoch * cfg.batch_size, cfg.batch_size,
                                              rates[first:first + chunk], losses[:chunk])
                run_loss += float(losses[:done].sum())
                run_count += done
                self.global_step += done
                done_in_epoch += done
                bar.update(done)
                if done < chunk:
                    raise NonFiniteLossError(
                        f"loss is {losses[done]} at step {self.global_step + 1} (epoch {epoch}, batch "
                        f"{done_in_epoch + 1}); training stopped. Lower train.learning_rate, check the data, or "
                        "train with the trainer (train.engine=trainer) and train.max_grad_norm or "
                        "train.nonfinite=skip")
                if self.global_step % interval == 0 or self.global_step == total:
                    mean = run_loss / run_count if run_count else float("nan")
                    self._log({"step": self.global_step, "epoch": round(epoch + done_in_epoch / per_epoch, 4),
                               "train/loss": mean, "train/lr": float(rates[self.global_step]),
                               "train/seconds": round(time.perf_counter() - t0, 3)})
                    bar.set_postfix(loss=f"{mean:.4f}")
                    run_loss, run_count = 0.0, 0
            if evaluating:
                self._after_eval(self.evaluate(), epoch + done_in_epoch / per_epoch)
        bar.close()
        train_seconds = time.perf_counter() - t0
        return self._finish(train_seconds)

    def _finish(self, train_seconds: float) -> FitResult:
        self.imports_done()
        self._write_kept_best()
        model_dir = self.output_dir / "best"
        if not (self.recipe.output.save_best and self.best_step is not None and model_dir.is_dir()):
            model_dir = self.output_dir / "final"  # nothing was selected: the final weights are the model
            self._save(model_dir, self.model.snapshot(), self.metrics or None, self.global_step, self._summary())
        summary = {"global_step": self.global_step, "best_metric": self.best_metric, "best_step": self.best_step,
                   "metric": self.metric_key, "train_seconds": round(train_seconds, 2), "distributed_type": "NO",
                   "num_processes": 1, "mixed_precision": "no", "stopped_early": self.should_stop,
                   "last_eval": {k: v for k, v in self.metrics.items() if not isinstance(v, (list, dict))},
                   "model_dir": str(model_dir), "engine": "compiled"}
        self.record_output("metrics.json", "file")
        atomic_write_text(self.output_dir / "metrics.json", json.dumps(summary, indent=2, default=json_default))
        if self.recipe.output.report_to == "tensorboard":
            self._tensorboard()
        result = FitResult(str(self.output_dir), str(model_dir), self.best_metric, self.best_step, self.global_step,
                           self.metrics, train_seconds, self.should_stop)
        for hook in self.end_hooks:
            hook(self.record_output, self.output_dir, result)
        return result

    def _tensorboard(self) -> None:
        """The history's scalars as TensorBoard events under ``logs/nlp-cv-tricks`` (where the trainer's tracker
        writes them), when TensorBoard is installed."""
        from ..utils.tensorboard_events import write_scalars

        self.record_output("logs/nlp-cv-tricks", "tree")
        flat = {k: v for k, v in flat_recipe(self.recipe).items() if isinstance(v, (int, float, str, bool))}
        write_scalars(self.output_dir / "logs" / "nlp-cv-tricks", self._rows, flat)

