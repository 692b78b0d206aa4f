"""Atomic writers and the JSON conventions of the package: the one home of "write a file so that a reader sees the
old version or the new one, never half of one" (runs, checkpoints, reports, annotations)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Union

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_jsonl", "json_default",
           "finite_json"]


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename: readers see the
    old file or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_default(o: Any) -> Any:
    """numpy scalars/arrays, torch tensors and paths as JSON values; anything else as its ``str``."""
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if type(o).__module__.startswith("torch") and hasattr(o, "numel"):
        return o.item() if o.numel() == 1 else o.tolist()
    return str(o)


def finite_json(o: Any) -> Any:
    """NaN/inf replaced by None, so the JSON is standard (readable by any JSON parser)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite_json(v) for v in o]
    return o


def atomic_write_json(path: PathLike, obj: Any, *, finite: bool = False, indent: int = 2) -> Path:
    """``obj`` as UTF-8 JSON (numpy/torch values converted); ``finite``: NaN/inf written as null."""
    if finite:
        obj = finite_json(json.loads(json.dumps(obj, default=json_default)))
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=json_default, allow_nan=not finite)
    return atomic_write_text(path, text + "\n")


def atomic_write_jsonl(path: PathLike, rows: Iterable[dict]) -> Path:
    """One JSON object a line."""
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=json_default) + "\n"
                                           for r in rows))
