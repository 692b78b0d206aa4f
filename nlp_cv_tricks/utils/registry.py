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


class UnknownNameError(KeyError, ValueError):
    """A name no table knows (a KeyError and a ValueError); the message has the nearest known name and the full
    list."""

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

    def target_of(self, name: str) -> Any:
        """What ``name`` is registered as (a ``"module:attr"`` string or the object), without importing it."""
        self._read_entry_points()
        return self._targets.get(name)

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


# ---- tables of plug-in classes built from recipe specs ---------------------------------------------------------

def parse_spec(spec: Any, where: str, kind: str = "plug-in") -> tuple[str, dict]:
    """A recipe list entry → ``(name, options)``: a name, or a one-key mapping name → options (a mapping)."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and len(spec) == 1:
        (name, opts), = spec.items()
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise ValueError(f"{where}: options of {kind} {name!r} must be a mapping, got {type(opts).__name__}")
        return str(name), dict(opts)
    raise ValueError(f"{where}: a {kind} is a name or a one-key mapping name -> options, got {spec!r}")


class PluginTable(LazyRegistry):
    """A :class:`LazyRegistry` of plug-in classes (tricks, callbacks): classes register under a name with
    :meth:`register_class` (which sets their ``name``), and :meth:`build` makes an instance from a recipe spec,
    checking the option names against the constructor."""

    def register_class(self, name: str):
        """Class decorator: make the class available under ``name`` (and set its ``name`` attribute)."""

        def wrap(cls):
            known = self._loaded.get(name)
            if known is not None and known is not cls:
                raise ValueError(f"{self.kind} name {name!r} is already registered by {known.__name__}")
            cls.name = name
            self.register(name, cls)
            return cls

        return wrap

    def load(self, name: str, where: str = "") -> Any:
        """The class registered as ``name`` (imported on first use); a class without the decorator (a
        third-party entry point) gets ``name`` as its ``name``."""
        cls = self.get(name, where)
        if getattr(cls, "name", None) != name:
            cls.name = name
        return cls

    def build(self, spec: Any, where: str = "") -> Any:
        """An instance from a recipe spec (a name, or a one-key mapping name -> options)."""
        import inspect

        name, opts = parse_spec(spec, where, self.kind)
        cls = self.load(name, where)
        valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        for key in opts:
            if key not in valid:
                near = difflib.get_close_matches(key, valid, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(f"{where}.{name}: unknown option {key!r}{hint} (valid: {', '.join(valid) or 'none'})")
        try:
            return cls(**opts)
        except (TypeError, ValueError) as e:
            if str(e).startswith(f"{name}.") or (where and where in str(e)):
                raise
            raise ValueError(f"{where}.{name} {opts}: {e}") from None
