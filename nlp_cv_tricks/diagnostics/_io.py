"""Small I/O helpers shared by the diagnostics: atomic writes and the run-history reader."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Union

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_save_figure",
           "load_history", "history_path", "DiagnosticsError"]


class DiagnosticsError(ValueError):
    """Bad input to a diagnostic: the message names the file, the line/key and what was expected."""


from ..utils.io import atomic_save_figure, atomic_write_bytes, atomic_write_text  # noqa: E402,F401  (one implementation)
from ..utils.io import atomic_write_json as _write_json  # noqa: E402


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    """Standard JSON (NaN/inf as null) written atomically."""
    return _write_json(path, obj, finite=True)


def refuse_overwrite(path: PathLike, overwrite: bool) -> None:
    """Never overwrite a user's file silently."""
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")


def history_path(run: PathLike) -> Path:
    """``RUN_DIR`` or ``RUN_DIR/history.jsonl`` → the history file."""
    p = Path(run)
    if p.is_dir():
        p = p / "history.jsonl"
    if not p.is_file():
        raise DiagnosticsError(f"{p}: no metrics history here (expected a run directory with history.jsonl)")
    return p


def load_history(run: Union[PathLike, Iterable[dict]], notes: Optional[list] = None) -> list[dict]:
    """Read a run's ``history.jsonl`` (or accept a list of records) into a list of dicts sorted by step.

    Each line must be a JSON object with an integer ``step``; other values are numbers (NaN/inf allowed,
    written by Python's json as ``NaN``/``Infinity``). A bad line raises :class:`DiagnosticsError` naming the
    file, the line number and what was expected. A last line cut off mid-record (no line end: the run is still
    writing it, or was killed while writing) is skipped; what was skipped is appended to ``notes`` (a list).
    """
    if not isinstance(run, (str, os.PathLike)):
        records = [dict(r) for r in run]
        for i, r in enumerate(records):
            if not isinstance(r.get("step"), (int, float)) or isinstance(r.get("step"), bool):
                raise DiagnosticsError(f"history record {i}: expected an integer 'step', got {r.get('step')!r}")
        return sorted(records, key=lambda r: r["step"])
    path = history_path(run)
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise DiagnosticsError(f"{path}: not a metrics history (byte {e.start} is not UTF-8 text: a binary file?); "
                               "expected the history.jsonl a training run writes, one JSON object per line") from None
    last = len(lines) if lines[-1] else 0  # a final line without its line end is still being written
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == last:
                if notes is not None:
                    notes.append(f"{path}:{lineno}: the last line is cut off (a run still writing, or killed "
                                 f"while writing); skipped it ({len(line)} characters)")
                continue
            raise DiagnosticsError(f"{path}:{lineno}: not valid JSON ({e.msg}); expected one JSON object "
                                   f"per line like {{\"step\": 20, \"train/loss\": 0.61}}") from None
        if not isinstance(rec, dict):
            raise DiagnosticsError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        step = rec.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or (
                isinstance(step, float) and not step.is_integer()):
            raise DiagnosticsError(f"{path}:{lineno}: expected an integer 'step', got {step!r}")
        rec["step"] = int(step)
        for k, v in rec.items():
            if v is not None and not isinstance(v, (int, float, str, bool, list, dict)):
                raise DiagnosticsError(f"{path}:{lineno}: key {k!r} has an unexpected value {v!r}")
        records.append(rec)
    if not records:
        raise DiagnosticsError(f"{path}: the history is empty (no JSON lines)")
    return sorted(records, key=lambda r: r["step"])
