"""The catalog of built-in recipes: what each one trains, on which data, at what cost (``nlp-cv-tricks recipes``).

Everything is read from the recipe files themselves, so a recipe added to ``recipes/`` is listed without another
edit: the name is the file name, the task the recipe's ``task:``, and the header comment gives the rest:

- ``# Summary: ...`` one line (without it, the first line of the header);
- ``# Cost: ...`` what a run costs on CPU (and on a GPU where known);
- ``# Data: ...`` / ``# Hub: ...`` where the data come from (also quoted when the data are not found,
  :mod:`nlp_cv_tricks.data.root`).

"Data" in the listing says whether the recipe runs on the data shipped with the package (the quick start's
SST-2), needs a public dataset under the data root, or reads a Hugging Face Hub dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from .utils.bundled import bundled_file, bundled_recipes

__all__ = ["RecipeInfo", "catalog", "recipe_info", "header_lines"]


@dataclass(frozen=True)
class RecipeInfo:
    name: str
    task: str
    summary: str
    data: str
    cost: str
    path: Path


def header_lines(text: str) -> list[str]:
    """The leading comment block of a recipe file, without the ``#`` and one following space."""
    out = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        out.append(line[2:] if line.startswith("# ") else line[1:])
    return out


def _field(header: list[str], key: str) -> Optional[str]:
    """The value of ``# Key: value`` with its ``#   `` continuation lines joined, or None."""
    for i, line in enumerate(header):
        if line.startswith(key + ":"):
            parts = [line[len(key) + 1:].strip()]
            for cont in header[i + 1:]:
                if not cont.startswith("  ") or not cont.strip():
                    break
                parts.append(cont.strip())
            return " ".join(p for p in parts if p)
    return None


def _data_needed(raw: dict, header: list[str]) -> str:
    data = raw.get("data") or {}
    train = data.get("train_file")
    if data.get("format") == "hub" or (data.get("hub_name") and not train):
        return f"Hub: {data.get('hub_name')}"
    if not isinstance(train, str):
        return "-"
    if bundled_file(train) is not None:
        return f"bundled ({str(Path(train).parent)}/)"
    parts = Path(train.split("../shared/data/", 1)[-1]).parts
    if not parts:
        return "-"
    folder = parts[0] + ("/" if len(parts) > 1 or not Path(parts[0]).suffix else "")
    return f"{folder} under the data root" + (" (or Hub)" if _field(header, "Hub") else "")


def recipe_info(name: str, path: Path) -> RecipeInfo:
    text = Path(path).read_text(encoding="utf-8")
    header = header_lines(text)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    summary = _field(header, "Summary") or next((h.strip() for h in header if h.strip()), "")
    return RecipeInfo(name=name, task=str(raw.get("task", "text-classification")), summary=summary,
                      data=_data_needed(raw, header), cost=_field(header, "Cost") or "-", path=Path(path))


def catalog() -> list[RecipeInfo]:
    """Every built-in recipe, sorted by name."""
    return [recipe_info(name, path) for name, path in bundled_recipes().items()]
