"""The callback table: recipe name → the observer class, imported when a recipe names it.

A recipe lists its observers under ``callbacks:`` (names or one-key mappings name → options, as ``tricks:``)::

    callbacks:
      - grad_norm_logging: {every: 10}
      - train_eval

Third-party callbacks: the entry point group ``nlp_cv_tricks.callbacks`` (``name = "module:Class"``), or
:func:`register_callback` in code that runs before the recipe is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..utils.registry import PluginTable

if TYPE_CHECKING:  # the table itself imports no torch: the run doctor reads the names
    from ..engine.events import Callback

__all__ = ["CALLBACKS", "BUILTIN_CALLBACKS", "register_callback", "available_callbacks", "build_callback",
           "build_callbacks"]

BUILTIN_CALLBACKS: dict[str, str] = {
    "grad_norm_logging": "nlp_cv_tricks.callbacks.grad_norm:GradNormLogging",
    "imbalance_watch": "nlp_cv_tricks.callbacks.imbalance_watch:ImbalanceWatch",
    "train_eval": "nlp_cv_tricks.callbacks.train_eval:TrainEval",
    "layer_report": "nlp_cv_tricks.callbacks.layer_report:LayerReportTrick",
    "training_dynamics": "nlp_cv_tricks.callbacks.training_dynamics:TrainingDynamics",
}
ENTRY_POINT_GROUP = "nlp_cv_tricks.callbacks"
CALLBACKS = PluginTable("callback", BUILTIN_CALLBACKS, entry_point_group=ENTRY_POINT_GROUP)


def register_callback(name: str) -> "Callable[[type[Callback]], type[Callback]]":
    """Class decorator: make a callback available to recipes under ``name``."""
    return CALLBACKS.register_class(name)


def available_callbacks() -> list[str]:
    """Every callback name a recipe may use (built-in, registered, entry points); nothing is imported."""
    return CALLBACKS.names()


def build_callback(spec: Any, where: str = "callbacks") -> Callback:
    """A callback from a recipe spec (a name, or a one-key mapping name -> options); a ready instance is taken
    as it is."""
    from ..engine.events import Callback

    if isinstance(spec, Callback):
        return spec
    return CALLBACKS.build(spec, where)


def build_callbacks(specs: Iterable[Any] | None, where: str = "callbacks") -> list[Callback]:
    """Build the callbacks of a recipe, in order; a name appears once."""
    from ..engine.events import check_plugins

    return check_plugins([build_callback(s, f"{where}[{i}]") for i, s in enumerate(specs or [])], where)
