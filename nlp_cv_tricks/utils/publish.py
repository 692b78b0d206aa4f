"""Names as they may leave the machine (model cards, pushed recipes): data paths and model names without local
directory names."""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any, Optional

__all__ = ["ALIAS_HUB_IDS", "public_path", "public_model_name"]

# the Hub ids behind the package's offline aliases (for the card's base_model)
ALIAS_HUB_IDS = {"minilm-l6": "sentence-transformers/all-MiniLM-L6-v2",
                 "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def public_path(value: Any) -> Optional[str]:
    """A data path as it may be published: a relative path as written in the recipe, an absolute one by its
    file name only (no local directory names leave the machine)."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.startswith(("hf://", "http://", "https://")):
        return text
    p = PurePath(text)
    if p.is_absolute() or text.startswith("~"):
        return p.name or text
    return text


def public_model_name(name: Any) -> tuple[Optional[str], Optional[str]]:
    """``(hub_id, shown)`` for a ``model.name``: a Hub id (for ``base_model``) and the text the card shows. A
    local directory is shown by its last component and is no Hub id."""
    if not name:
        return None, None
    name = str(name)
    if name in ALIAS_HUB_IDS:
        return ALIAS_HUB_IDS[name], ALIAS_HUB_IDS[name]
    if name.startswith("hf-hub:"):
        name = name[len("hf-hub:"):]
    if name.startswith("local-dir:") or os.path.isabs(name) or os.path.exists(name) or name.startswith(("~", ".")):
        local = name[len("local-dir:"):] if name.startswith("local-dir:") else name
        return None, f"a local checkpoint ({PurePath(local).name or local})"
    if name.count("/") == 1 and not name.startswith("/"):
        return name, name
    return None, name
