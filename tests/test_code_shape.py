"""Code shape: functions longer than 80 lines are few, and the list of those allowed only shrinks."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nlp_cv_tricks"
MAX_LINES = 80
MAX_LONG = 5
# "path relative to the package:function" of the functions allowed over MAX_LINES; remove an entry when its
# function is split, never add one
ALLOWED_LONG = {
    "tasks/long_text.py:prepare_long_text",
    "callbacks/layer_report.py:activation_stats",
}


@functools.lru_cache(maxsize=1)  # one scan (about 0.5 s of CPU) for both tests
def _long_functions() -> dict[str, int]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    found[f"{path.relative_to(PACKAGE).as_posix()}:{node.name}"] = n
    return found


def test_few_functions_over_80_lines_and_only_listed_ones():
    found = dict(_long_functions())
    new = {k: v for k, v in found.items() if k not in ALLOWED_LONG}
    assert not new, (f"functions over {MAX_LINES} lines (split them into helpers that each do one thing): "
                     + ", ".join(f"{k} ({v} lines)" for k, v in sorted(new.items())))
    assert len(found) <= MAX_LONG, f"{len(found)} functions over {MAX_LINES} lines (at most {MAX_LONG}): {found}"


def test_the_allowed_list_only_names_long_functions():
    # an entry whose function got short (or moved) must go, so the list can only shrink
    stale = ALLOWED_LONG - set(_long_functions())
    assert not stale, f"no longer over {MAX_LINES} lines (remove from ALLOWED_LONG): {sorted(stale)}"
    assert len(ALLOWED_LONG) <= MAX_LONG
