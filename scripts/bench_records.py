"""The record file of a resumable benchmark: one JSON object a line, appended (and synced) when a run finishes, so
a stopped benchmark keeps its finished runs and skips them when started again."""

from __future__ import annotations

import json
import os
import sys


def read_records(path: str) -> list[dict]:
    if not path or not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a run killed while appending leaves at most one broken last line
                    print(f"# {path}:{n}: unreadable record skipped", file=sys.stderr)
    return out


def append_record(path: str, rec: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
