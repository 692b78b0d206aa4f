"""Reading annotation files of hard cases: CSV and JSONL (as exported by ``hardcases export``) and Label Studio
JSON exports, into :class:`Answer` records; bad rows are collected and raised together as
:class:`ImportValidationError` (``file: row N: reason``)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["ImportValidationError", "Answer", "read_annotations"]


class ImportValidationError(ValueError):
    """Rows of annotation files that cannot be imported; ``errors`` lists ``file: row N: reason`` strings."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        shown = "\n  ".join(self.errors[:50])
        more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__(f"{len(self.errors)} annotation error(s), nothing imported:\n  {shown}{more}")


@dataclass
class Answer:
    file: str
    where: str
    id: str
    new_label: str
    action: str
    annotator: str
    time: str
    note: str
    text: Optional[str] = None
    extra: dict = field(default_factory=dict)
    image: Optional[str] = None  # the image file of an image example (export column "path")

    @property
    def loc(self) -> str:
        return f"{self.file}: {self.where}"


def _s(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _ls_annotator(a: dict) -> str:
    who = a.get("completed_by")
    if isinstance(who, dict):
        return _s(who.get("email") or who.get("id"))
    return _s(who)


def read_annotations(path, default_annotator: str = "") -> list[Answer]:
    """Answers of one annotation file: CSV, JSONL (as exported), or a Label Studio JSON export."""
    path = Path(path)
    p = str(path)
    if not path.is_file():
        raise ImportValidationError([f"{p}: file does not exist"])
    suffix = path.suffix.lower()
    readers = {".csv": _read_csv, ".jsonl": _read_jsonl, ".json": _read_label_studio}
    if suffix not in readers:
        raise ImportValidationError([f"{p}: unknown annotation file type {suffix!r} (expected .csv, .jsonl or "
                                     "a Label Studio export .json)"])
    return readers[suffix](path, default_annotator)


def _read_csv(path: Path, default_annotator: str) -> list[Answer]:
    """A CSV with a header holding at least ``id`` and ``new_label``; a broken row names its row and line."""
    from ..data.text import csv_fields_any_length

    p = str(path)
    out: list[Answer] = []
    errors = []
    try:
        # utf-8-sig: spreadsheet programs save "CSV UTF-8" with a byte-order mark
        with open(path, encoding="utf-8-sig", newline="") as f, csv_fields_any_length():
            reader = csv.DictReader(f)
            missing = [c for c in ("id", "new_label") if c not in (reader.fieldnames or [])]
            if missing:
                raise ImportValidationError([f"{p}: header: missing column(s) {missing}; "
                                             f"columns found: {reader.fieldnames}"])
            width, line = len(reader.fieldnames), reader.line_num + 1
            for i, r in enumerate(reader):
                loc = f"row {i + 1} (line {line})"
                line = reader.line_num + 1  # a quoted field may span lines: the next row starts after this one
                if None in r or any(v is None for v in r.values()):
                    n = width + len(r.get(None) or []) - sum(v is None for k, v in r.items() if k is not None)
                    errors.append(f"{p}: {loc}: {n} fields where the header has {width} (a broken row: "
                                  "unquoted comma or a cut line?)")
                    continue
                out.append(Answer(p, loc, _s(r.get("id")), _s(r.get("new_label")),
                                  _s(r.get("action")).lower(), _s(r.get("annotator")) or default_annotator,
                                  _s(r.get("time")), _s(r.get("note")),
                                  r.get("text") if "text" in r else None, image=_s(r.get("path")) or None))
    except UnicodeDecodeError as e:
        raise ImportValidationError([f"{p}: not UTF-8 text (byte {e.start}: {e.reason}); save the annotation "
                                     "file as UTF-8 (\"CSV UTF-8\")"]) from None
    except csv.Error as e:
        errors.append(f"{p}: line {reader.line_num}: not readable as CSV ({e})")
    if errors:
        raise ImportValidationError(errors)
    return out


def _read_jsonl(path: Path, default_annotator: str) -> list[Answer]:
    """One JSON object per line with at least ``id`` and ``new_label``."""
    p = str(path)
    out: list[Answer] = []
    errors = []
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImportValidationError([f"{p}: not UTF-8 text (byte {e.start}: {e.reason})"]) from None
    for i, ln in enumerate(content.splitlines()):
        if not ln.strip():
            continue
        try:
            r = json.loads(ln)
            if not isinstance(r, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            errors.append(f"{p}: line {i + 1}: not a JSON object ({e})")
            continue
        miss = [c for c in ("id", "new_label") if c not in r]
        if miss:
            errors.append(f"{p}: line {i + 1}: missing key(s) {miss}")
            continue
        if r.get("text") is not None and not isinstance(r.get("text"), str):
            errors.append(f"{p}: line {i + 1}: 'text' must be a string, got {type(r['text']).__name__}")
            continue
        out.append(Answer(p, f"line {i + 1}", _s(r.get("id")), _s(r.get("new_label")),
                          _s(r.get("action")).lower(), _s(r.get("annotator")) or default_annotator,
                          _s(r.get("time")), _s(r.get("note")), r.get("text"), image=_s(r.get("path")) or None))
    if errors:
        raise ImportValidationError(errors)
    return out


def _read_label_studio(path: Path, default_annotator: str) -> list[Answer]:
    """A Label Studio JSON export: a list of tasks, each with ``data`` and its ``annotations``."""
    p = str(path)
    out: list[Answer] = []
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ImportValidationError([f"{p}: not valid JSON ({e})"]) from None
    if not isinstance(tasks, list):
        raise ImportValidationError([f"{p}: expected a Label Studio export (a JSON list of tasks)"])
    errors = []
    for i, t in enumerate(tasks):
        data = t.get("data", {}) if isinstance(t, dict) else {}
        anns = t.get("annotations", []) if isinstance(t, dict) else []
        if not isinstance(data, dict) or not isinstance(anns, list):
            errors.append(f"{p}: task {i + 1}: 'data' must be an object and 'annotations' a list")
            continue
        for j, a in enumerate(anns):
            results = a.get("result", []) if isinstance(a, dict) else None
            if not isinstance(results, list) or not all(isinstance(x, dict) for x in results):
                errors.append(f"{p}: task {i + 1}, annotation {j + 1}: not a Label Studio annotation (expected "
                              "an object whose 'result' is a list of objects)")
                continue
            if a.get("was_cancelled"):
                continue
            label = action = note = ""
            for res in results:
                val = res.get("value", {}) if isinstance(res.get("value"), dict) else {}
                if res.get("from_name") == "label" and val.get("choices"):
                    label = _s(val["choices"][0])
                elif res.get("from_name") == "action" and val.get("choices"):
                    action = _s(val["choices"][0]).lower()
                elif res.get("from_name") == "note" and val.get("text"):
                    note = " ".join(_s(x) for x in val["text"])
            out.append(Answer(p, f"task {i + 1}, annotation {j + 1}", _s(data.get("id")), label,
                              action or ("add" if not _s(data.get("id")) else ""),
                              _ls_annotator(a) or default_annotator,
                              _s(a.get("updated_at") or a.get("created_at")), note, data.get("text"),
                              image=_s(data.get("path")) or None))
    if errors:
        raise ImportValidationError(errors)
    return out
