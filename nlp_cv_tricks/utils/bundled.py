"""The files that ship with the package: the built-in recipes and the quick start's SST-2 sentences.

The repository keeps them in one place, ``recipes/`` and ``data/sst2/`` at its root (where the README's
commands name them); the wheel maps those same folders into the package as ``nlp_cv_tricks/bundled/recipes/``
and ``nlp_cv_tricks/bundled/data/sst2/`` (``setup.py`` and ``[tool.setuptools.package-dir]`` in
``pyproject.toml``: a mapping, not a copy, so the two cannot drift). The *bundle root* is the folder that holds
``recipes/`` and ``data/``: ``nlp_cv_tricks/bundled`` in an installed wheel, the repository root in a clone (an
editable install included). Relative paths inside a built-in recipe (``data/sst2/train.txt``) are relative to it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

__all__ = ["bundle_root", "bundled_recipes", "bundled_file"]

_PACKAGE = Path(__file__).resolve().parents[1]
RECIPE_SUFFIX = ".yaml"


@lru_cache(maxsize=None)
def bundle_root() -> Optional[Path]:
    """The folder holding the built-in ``recipes/`` and ``data/``; None when neither layout is present."""
    installed = _PACKAGE / "bundled"
    if (installed / "recipes").is_dir():
        return installed
    clone = _PACKAGE.parent
    if (clone / "recipes").is_dir() and (clone / "pyproject.toml").is_file():
        return clone
    return None


def bundled_recipes() -> dict[str, Path]:
    """``name -> file`` of the built-in recipes (the name is the file name without ``.yaml``), sorted by name."""
    root = bundle_root()
    if root is None:
        return {}
    return {p.stem: p for p in sorted((root / "recipes").glob("*" + RECIPE_SUFFIX)) if p.is_file()}


def bundled_file(relative: str) -> Optional[Path]:
    """``relative`` (e.g. ``data/sst2/train.txt``) under the bundle root's ``data/``, when that file or folder
    exists there; None for any other path (absolute, outside ``data/``, or with ``..``)."""
    root = bundle_root()
    parts = Path(relative).parts if relative else ()
    if root is None or not parts or parts[0] != "data" or ".." in parts or Path(relative).is_absolute():
        return None
    p = root / relative
    return p if p.exists() else None
