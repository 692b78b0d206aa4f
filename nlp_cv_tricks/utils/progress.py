"""Progress of long loops (training steps, evaluation and prediction batches, hard-case folds, ablation runs)
in a form that suits where the output goes.

Modes (``--progress MODE`` / ``--quiet`` on the command line, or the environment variable
``NLP_CV_TRICKS_PROGRESS``):

- ``auto`` (default): ``bar`` when the progress stream (stderr) is a terminal, ``log`` otherwise;
- ``bar``: tqdm's bar, redrawn in place with carriage returns (for a terminal or a notebook);
- ``log``: one plain line every ``every_percent`` % of the work or every ``every_seconds`` seconds, whichever
  comes first, plus a last line when the loop ends -- readable in a log file (CI, ``nohup``, a cluster job),
  where a bar would leave one carriage-return fragment per update;
- ``off``: nothing (``--quiet``).

In every mode other than ``bar`` the per-file and per-``map`` bars of ``datasets``, ``transformers`` and
``huggingface_hub`` are switched off too (:func:`quiet_library_bars`), so a log file holds no carriage returns.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator, Optional, TextIO

__all__ = ["ENV_VAR", "MODES", "Progress", "progress", "resolve_mode", "set_mode", "quiet_library_bars"]

ENV_VAR = "NLP_CV_TRICKS_PROGRESS"
MODES = ("auto", "bar", "log", "off")


def _check(mode: str, where: str) -> str:
    mode = str(mode).strip().lower()
    if mode not in MODES:
        raise ValueError(f"{where}={mode!r}: choose one of {', '.join(MODES)}")
    return mode


def set_mode(mode: str) -> None:
    """Set the progress mode of this process and of the processes it starts (through ``NLP_CV_TRICKS_PROGRESS``,
    which subprocesses inherit: an ablation's runs report the same way)."""
    os.environ[ENV_VAR] = _check(mode, "progress mode")
    if resolve_mode() != "bar":
        quiet_library_bars()


def resolve_mode(stream: Optional[TextIO] = None) -> str:
    """``"bar"``, ``"log"`` or ``"off"``: the environment's choice, with ``auto`` decided by whether ``stream``
    (default: stderr) is a terminal."""
    mode = _check(os.environ.get(ENV_VAR) or "auto", ENV_VAR)
    if mode != "auto":
        return mode
    stream = stream if stream is not None else sys.stderr
    try:
        return "bar" if stream is not None and stream.isatty() else "log"
    except (AttributeError, ValueError):  # a closed or odd stream
        return "log"


def quiet_library_bars() -> None:
    """Switch off the progress bars of ``datasets`` (``map``, downloads), ``transformers`` and ``huggingface_hub``
    (file loads and uploads); their carriage-return updates would otherwise end up in log files."""
    from .import_hooks import when_imported

    # each when its library is imported (importing them here would cost ~1 s to a command that needs none)
    when_imported("datasets", lambda m: m.disable_progress_bars())
    when_imported("huggingface_hub", lambda m: __import__("huggingface_hub.utils", fromlist=["x"]).disable_progress_bars())
    when_imported("transformers", lambda m: __import__("transformers.utils.logging", fromlist=["x"]).disable_progress_bar())


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class Progress:
    """A progress display for ``total`` units of work (``None``: unknown). Used like tqdm: ``update(n)``,
    ``set_postfix(key=value)``, ``close()`` (or a ``with`` block).

    Args:
        total: the units of work (steps, batches, folds, runs), or None.
        desc: what is running (``"train"``, ``"predict"``).
        unit: the unit's name in log lines (``"step"``, ``"batch"``).
        initial: units already done (a resumed run).
        enabled: False shows nothing (e.g. on all but the main process).
        mode: ``bar``/``log``/``off``/``auto``; default: :func:`resolve_mode`.
        stream: where lines go (default: stderr at creation time).
        every_percent / every_seconds: the log mode's interval: a line each time the work crosses another
            ``every_percent`` % of ``total``, or after ``every_seconds`` without a line, whichever comes first.
    """

    def __init__(self, total: Optional[int] = None, desc: str = "", unit: str = "it", initial: int = 0,
                 enabled: bool = True, mode: Optional[str] = None, stream: Optional[TextIO] = None,
                 every_percent: float = 10.0, every_seconds: float = 60.0):
        self.stream = stream if stream is not None else sys.stderr
        self.mode = "off" if not enabled else (
            resolve_mode(self.stream) if mode in (None, "auto") else _check(mode, "mode"))
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = int(initial)
        self.every_percent, self.every_seconds = float(every_percent), float(every_seconds)
        self.postfix: dict[str, Any] = {}
        self._t0 = self._last_time = time.monotonic()
        self._last_n = self.n
        self._closed = False
        self._bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=self.stream)

    # ---- the tqdm-like interface -------------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log" and self._due():
            self._line()

    def set_postfix(self, **values: Any) -> None:
        self.postfix.update(values)
        if self._bar is not None:
            self._bar.set_postfix(**self.postfix)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and (self.n != self._last_n or self.n == self.start_n):
            self._line(done=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- log lines -----------------------------------------------------------------------------------------------
    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last_time >= self.every_seconds:
            return True
        if self.total:
            step = self.every_percent / 100.0 * self.total
            return step > 0 and int(self.n // step) > int(self._last_n // step) or self.n >= self.total
        return False

    def _line(self, done: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._t0
        units = self.unit if self.unit.endswith("s") else self.unit + ("es" if self.unit.endswith(("ch", "sh", "x"))
                                                                       else "s")
        if self.total:
            text = f"{self.n}/{self.total} {units} ({100.0 * self.n / self.total:.0f}%)"
        else:
            text = f"{self.n} {units}"
        text += f", {_fmt_seconds(elapsed)} elapsed"
        done_here = self.n - self.start_n
        if self.total and 0 < done_here and self.n < self.total:
            text += f", ~{_fmt_seconds(elapsed / done_here * (self.total - self.n))} left"
        if self.postfix:
            text += ", " + ", ".join(f"{k}={v}" for k, v in self.postfix.items())
        if self.total and self.n >= self.total:
            text += " - done"
        elif done:
            text += " - done" if not self.total else " - stopped"
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {self.desc}: {text}" if self.desc else f"{stamp} {text}", file=self.stream, flush=True)
        self._last_n, self._last_time = self.n, now


def progress(iterable: Optional[Iterable] = None, *, total: Optional[int] = None, desc: str = "",
             unit: str = "it", **kwargs: Any):
    """Without ``iterable``: a :class:`Progress` (call ``update``). With one: an iterator over it that advances
    the display by one per item (``total`` defaults to ``len(iterable)`` when it has one)."""
    if iterable is None:
        return Progress(total=total, desc=desc, unit=unit, **kwargs)
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    return _iterate(iterable, Progress(total=total, desc=desc, unit=unit, **kwargs))


def _iterate(iterable: Iterable, bar: Progress) -> Iterator:
    with bar:
        for item in iterable:
            yield item
            bar.update(1)
