"""Name → ``"module:attr"`` tables that import on use.

A recipe names a task, a trick or an architecture; the package keeps a static table of where each built-in one
lives and imports that module only when the name is asked for, so ``import nlp_cv_tricks`` stays cheap and the
answer never depends on what happened to be imported before. Third-party packages add names through an entry
point group (``[project.entry-points."nlp_cv_tricks.tricks"] my_trick = "my_pkg.tricks:MyTrick"``) or at run
time with :meth:`LazyRegistry.register`.
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any, Iterable, Optional


def import_target(target: str) -> Any:
    """``"package.module:attr"`` → the object (``attr`` may be dotted)."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class UnknownNameError(KeyError):
    """A name no table knows; the message has the nearest known name and the full list."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class LazyRegistry:
    """A table ``name → "module:attr"`` (imported on first use) or ``name → object`` (registered at run time)."""

    def __init__(self, kind: str, builtins: dict[str, str], entry_point_group: Optional[str] = None):
        self.kind = kind
        self._targets: dict[str, Any] = dict(builtins)
        self._loaded: dict[str, Any] = {}
        self._group = entry_point_group
        self._entry_points_read = False

    def _read_entry_points(self) -> None:
        if self._entry_points_read or not self._group:
            return
        self._entry_points_read = True
        for ep in metadata.entry_points(group=self._group):
            self._targets.setdefault(ep.name, ep.value)

    def register(self, name: str, obj: Any) -> None:
        """Add ``name`` (an object, or a ``"module:attr"`` string imported on use)."""
        if isinstance(obj, str):
            self._targets[name] = obj
            self._loaded.pop(name, None)
        else:
            self._targets[name] = obj
            self._loaded[name] = obj

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        self._read_entry_points()
        return name in self._targets

    def get(self, name: str, where: str = "") -> Any:
        if name in self._loaded:
            return self._loaded[name]
        self._read_entry_points()
        if name not in self._targets:
            raise UnknownNameError(self.unknown_message(name, where))
        target = self._targets[name]
        obj = import_target(target) if isinstance(target, str) else target
        self._loaded[name] = obj
        return obj

    def unknown_message(self, name: str, where: str = "", known: Optional[Iterable[str]] = None) -> str:
        known = sorted(known if known is not None else self.names())
        near = difflib.get_close_matches(str(name), known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        prefix = f"{where}: " if where else ""
        return f"{prefix}unknown {self.kind} {name!r}{hint} (known: {', '.join(known)})"
