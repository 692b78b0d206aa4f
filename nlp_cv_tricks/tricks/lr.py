"""Learning-rate halving: on a plateau of the dev metric during training, and the halving values of the
learning-rate search (0.01, 0.005, 0.0025, ...; the search itself is ``nlp-cv-tricks lr-sweep``, see
:mod:`nlp_cv_tricks.ablate`).

Source: the practitioner's tip "search the learning rate from 0.01 downwards by halving"; plateau halving is
``torch.optim.lr_scheduler.ReduceLROnPlateau(factor=0.5)`` driven by the dev metric (as in Keras/PyTorch
practice). Expected effect: lets a run start high and keep improving after the dev metric stalls. Cost: none
(a few float updates after each evaluation).
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..engine.events import Trick

__all__ = ["halving_values", "is_improvement", "scale_lr_", "PlateauState", "LRHalving", "tracked_metric"]


def halving_values(start: float = 0.01, factor: float = 0.5, min_lr: float = 1e-7, max_values: int = 30):
    """``start, start*factor, start*factor**2, ...`` while ``>= min_lr`` (at most ``max_values``)."""
    if start <= 0 or not 0 < factor < 1:
        raise ValueError(f"halving needs start > 0 and 0 < factor < 1, got start={start}, factor={factor}")
    lr = float(start)
    for _ in range(max_values):
        if lr < min_lr:
            return
        yield lr
        lr *= factor


def is_improvement(value: float, best: Optional[float], mode: str = "max", threshold: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``threshold`` (absolute) in direction ``mode``."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best + threshold if mode == "max" else value < best - threshold


def _unwrap_optimizer(opt):
    return getattr(opt, "optimizer", opt)


def _unwrap_scheduler(sched):
    inner = getattr(sched, "scheduler", None)
    return inner if inner is not None else sched


def scale_lr_(optimizer, factor: float, scheduler=None, min_lr: float = 0.0) -> list[float]:
    """Multiply the learning rate of every param group by ``factor`` (not below ``min_lr``), in place, and the
    scheduler's ``base_lrs`` by the same ratio so that a LambdaLR-style schedule (warmup, linear decay) keeps
    the new level instead of overwriting it. Returns the new learning rates."""
    opt = _unwrap_optimizer(optimizer)
    sched = _unwrap_scheduler(scheduler) if scheduler is not None else None
    new = []
    for i, group in enumerate(opt.param_groups):
        old = float(group["lr"])
        lr = max(old * factor, min_lr)
        ratio = lr / old if old > 0 else 1.0
        group["lr"] = lr
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * ratio
        if sched is not None and hasattr(sched, "base_lrs") and i < len(sched.base_lrs):
            sched.base_lrs[i] = sched.base_lrs[i] * ratio
        new.append(lr)
    return new


class PlateauState:
    """Counts evaluations without improvement; ``update`` returns True when the LR should be halved."""

    def __init__(self, mode: str = "max", patience: int = 1, threshold: float = 0.0):
        self.mode, self.patience, self.threshold = mode, int(patience), float(threshold)
        self.best: Optional[float] = None
        self.bad = 0
        self.halvings = 0

    def update(self, value: float) -> bool:
        if is_improvement(value, self.best, self.mode, self.threshold):
            self.best, self.bad = float(value), 0
            return False
        self.bad += 1
        if self.bad >= self.patience:
            self.bad = 0
            self.halvings += 1
            return True
        return False


def tracked_metric(trainer) -> tuple[str, str]:
    """``(metric key, mode)`` the trainer tracks (``train.metric`` / ``train.greater_is_better``); falls back to
    ``("eval/accuracy", "max")``."""
    if isinstance(getattr(trainer, "metric_key", None), str):  # a TrainState
        return trainer.metric_key, ("max" if trainer.greater_is_better else "min")
    cfg = getattr(trainer, "config", None)
    train = getattr(cfg, "train", None)
    for src in (trainer, train, cfg):
        if src is None:
            continue
        name = getattr(src, "metric_for_best", None) or getattr(src, "metric", None)
        if isinstance(name, str) and name:
            gib = getattr(src, "greater_is_better", None)
            mode = getattr(src, "metric_mode", None) or (
                ("max" if gib else "min") if gib is not None else ("min" if "loss" in name else "max"))
            return (name if name.startswith("eval/") else f"eval/{name}"), mode
    return "eval/accuracy", "max"


class LRHalving(Trick):
    """Halve the learning rate when the dev metric has not improved for ``patience`` evaluations.

    Recipe key ``lr_halving``: ``start_lr`` (null: keep the recipe's LR; else every param group is scaled so
    the first group starts at it), ``factor`` (0.5), ``patience`` (1), ``metric`` (null: the trainer's tracked
    metric; e.g. ``accuracy``), ``mode`` (null: from the trainer, or ``max``/``min``), ``threshold`` (0.0,
    absolute), ``min_lr`` (1e-7). Logs ``lr_halvings``. See the module docstring for source and effect.
    """

    name = "lr_halving"

    def __init__(self, start_lr: Optional[float] = None, factor: float = 0.5, patience: int = 1,
                 metric: Optional[str] = None, mode: Optional[str] = None, threshold: float = 0.0,
                 min_lr: float = 1e-7):
        if start_lr is not None and float(start_lr) <= 0:
            raise ValueError(f"lr_halving.start_lr must be > 0, got {start_lr}")
        if not 0 < float(factor) < 1:
            raise ValueError(f"lr_halving.factor must be in (0, 1), got {factor}")
        if int(patience) < 1:
            raise ValueError(f"lr_halving.patience must be >= 1, got {patience}")
        if mode not in (None, "max", "min"):
            raise ValueError(f"lr_halving.mode must be 'max' or 'min', got {mode!r}")
        self.start_lr = None if start_lr is None else float(start_lr)
        self.factor, self.patience, self.metric, self.mode = float(factor), int(patience), metric, mode
        self.threshold, self.min_lr = float(threshold), float(min_lr)
        self.state = PlateauState(mode or "max", self.patience, self.threshold)
        self._key: Optional[str] = None

    @staticmethod
    def _scheduler(trainer):
        return getattr(trainer, "lr_scheduler", None) or getattr(trainer, "scheduler", None)

    def on_fit_start(self, trainer):
        key, mode = tracked_metric(trainer)
        if self.metric:
            key = self.metric if self.metric.startswith("eval/") else f"eval/{self.metric}"
            mode = self.mode or ("min" if "loss" in key else "max")
        names = trainer.task.metric_names() if getattr(trainer, "eval_dataset", None) is not None \
            and hasattr(getattr(trainer, "task", None), "metric_names") else None
        if names is not None and key.startswith("eval/") and key[len("eval/"):] not in names:
            import difflib

            near = difflib.get_close_matches(key[len("eval/"):], sorted(names), n=1)
            raise ValueError(f"lr_halving.metric={self.metric!r}: the evaluation has no {key!r}"
                             + (f"; did you mean {near[0]!r}?" if near else ""))
        self._key = key
        self.state.mode = self.mode or mode
        if self.start_lr is not None and getattr(trainer, "global_step", 0) == 0:
            first = float(_unwrap_optimizer(trainer.optimizer).param_groups[0]["lr"])
            if first > 0:
                scale_lr_(trainer.optimizer, self.start_lr / first, self._scheduler(trainer))

    def on_eval_end(self, trainer, metrics: dict):
        key = self._key or tracked_metric(trainer)[0]
        if key not in metrics:
            raise KeyError(f"lr_halving: metric {key!r} not in the evaluation metrics {sorted(metrics)}")
        if self.state.update(float(metrics[key])):
            scale_lr_(trainer.optimizer, self.factor, self._scheduler(trainer), self.min_lr)
        metrics["lr_halvings"] = self.state.halvings  # written with this evaluation's history row

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.state.best, "bad": self.state.bad, "halvings": self.state.halvings}

    def load_state_dict(self, state):
        self.state.best = state.get("best")
        self.state.bad = int(state.get("bad", 0))
        self.state.halvings = int(state.get("halvings", 0))
