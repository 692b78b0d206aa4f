"""The learning-rate scheduler's part of a checkpoint, kept as plain numbers in ``trainer_state.json`` and read
back without unpickling anything.

The schedules of ``train.lr_scheduler`` are ``LambdaLR``s (``transformers.get_scheduler``): their state is the
step count, the base rates and the last rates; the rate functions themselves are rebuilt from the recipe.
(Not through ``accelerator.register_for_checkpointing``: Accelerate writes a registered object with ``torch.save``
to ``custom_checkpoint_<i>.pkl`` and reads it back with ``weights_only=False``, a full unpickling that can run
code from a tampered file.) Checkpoints written before keep that file; :func:`rebuild_scheduler_state` restores
their schedule from the step count instead of reading it, and :func:`without_pickled_objects` hides the file from
``accelerator.load_state``.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["LEGACY_SCHEDULER_FILE", "scheduler_state", "load_scheduler_state", "rebuild_scheduler_state",
           "without_pickled_objects"]

# the scheduler's file in checkpoints of earlier versions (the only object they registered with Accelerate)
LEGACY_SCHEDULER_FILE = "custom_checkpoint_0.pkl"
_PICKLED_OBJECTS = "custom_checkpoint_*.pkl"


def _plain(value) -> bool:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def scheduler_state(scheduler) -> dict:
    """``scheduler.state_dict()`` without the rate functions' entries (``lr_lambdas``: ``None`` or the empty
    ``__dict__`` of a ``functools.partial``; the functions come from the recipe). Every value is a number or a
    list of numbers, so JSON keeps it exactly (floats are written with ``repr``)."""
    state = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    odd = sorted(k for k, v in state.items() if not _plain(v))
    if odd:
        raise TypeError(f"the learning-rate scheduler {type(scheduler).__name__} keeps state that is not plain "
                        f"numbers ({', '.join(odd)}); it cannot be checkpointed as JSON")
    return state


def load_scheduler_state(scheduler, state: dict) -> None:
    """Restore what :func:`scheduler_state` returned; the rate functions stay the ones built from the recipe."""
    full = scheduler.state_dict()  # lr_lambdas as they are now, for LambdaLR.load_state_dict
    full.update({k: list(v) if isinstance(v, tuple) else v for k, v in state.items()})
    scheduler.load_state_dict(full)


def rebuild_scheduler_state(scheduler, optimizer, steps: int) -> int:
    """The state of a ``LambdaLR`` after the optimizer steps of a checkpoint of an earlier version, computed
    instead of read from its pickled file; call it after the optimizer's state is loaded. Returns the scheduler
    steps it settled on.

    A ``LambdaLR`` is a function of its step count: ``last_epoch = n``, ``_step_count = n + 1``, the base rates
    (the optimizer groups' ``initial_lr``, which the optimizer's checkpoint keeps, halvings included) and the
    last rates ``base * lambda(n)``. ``n`` is the trainer's ``steps`` unless some optimizer steps were skipped
    (a non-finite loss, an fp16 overflow): then it is the largest ``n <= steps`` whose rates are the ones the
    optimizer's checkpoint holds."""
    groups = optimizer.param_groups
    base = [g["initial_lr"] for g in groups]
    saved = [g["lr"] for g in groups]

    def rates(n):
        return [b * f(n) for b, f in zip(base, scheduler.lr_lambdas)]

    def matches(n):
        return all(math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) for a, b in zip(rates(n), saved))

    n = next((k for k in range(steps, -1, -1) if matches(k)), steps)
    load_scheduler_state(scheduler, {"base_lrs": base, "last_epoch": n, "_step_count": n + 1,
                                     "_last_lr": rates(n)})
    return n


@contextlib.contextmanager
def without_pickled_objects(checkpoint: Path) -> Iterator[Path]:
    """``checkpoint``, or, when it holds an earlier version's ``custom_checkpoint_<i>.pkl``, a temporary view of
    it without those files (links to the others), so that ``accelerator.load_state`` (which refuses a count of
    them other than the registered objects') never unpickles them. The checkpoint itself is not touched."""
    pickled = {p.name for p in checkpoint.glob(_PICKLED_OBJECTS)}
    if not pickled:
        yield checkpoint
        return
    with tempfile.TemporaryDirectory(prefix="nct_resume_") as tmp:
        for entry in checkpoint.iterdir():
            if entry.name not in pickled:
                os.symlink(entry.resolve(), Path(tmp) / entry.name, target_is_directory=entry.is_dir())
        yield Path(tmp)
