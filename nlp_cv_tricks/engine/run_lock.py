"""The lock of a folder a command writes for a long time: a run directory while it trains, an ablation or
hard-case folder while its grid runs.

The lock is ``.nlp_cv_tricks.lock`` in the folder: an advisory ``flock`` on it (the kernel releases it when the
process ends, however it ends, so a crashed or killed run never blocks the folder) and, inside it, who holds it
(host, PID, command, since when) for the messages. A second writer is refused with the holder named; a lock file
left by a process that is gone is named as stale and taken over. Readers (``eval``, ``predict``, ``report``) do
not lock: :func:`live_holder` tells them a run is writing the folder, so they can say that what they read may
change.

Only the main process of a distributed run locks (the others write nothing the lock guards).
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import logging
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

from ..utils.io import writing

logger = logging.getLogger(__name__)

LOCK_NAME = ".nlp_cv_tricks.lock"

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "live_holder", "describe_holder", "warn_if_live",
           "lock_folder", "releases_locks"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: an exclusive create, stale when the holder's PID is gone
    fcntl = None


class RunLockedError(FileExistsError):
    """The folder is locked by a command that is still running; the message names it."""


def describe_holder(info: Optional[dict]) -> str:
    """``PID 123 on host h (nlp-cv-tricks train ..., since 2026-01-02 03:04:05 UTC)`` from a lock's content."""
    if not info:
        return "another process (it is writing its details now)"
    text = f"PID {info.get('pid', '?')} on host {info.get('host', '?')}"
    extra = [x for x in (info.get("command"), f"since {info['since']}" if info.get("since") else None) if x]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _read_info(path: Path) -> Optional[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def _command() -> str:
    argv = [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:]
    text = " ".join(argv)
    return text if len(text) <= 200 else text[:197] + "..."


def _pid_alive(pid: int) -> bool:  # pragma: no cover - only without fcntl
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:
        return True  # cannot tell: assume the holder lives (refusing is safe)


class RunLock:
    """``with RunLock(folder, "training"):`` holds the folder for the block; or :meth:`acquire`/:meth:`release`.

    ``acquire`` creates ``folder`` when missing (and ``release`` removes it again when it is still empty, so a
    command that failed before writing anything leaves nothing behind)."""

    def __init__(self, folder: Union[str, os.PathLike], what: str = "training"):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._fd: Optional[int] = None
        self._created_folder = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self, retries: int = 5) -> "RunLock":
        """Take the lock or raise :class:`RunLockedError` naming the holder. A stale lock file (its process is
        gone) is named in a warning and taken over."""
        if self._fd is not None:
            return self
        if self.folder.exists() and not self.folder.is_dir():
            return self  # the caller refuses a file as its folder with its own message
        if not self.folder.exists():
            with writing(self.folder, "the folder"):
                self.folder.mkdir(parents=True, exist_ok=True)
            self._created_folder = True
        for attempt in range(retries + 1):
            fd = self._try_lock()
            if fd is not None:
                break
            if attempt < retries:  # a reader probing the lock holds it for a moment only
                time.sleep(0.05 * (attempt + 1))
        else:
            holder = _read_info(self.path)
            self._remove_created_folder()
            raise RunLockedError(
                f"{self.folder} is in use: {describe_holder(holder)} holds its lock ({self.path.name}); a "
                f"second {self.what} there would mix or delete that run's files, so nothing was changed. Wait "
                "for it to finish (or stop it), or choose another output folder")
        self._fd = fd
        stale = _read_info(self.path)
        if stale:
            logger.warning("%s: a stale lock of %s was found; that process is no longer running, so the lock is "
                           "taken over", self.folder, describe_holder(stale))
        info = {"host": socket.gethostname(), "pid": os.getpid(), "what": self.what, "command": _command(),
                "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode("utf-8"))
        return self

    def _try_lock(self) -> Optional[int]:
        if fcntl is None:  # pragma: no cover
            try:
                return os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                info = _read_info(self.path)
                if info and info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", 0))):
                    os.unlink(self.path)
                    return os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
                return None
        with writing(self.path, "the lock file"):  # a read-only folder: one sentence
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):  # another process holds it
                os.close(fd)
                return None
            # a file system without locks (some network mounts): the folder cannot be guarded; go on, said once
            logger.warning("%s: this file system does not support file locks (%s); the folder is not protected "
                           "against a second run", self.folder, e.strerror)
            return fd
        # the holder before us may have removed the file between our open and our lock: then we hold a lock on
        # a file nobody else sees; start again on the file that is there now
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try_lock()
        return fd

    def release(self) -> None:
        """Remove the lock file and let go (safe to call twice, and when the lock was never taken)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        try:
            os.close(self._fd)  # closing the file releases the flock
        finally:
            self._fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        if self._created_folder:
            try:
                self.folder.rmdir()  # only when empty: nothing was written
            except OSError:
                pass
            self._created_folder = False


def live_holder(folder: Union[str, os.PathLike]) -> Optional[dict]:
    """Who holds the lock of ``folder`` now (its lock content, ``{}`` when unreadable), or None when no live
    process holds it (no lock file, or a stale one)."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return None
    if fcntl is None:  # pragma: no cover
        info = _read_info(path) or {}
        alive = info.get("host") != socket.gethostname() or _pid_alive(int(info.get("pid", 0)))
        return info if alive else None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_info(path) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def warn_if_live(folder: Union[str, os.PathLike], doing: str) -> Optional[dict]:
    """A warning when a live run is writing ``folder`` (its files may change while ``doing`` reads them); returns
    the holder or None."""
    folder = Path(folder)
    holder = live_holder(folder)
    if holder is None and folder.name in ("best", "final"):  # a model folder inside a run directory
        holder = live_holder(folder.parent)
        folder = folder.parent
    if holder is not None:
        logger.warning("%s is being written by a run that is still going (%s): %s reads what is there now, which "
                       "may change when the run saves again", folder, describe_holder(holder), doing)
    return holder


# the folders this process holds through lock_folder, and the calls (releases_locks) that release them
_HELD: dict[str, RunLock] = {}
_SCOPES: list[list[str]] = []


def lock_folder(folder: Union[str, os.PathLike], what: str) -> Optional[RunLock]:
    """Lock ``folder`` for the rest of the enclosing :func:`releases_locks` call (or until the process ends);
    a folder this process holds already is not locked twice. Raises :class:`RunLockedError` naming the holder."""
    key = os.path.abspath(folder)
    if key in _HELD:
        return _HELD[key]
    lock = RunLock(folder, what).acquire()
    _HELD[key] = lock
    if _SCOPES:
        _SCOPES[-1].append(key)
    else:
        atexit.register(_release, key)
    return lock


def _release(key: str) -> None:
    lock = _HELD.pop(key, None)
    if lock is not None:
        lock.release()


def releases_locks(fn):
    """Decorator: the folders that ``fn`` locks with :func:`lock_folder` are released when it returns or
    raises."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _SCOPES.append([])
        try:
            return fn(*args, **kwargs)
        finally:
            for key in _SCOPES.pop():
                _release(key)

    return wrapper
