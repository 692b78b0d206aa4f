"""String-addressable trick factory: recipes name tricks, this builds them.

A recipe's ``tricks`` list holds names or one-key mappings of name → options::

    tricks:
      - label_smoothing: {epsilon: 0.1}
      - grad_norm_logging
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable

from ..engine.events import Trick

_REGISTRY: dict[str, type[Trick]] = {}


def register_trick(name: str) -> Callable[[type[Trick]], type[Trick]]:
    """Class decorator: make a trick available to recipes under ``name``."""

    def wrap(cls: type[Trick]) -> type[Trick]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"trick name {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_tricks() -> list[str]:
    return sorted(set(_REGISTRY) | set(_DEFERRED))


def _parse_spec(spec: Any, where: str) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and len(spec) == 1:
        (name, opts), = spec.items()
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise ValueError(f"{where}: options of trick {name!r} must be a mapping, got {type(opts).__name__}")
        return str(name), dict(opts)
    raise ValueError(f"{where}: a trick is a name or a one-key mapping name -> options, got {spec!r}")


# tricks registered by modules that import heavier dependencies (timm): loaded when a recipe names them
_DEFERRED = {"mixup": "nlp_cv_tricks.vision_task", "ema": "nlp_cv_tricks.models.vision"}


def build_trick(spec: Any, where: str = "tricks") -> Trick:
    name, opts = _parse_spec(spec, where)
    if name not in _REGISTRY and name in _DEFERRED:
        import importlib

        importlib.import_module(_DEFERRED[name])
    if name not in _REGISTRY:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"{where}: unknown trick {name!r}{hint} (available: {', '.join(available_tricks())})")
    cls = _REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p != "self"]
    for key in opts:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{where}.{name}: unknown option {key!r}{hint} (valid: {', '.join(valid) or 'none'})")
    try:
        return cls(**opts)
    except (TypeError, ValueError) as e:
        if str(e).startswith(f"{name}.") or where in str(e):
            raise
        raise ValueError(f"{where}.{name} {opts}: {e}") from None


def build_tricks(specs: Iterable[Any] | None, where: str = "tricks") -> list[Trick]:
    """Build the tricks of a recipe, in order; at most one may replace the criterion."""
    tricks = [build_trick(s, f"{where}[{i}]") for i, s in enumerate(specs or [])]
    seen: dict[str, int] = {}
    for i, t in enumerate(tricks):
        if t.name in seen:
            raise ValueError(f"{where}: {t.name!r} appears twice ({where}[{seen[t.name]}] and {where}[{i}]); a trick "
                             "runs once per step — keep one (tricks+= appends to the recipe's list)")
        seen[t.name] = i
    crit = [t.name for t in tricks if t.replaces_criterion]
    if len(crit) > 1:
        raise ValueError(f"{where}: {crit} all replace the loss; choose one")
    return tricks
