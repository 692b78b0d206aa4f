"""How a training that stops before its end says so: Ctrl-C and write failures, each as one sentence with the
step reached, what is intact (the last checkpoint, ``best/``) and the command that resumes.

* Ctrl-C: with ``train.save_steps`` set, the first Ctrl-C lets the current step finish, saves a checkpoint there
  and stops (:class:`InterruptGuard`); a second Ctrl-C stops at once (the last checkpoint saved before is the one
  to resume from). Without ``save_steps`` there is nothing to save and the first Ctrl-C stops at once. Either way
  :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) says where the run stands.
* a write failure (disk full, file too large, permission): :class:`TrainingWriteError`, a
  :class:`~nlp_cv_tricks.utils.io.WriteError` that also says that the previous ``best/`` and checkpoint are intact
  and how to resume.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

from ..utils.io import WriteError

__all__ = ["InterruptGuard", "TrainingInterrupted", "TrainingWriteError", "run_position", "resume_hint"]


def _checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := re.fullmatch(r"step_(\d+)", p.name))
             and (p / "trainer_state.json").is_file()]
    return [p for _, p in sorted(found)]


def run_position(run_dir) -> tuple[Optional[Path], Optional[int]]:
    """The last complete checkpoint of ``run_dir`` (or None) and the step of its ``best/`` model (or None)."""
    run_dir = Path(run_dir)
    ckpts = _checkpoints(run_dir)
    best_step = None
    try:
        best_step = json.loads((run_dir / "best" / "training_summary.json").read_text(encoding="utf-8")).get("step")
    except (OSError, ValueError, AttributeError):
        pass
    return (ckpts[-1] if ckpts else None), best_step


_NO_CHECKPOINT = "set train.save_steps=N to make a run resumable"


def resume_hint(run_dir, checkpoint: Optional[Path], command: Optional[str] = None) -> str:
    """How to go on: resume from the last checkpoint, or (without one) start again; ``command`` is the command
    that ran the training (without the overrides a resume replaces), when the caller knows it."""
    out = f"output.dir={shlex.quote(str(run_dir))}"
    if checkpoint is None:
        return f"start again with: {command} {out} output.overwrite=true" if command else \
            f"start again with the same command and {out} output.overwrite=true"
    args = f"train.resume_from=latest {out}"
    return f"resume with: {command} {args}" if command else f"resume with the same command and {args}"


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C: ``str()`` is one line with the step reached, the last checkpoint and how to
    resume (:meth:`sentence` with the exact command when the caller knows it)."""

    def __init__(self, run_dir, step: int, total: Optional[int], saved_now: bool, main_process: bool = True):
        self.run_dir, self.step, self.total = Path(run_dir), step, total
        self.saved_now, self.main_process = saved_now, main_process
        self.checkpoint, self.best_step = run_position(self.run_dir)
        super().__init__(self.sentence())

    def sentence(self, command: Optional[str] = None) -> str:
        of = f" of {self.total}" if self.total else ""
        head = f"interrupted (Ctrl-C) at step {self.step}{of}"
        if self.checkpoint is not None:
            ck = f"last checkpoint {self.checkpoint}" + (" (saved now)" if self.saved_now else "")
        else:
            ck = f"no checkpoint ({_NO_CHECKPOINT})"
        best = f", best/ from step {self.best_step}" if self.best_step is not None else ""
        return f"{head}; {ck}{best}; {resume_hint(self.run_dir, self.checkpoint, command)}"

    def __str__(self) -> str:
        return self.sentence()


class TrainingWriteError(WriteError):
    """A write of a training failed: what, where and why, that the previous ``best/`` and checkpoint are
    intact, and how to resume once there is space."""

    def __init__(self, err: WriteError, run_dir):
        self.run_dir = Path(run_dir)
        self.checkpoint, self.best_step = run_position(self.run_dir)
        super().__init__(err.path, err.reason, err.what, self._then(), err.errno)

    def __reduce__(self):
        return (WriteError, (self.path, self.reason, self.what, self.then, self.errno))

    def _then(self, command: Optional[str] = None) -> str:
        intact = []
        if self.best_step is not None:
            intact.append(f"the previous best/ (step {self.best_step})")
        if self.checkpoint is not None:
            intact.append(f"the checkpoint {self.checkpoint}")
        said = (" and ".join(intact) + (" are" if len(intact) > 1 else " is") + " intact") if intact else \
            f"no model or checkpoint had been saved yet ({_NO_CHECKPOINT})"
        if self.checkpoint is None and intact:
            said += f", but there is no checkpoint to resume from ({_NO_CHECKPOINT})"
        return f"{said}; free space (or fix the permission) and {resume_hint(self.run_dir, self.checkpoint, command)}"

    def sentence(self, then: Optional[str] = None, command: Optional[str] = None) -> str:
        if then is None and getattr(self, "run_dir", None) is not None:
            then = self._then(command)
        return super().sentence(then)


class InterruptGuard:
    """While active (a single-process run with checkpoints, in the main thread), the first SIGINT only sets
    :attr:`requested` (the loop saves a checkpoint after the current step and stops); the second raises
    ``KeyboardInterrupt`` at once. Otherwise Python's own handling stays."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def __enter__(self) -> "InterruptGuard":
        if self.enabled and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: saving a checkpoint after this step, then stopping (Ctrl-C again stops at once)",
              file=sys.stderr, flush=True)
