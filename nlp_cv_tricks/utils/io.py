"""Atomic writers and the JSON conventions of the package: the one home of "write a file so that a reader sees the
old version or the new one, never half of one" (runs, checkpoints, reports, annotations)."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Union

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_jsonl", "json_default",
           "finite_json", "WriteError", "as_write_error", "writing", "sha256_file"]

# the reasons a write fails that the user can fix (space, size limit, permission), in words
_WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EFBIG: "the file is larger than this system allows (a file-size limit such as ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}
if hasattr(errno, "EDQUOT"):
    _WRITE_ERRNOS[errno.EDQUOT] = "the disk quota is used up"
_NOTHING_CHANGED = ("what was there before is intact (files are written to a temporary name and swapped in); free "
                    "space or fix the permission, then run the command again")


class WriteError(OSError):
    """A file or folder could not be written (disk full, file too large, no permission, read-only file system):
    one sentence that says what, where, why, what is intact and what to do (``then``)."""

    def __init__(self, path: PathLike, reason: str, what: Optional[str] = None, then: str = _NOTHING_CHANGED,
                 code: Optional[int] = None):
        self.path, self.reason, self.what, self.then = str(path), reason, what, then
        super().__init__(self.sentence())
        self.errno = code

    def sentence(self, then: Optional[str] = None) -> str:
        what = f"{self.what} " if self.what else ""
        return f"could not write {what}{self.path}: {self.reason}; {then or self.then}"

    def __str__(self) -> str:
        return self.sentence()

    def __reduce__(self):  # picklable (errors travel between processes of a grid)
        return (type(self), (self.path, self.reason, self.what, self.then, self.errno))


def as_write_error(exc: BaseException, path: PathLike, what: Optional[str] = None) -> Optional[WriteError]:
    """``exc`` as a :class:`WriteError` when it is a write failure the user can fix, else None. Knows the
    ``OSError`` codes, safetensors' ``SafetensorError`` ("File too large (os error 27)") and torch's
    "PytorchStreamWriter failed writing file" (``torch.save`` on a full disk)."""
    if isinstance(exc, WriteError):
        return exc
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and type(exc).__name__ == "SafetensorError":
        m = re.search(r"os error (\d+)", str(exc))
        code = int(m.group(1)) if m else None
    if code in _WRITE_ERRNOS:  # named by the path the caller writes (not a temporary name inside it)
        return WriteError(path, _WRITE_ERRNOS[code], what, code=code)
    if isinstance(exc, RuntimeError) and ("PytorchStreamWriter failed" in str(exc) or "file write failed" in str(exc)):
        return WriteError(path, "the write failed (is the disk full, or a file-size limit reached?)", what)
    return None


@contextmanager
def writing(path: PathLike, what: Optional[str] = None) -> Iterator[None]:
    """Inside the block a write failure the user can fix (see :func:`as_write_error`) becomes a
    :class:`WriteError` naming ``path`` (and ``what`` it is); other errors pass unchanged."""
    try:
        yield
    except WriteError:
        raise
    except Exception as e:
        err = as_write_error(e, path, what)
        if err is None:
            raise
        raise err from e


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename: readers see the
    old file or the new one, never a half-written one. A write failure the user can fix (disk full, file too
    large, permission) is a :class:`WriteError` naming ``path``."""
    path = Path(path)
    with writing(path):
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


def atomic_save_figure(fig, path: PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


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


def sha256_file(path: PathLike) -> str:
    """The sha256 of a file's bytes (read in 1 MiB pieces)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def replace_dir(directory: PathLike, fill: Callable[[Path], None], what: Optional[str] = None) -> Path:
    """Write a directory whole: ``fill(tmp)`` writes the content into ``<directory>.tmp``, which then replaces
    ``directory`` (the old one moved to ``<directory>.old`` and removed after the swap), so a crash or a failed
    write never leaves a half-written directory where the previous one was. A write failure the user can fix is a
    :class:`WriteError` naming ``directory`` (and ``what`` it is); the temporary directory is removed."""
    import shutil

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        with writing(directory, what):
            fill(tmp)
    except WriteError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(directory, e.reason, e.what) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old.exists():
        shutil.rmtree(old)
    return directory


def append_json_line(path: PathLike, record: dict, what: Optional[str] = None) -> None:
    """Append ``record`` to the JSON-lines file ``path`` as one line, flushed; a failed write (a full disk) truncates
    the file back, so no cut-off line is left behind, and is a :class:`WriteError` naming ``path`` (and ``what``)."""
    with writing(path, what), open(path, "a", encoding="utf-8") as f:
        end = f.tell()
        try:
            f.write(json.dumps(record, default=json_default) + "\n")
            f.flush()
        except OSError:
            f.truncate(end)
            raise
