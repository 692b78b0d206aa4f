"""Where a recipe's data files are: relative paths resolved against a data root, checked before any work.

The data root is, in this order:

1. ``data.root`` in the recipe (or ``data.root=DIR`` on the command line);
2. the ``NLP_CV_TRICKS_DATA`` environment variable;
3. ``../shared/data``, when that folder exists.

Relative directories (``data.root``, the variable, the default) are taken from the current directory, like every
other relative path the command line takes; the project's recipes are meant to be run from the repository root,
whose sibling ``../shared/data`` holds the public datasets they name.

A relative data path (``data.train_file``, ``data.dev_file``, ``data.test_file``, ``data.label_names_file``,
``model.kwargs.pretrained_vectors``, ``model.kwargs.vectors_vocab``) is read from the current directory when it
exists there (files given on the command line, the bundled ``data/sst2``), otherwise from the data root, and a
path under ``data/`` last from the data shipped with the package (:mod:`nlp_cv_tricks.utils.bundled`: the quick
start's SST-2, so that ``nlp-cv-tricks train quickstart`` runs in any directory from an installed wheel). Recipes
written for the old layout (``../shared/data/kim2014/...``) keep working: that prefix is read as "the data root".
An absolute path is used as it is.

:func:`resolve_data_paths` returns a copy of the recipe with the paths found; the recipe itself (what is saved
with a run and shown in a model card) keeps the paths as written. A path found nowhere is a
:class:`DataNotFoundError` naming the key, the dataset, every path tried, the two ways to point at the data and
where the public data comes from (the ``Data:`` / ``Hub:`` lines of the recipe's header).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional

from ..utils.bundled import bundled_file

__all__ = ["DATA_ENV", "DEFAULT_DATA_ROOT", "DataNotFoundError", "data_root", "resolve_data_paths",
           "recipe_data_source"]

DATA_ENV = "NLP_CV_TRICKS_DATA"
DEFAULT_DATA_ROOT = "../shared/data"
_LEGACY_PREFIX = "../shared/data/"

_DATA_KEYS = ("train_file", "dev_file", "test_file", "label_names_file")
_MODEL_KWARG_KEYS = ("pretrained_vectors", "vectors_vocab")


class DataNotFoundError(FileNotFoundError):
    """A data file or folder of a recipe is not where the recipe says (nor under the data root)."""


def data_root(recipe) -> tuple[Optional[Path], str]:
    """``(root, where it came from)``; root is None when none is set and ``../shared/data`` does not exist."""
    if recipe.data.root:
        return Path(recipe.data.root).expanduser(), "data.root"
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser(), f"${DATA_ENV}"
    default = Path(DEFAULT_DATA_ROOT)
    if default.is_dir():
        return default, f"the default {DEFAULT_DATA_ROOT}"
    return None, f"the default {DEFAULT_DATA_ROOT} (not present)"


def _candidates(path: str, root: Optional[Path]) -> list[Path]:
    p = Path(path).expanduser()
    if p.is_absolute():
        return [p]
    out = [p]
    if root is not None:
        rel = path[len(_LEGACY_PREFIX):] if path.startswith(_LEGACY_PREFIX) else path
        if (root / rel) != p:
            out.append(root / rel)
    bundled = bundled_file(path)  # the data shipped with the package (data/sst2/): only tried where it exists
    if bundled is not None and bundled not in out:
        out.append(bundled)
    return out


def recipe_data_source(recipe) -> list[str]:
    """The ``# Data:`` and ``# Hub:`` lines of the recipe file's header comment (where the public data comes
    from), without the ``#``; empty when the recipe has no file or no such lines."""
    if not recipe.source or not os.path.isfile(recipe.source):
        return []
    out, keep = [], False
    for line in Path(recipe.source).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if text.startswith(("Data:", "Hub:")):
            keep = True
            out.append(text)
        elif keep and line.startswith("#   ") and text:
            out.append("  " + text)  # continuation of a Data:/Hub: entry
        else:
            keep = False
    return out


def _dataset_name(path: str) -> str:
    rel = path[len(_LEGACY_PREFIX):] if path.startswith(_LEGACY_PREFIX) else path
    parts = [p for p in Path(rel).parts if p not in (".", "..")]
    return parts[0] if len(parts) > 1 else (parts[0] if parts else path)


def _uses_files(recipe) -> bool:
    d = recipe.data
    return not (d.format == "hub" or (d.hub_name and not d.train_file))


def resolve_data_paths(recipe):
    """A copy of ``recipe`` whose data paths point at files that exist (see the module docstring), or
    :class:`DataNotFoundError` for the first one that does not."""
    root, how = data_root(recipe)
    out = copy.deepcopy(recipe)
    keys = [("data", k) for k in _DATA_KEYS if _uses_files(recipe) or k == "label_names_file"]
    keys += [("model.kwargs", k) for k in _MODEL_KWARG_KEYS]
    for section, key in keys:
        holder = out.data if section == "data" else out.model.kwargs
        value = getattr(holder, key) if section == "data" else holder.get(key)
        if not value or not isinstance(value, str):
            continue
        tried = _candidates(value, root)
        found = next((c for c in tried if c.exists()), None)
        if found is None:
            raise DataNotFoundError(_not_found_message(recipe, f"{section}.{key}", value, tried, root, how))
        if section == "data":
            setattr(holder, key, str(found))
        else:
            holder[key] = str(found)
    return out


def _not_found_message(recipe, key: str, value: str, tried: list[Path], root: Optional[Path], how: str) -> str:
    where = f"{recipe.source}: " if recipe.source else ""
    lines = [f"{where}{key}={value!r}: dataset {_dataset_name(value)!r} not found; tried:"]
    for i, c in enumerate(tried):
        label = "from the current directory" if i == 0 else f"under the data root, from {how}"
        lines.append(f"  {c}  ({label})")
    if root is None:
        lines.append(f"  (no data root: data.root is not set, ${DATA_ENV} is not set, {DEFAULT_DATA_ROOT} does "
                     "not exist)")
    lines.append(f"Point at the folder that holds it: data.root=DIR (in the recipe or on the command line), or "
                 f"export {DATA_ENV}=DIR; or give the file itself ({key}=PATH).")
    source = recipe_data_source(recipe)
    if source:
        lines.append("Where the public data comes from (the recipe's header):")
        lines += [f"  {s}" for s in source]
    elif recipe.source:
        lines.append(f"Where the public data comes from: see the header of {recipe.source}.")
    return "\n".join(lines)
