"""The plug-in table: tricks and callbacks by name, imported on use (the task table is in
:mod:`nlp_cv_tricks.tasks`). The engine itself never looks a name up: :func:`nlp_cv_tricks.runner.build_trainer`
builds the plug-ins a recipe names with :func:`build_tricks` and hands the Trainer ready objects.

A recipe's ``tricks`` list holds names or one-key mappings of name → options::

    tricks:
      - label_smoothing: {epsilon: 0.1}
      - grad_norm_logging
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable

from ..utils.registry import import_target
from .events import Callback, Trick

_REGISTRY: dict[str, type[Trick]] = {}

# Where each built-in trick lives: imported when a recipe names it (``import nlp_cv_tricks`` imports none of
# them). Third-party tricks: entry point group ``nlp_cv_tricks.tricks`` (name = "module:Class"), or
# :func:`register_trick` in code that runs before the recipe is built.
BUILTIN_TRICKS: dict[str, str] = {
    "label_smoothing": "nlp_cv_tricks.tricks.label_smoothing:LabelSmoothing",
    "grad_norm_logging": "nlp_cv_tricks.callbacks.grad_norm:GradNormLogging",
    "fgm": "nlp_cv_tricks.tricks.adversarial:FGM",
    "pgd": "nlp_cv_tricks.tricks.adversarial:PGD",
    "freelb": "nlp_cv_tricks.tricks.adversarial:FreeLB",
    "awp": "nlp_cv_tricks.tricks.adversarial:AWP",
    "pixel_fgsm": "nlp_cv_tricks.tricks.adversarial:PixelFGSM",
    "pixel_pgd": "nlp_cv_tricks.tricks.adversarial:PixelPGD",
    "rdrop": "nlp_cv_tricks.tricks.rdrop:RDrop",
    "focal_loss": "nlp_cv_tricks.tricks.losses:FocalLoss",
    "class_weights": "nlp_cv_tricks.tricks.losses:ClassWeights",
    "embedding_dropout": "nlp_cv_tricks.tricks.regularization:EmbeddingDropout",
    "lr_halving": "nlp_cv_tricks.tricks.lr:LRHalving",
    "init": "nlp_cv_tricks.tricks.init:Init",
    "imbalance_watch": "nlp_cv_tricks.diagnostics.imbalance:ImbalanceWatch",
    "train_eval": "nlp_cv_tricks.diagnostics.train_eval:TrainEval",
    "layer_report": "nlp_cv_tricks.diagnostics.layers:LayerReportTrick",
    "mixup": "nlp_cv_tricks.tricks.mixup:MixupCutmix",
    "ema": "nlp_cv_tricks.tricks.ema:ModelEma",
}
ENTRY_POINT_GROUP = "nlp_cv_tricks.tricks"


def _entry_points() -> dict[str, str]:
    from importlib import metadata

    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load(name: str) -> None:
    """Import the trick ``name`` from the built-in table or an entry point (registering it) if not yet known."""
    if name in _REGISTRY:
        return
    target = BUILTIN_TRICKS.get(name) or _entry_points().get(name)
    if target is None:
        return
    cls = import_target(target)
    if name not in _REGISTRY:  # a class without the decorator (e.g. a third-party entry point)
        cls.name = name
        _REGISTRY[name] = cls


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
    return sorted(set(_REGISTRY) | set(BUILTIN_TRICKS) | set(_entry_points()))


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



def build_trick(spec: Any, where: str = "tricks") -> Trick:
    """A plug-in from a recipe spec (a name, or a one-key mapping name -> options); a ready Trick or Callback
    instance is taken as it is."""
    if isinstance(spec, (Trick, Callback)):
        return spec
    name, opts = _parse_spec(spec, where)
    _load(name)
    if name not in _REGISTRY:
        near = difflib.get_close_matches(name, available_tricks(), n=1)
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


# ---- the end of a run ------------------------------------------------------------------------------------------
# What the trainer calls once a run is done, when output.report is on (the report is an upper layer: the engine
# reaches it through this name, not an import).
RUN_REPORT = "nlp_cv_tricks.report:report_after_training"
