"""Where a data file is wrong: the package's :class:`DataError` and how an error names the row (and, in a CSV
file whose quoted fields span lines, the line) of a file. Light: the standard library only, so readers that do not
need ``datasets`` report errors the same way."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

__all__ = ["DataError", "ENCODING_HINT", "LINE_FORMATS", "EXT_FORMATS", "csv_fields_any_length", "no_rows",
           "resolve_format", "check_data_file"]

# the line formats the package parses itself: ``<label> <text>`` and ``<text><TAB><label>``
LINE_FORMATS = {"kim2014", "thucnews"}
EXT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}

# what to do about a file in another encoding: the recipe's key for training, the option for eval/predict
ENCODING_HINT = "set data.encoding in the recipe, or --encoding for eval/predict (e.g. gbk, latin-1, utf-16)"


class DataError(ValueError):
    """Bad input data; the message names the file, the row and the reason."""


def _row_desc(fmt: str, i: int, path: Optional[str] = None, encoding: str = "utf-8") -> str:
    if fmt == "csv" and path is not None:  # a quoted field may span lines: count them (only on errors)
        starts = _csv_row_lines(path, encoding)
        if i < len(starts):
            return f"row {i + 1} (line {starts[i]})"
    if fmt in ("csv", "tsv"):
        return f"row {i + 1} (line {i + 2})"
    if fmt in LINE_FORMATS or fmt == "jsonl":
        return f"line {i + 1}"
    return f"row {i + 1}"


class csv_fields_any_length:
    """Inside: Python's ``csv`` reads fields of any length (its default limit is 131,072 characters, and a longer
    field -- a whole document in one cell -- would be reported as broken quoting). The limit is process-wide,
    so it is restored on exit."""

    def __enter__(self):
        import csv
        import sys

        self._old = csv.field_size_limit()
        limit = sys.maxsize
        while True:  # the limit is a C long: 2**31 - 1 on some platforms
            try:
                csv.field_size_limit(limit)
                break
            except OverflowError:
                limit //= 2
        return self

    def __exit__(self, *exc):
        import csv

        csv.field_size_limit(self._old)
        return False


def _csv_row_lines(path: str, encoding: str) -> list[int]:
    """The line on which each data row of a CSV file starts (after the header)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    return _csv_row_lines_cached(path, encoding, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _csv_row_lines_cached(path: str, encoding: str, _mtime: int, _size: int) -> list[int]:
    import csv

    starts = []
    try:
        with open(path, encoding=encoding, newline="") as f, csv_fields_any_length():
            reader = csv.reader(f)
            next(reader, None)
            line = reader.line_num + 1
            for _ in reader:
                starts.append(line)
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return starts


def _first_undecodable_line(path: str, encoding: str) -> Optional[int]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return n
            except LookupError:
                return None
    return None



def no_rows(path: str, fmt: str) -> str:
    if fmt in ("csv", "tsv"):
        return f"{path}: the file has a header but no rows"
    return f"{path}: no rows"


def resolve_format(path: str, fmt: str) -> str:
    """``data.format`` of a file: as given, or (``auto``) from its extension."""
    if fmt != "auto":
        return fmt
    ext = Path(path).suffix.lower()
    if ext in EXT_FORMATS:
        return EXT_FORMATS[ext]
    raise DataError(
        f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; set data.format to one of "
        "csv, tsv, json, jsonl, parquet, kim2014 ('<label> <text>' lines), thucnews ('text<TAB>label' lines)"
    )


def check_data_file(path: str) -> None:
    """A data file that is a directory or does not exist is an error saying which (and where relative paths are
    read from)."""
    if os.path.isdir(path):
        raise DataError(f"data file {path!r} is a directory; expected a csv, tsv, json, jsonl or parquet file "
                        "(or a kim2014/thucnews line file)")
    if not os.path.isfile(path):
        rel = "" if os.path.isabs(path) else f" (relative paths are read from the current directory, {os.getcwd()})"
        raise DataError(f"data file {path!r} does not exist{rel}")
