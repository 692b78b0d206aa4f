"""Optional dependencies: the one place that imports a package of an extra, and the error that names the extra.

The core install (``pip install nlp-cv-tricks``) trains text models. Everything else is an extra named after
what it enables (``pyproject.toml``)::

    vision       timm, pillow                    image-classification task, image diagnostics and hard cases
    diagnostics  scikit-learn, scipy, matplotlib diagnose / probe-cls / plot-embeddings, ablate's paired t-test
    hardcases    cleanlab, scikit-learn          hardcases mine (K-fold), cleanlab's confident learning
    tracking     tensorboard                     output.report_to=tensorboard
    fast         numba                           compiled sparse-row optimizer updates
    ray          ray                             --executor ray: grid runs (ablate, lr-sweep, hardcases mine) on Ray
    all          all of the above

``require("timm", extra="vision")`` returns the module or raises :class:`MissingExtraError` (an ImportError)
whose message says what needs it and which ``pip install "nlp-cv-tricks[...]"`` to run. ``available`` answers
without raising, for the places that fall back (tracking, numba, cleanlab).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

__all__ = ["MissingExtraError", "require", "available", "EXTRA_OF", "install_hint"]

# top-level module -> (extra that installs it, pip distribution name)
EXTRA_OF: dict[str, tuple[str, str]] = {
    "timm": ("vision", "timm"),
    "PIL": ("vision", "pillow"),
    "sklearn": ("diagnostics", "scikit-learn"),
    "scipy": ("diagnostics", "scipy"),
    "matplotlib": ("diagnostics", "matplotlib"),
    "cleanlab": ("hardcases", "cleanlab"),
    "tensorboard": ("tracking", "tensorboard"),
    "numba": ("fast", "numba"),
    "ray": ("ray", "ray"),
}


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra to install."""


def install_hint(extra: str) -> str:
    return f'pip install "nlp-cv-tricks[{extra}]"'


def require(module: str, extra: Optional[str] = None, purpose: Optional[str] = None) -> ModuleType:
    """Import ``module`` (a dotted name is fine) or raise :class:`MissingExtraError` naming ``extra``.

    ``extra`` defaults to the extra that declares the module's top-level package; ``purpose`` says what needs
    it (``"task: image-classification"``) and starts the message."""
    top = module.split(".", 1)[0]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if getattr(e, "name", None) not in (None, top, module) and not str(getattr(e, "name", "")).startswith(top + "."):
            raise  # the package is there but one of *its* imports failed: that error is the useful one
        extra_name, dist = EXTRA_OF.get(top, (extra, top))
        extra_name = extra or extra_name
        who = f"{purpose} needs" if purpose else "this needs"
        raise MissingExtraError(f"{who} {dist}, which is not installed (or cannot be imported: {e}); "
                                f"install it with: {install_hint(extra_name)}", name=top) from e


def available(module: str) -> bool:
    """Whether ``module`` can be imported (it is imported to find out)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
