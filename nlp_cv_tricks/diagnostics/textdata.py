"""Read the labelled text files the diagnostics work on (probes and embedding plots).

Formats (``fmt="auto"`` picks by extension and content):

* ``kim2014``: ``<label> <sentence>`` per line (../shared/data/kim2014, SST-2, TREC, ...);
* ``thucnews``: ``<text>\\t<label>`` per line, no header (a ``.txt`` whose lines contain a tab);
* ``csv`` / ``tsv`` with a header, ``jsonl``/``json`` (records), ``parquet`` — read with pandas; columns are
  found by name (``text``/``text_a``/``sentence``/``sentence1``, ``text_pair``/``text_b``/``sentence2``,
  ``label``/``score``) or given explicitly.

With a text-pair column the data are *pairs* and a numeric label is a similarity score (STS-style) or a 0/1
match label. Bad input raises :class:`~nlp_cv_tricks.diagnostics._io.DiagnosticsError` naming the file, the
row and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ._io import DiagnosticsError

__all__ = ["LabelledTexts", "read_labelled_texts"]

_TEXT = ["text", "text_a", "sentence", "sentence1", "content", "title", "question1"]
_PAIR = ["text_pair", "text_b", "sentence2", "question2"]
_LABEL = ["label", "labels", "score", "similarity", "target", "is_duplicate"]


@dataclass
class LabelledTexts:
    texts: list
    labels: list
    pairs: Optional[list] = None
    path: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def numeric_labels(self) -> bool:
        try:
            [float(x) for x in self.labels]
            return True
        except (TypeError, ValueError):
            return False


def _detect(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".csv",):
        return "csv"
    if ext in (".tsv",):
        return "tsv"
    if ext in (".jsonl", ".json"):
        return "jsonl" if ext == ".jsonl" else "json"
    if ext in (".parquet", ".pq"):
        return "parquet"
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((ln for ln in f if ln.strip()), "")
    return "thucnews" if "\t" in first else "kim2014"


def read_labelled_texts(path: Union[str, os.PathLike], fmt: str = "auto", text_column: Optional[str] = None,
                        text_pair_column: Optional[str] = None, label_column: Optional[str] = None,
                        encoding: str = "utf-8") -> LabelledTexts:
    """Read a labelled text (or text-pair) file; see the module docstring for the formats."""
    p = Path(path)
    if not p.is_file():
        raise DiagnosticsError(f"{p}: no such data file")
    fmt = _detect(p) if fmt == "auto" else fmt
    pairs = None
    if fmt in ("kim2014", "thucnews"):
        texts, labels = _read_lines(p, fmt, encoding)
    elif fmt in ("csv", "tsv", "json", "jsonl", "parquet"):
        df = _read_table(p, fmt, encoding)
        cols = list(df.columns)
        tc = _pick_column(p, cols, text_column, _TEXT, "text")
        pc = _pick_column(p, cols, text_pair_column, _PAIR, "text pair", required=False)
        lc = _pick_column(p, cols, label_column, _LABEL, "label")
        texts, labels, pairs = _table_rows(p, fmt, df, tc, pc, lc)
    else:
        raise DiagnosticsError(f"{p}: unknown format {fmt!r} (expected auto, kim2014, thucnews, csv, tsv, json, "
                               f"jsonl or parquet)")
    if not texts:
        raise DiagnosticsError(f"{p}: no examples in the file")
    return LabelledTexts(texts=texts, labels=labels, pairs=pairs, path=str(p))


def _read_lines(p: Path, fmt: str, encoding: str) -> tuple[list, list]:
    """``<label> <sentence>`` (kim2014) or ``<text><TAB><label>`` (thucnews) lines; blank lines skipped."""
    texts, labels = [], []
    try:
        lines = p.read_text(encoding=encoding).splitlines()
    except UnicodeDecodeError as e:
        raise DiagnosticsError(f"{p}: not {encoding} text ({e.reason} at byte {e.start})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if fmt == "kim2014":
            label, _, text = line.strip().partition(" ")
            expected = "'<label> <sentence>'"
        else:
            text, _, label = line.rstrip("\n").rpartition("\t")
            expected = "'<text><TAB><label>'"
        if not label or not text.strip():
            raise DiagnosticsError(f"{p}:{i}: expected {expected}, got {line[:80]!r}")
        texts.append(text.strip())
        labels.append(label.strip())
    return texts, labels


def _read_table(p: Path, fmt: str, encoding: str):
    """A csv/tsv/json/jsonl/parquet file as a pandas DataFrame (errors name the file)."""
    import pandas as pd

    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(p, sep="," if fmt == "csv" else "\t", encoding=encoding, dtype=str,
                               keep_default_na=False, quoting=3 if fmt == "tsv" else 0)
        if fmt == "jsonl":
            return pd.read_json(p, lines=True, dtype=False)
        if fmt == "json":
            try:
                return pd.read_json(p, dtype=False)
            except ValueError:
                return pd.read_json(p, lines=True, dtype=False)
        return pd.read_parquet(p)
    except Exception as e:  # pandas raises many types; name the file
        raise DiagnosticsError(f"{p}: cannot be read as {fmt} ({type(e).__name__}: {e})") from None


def _pick_column(p: Path, cols: list, given: Optional[str], names: list, what: str,
                 required: bool = True) -> Optional[str]:
    """The column the user named, else the first of ``names`` present."""
    if given is not None:
        if given not in cols:
            raise DiagnosticsError(f"{p}: no column {given!r} for the {what}; columns are {cols}")
        return given
    for n in names:
        if n in cols:
            return n
    if required:
        raise DiagnosticsError(f"{p}: no {what} column (looked for {names}); columns are {cols}; "
                               f"name it with --{what.replace(' ', '-')}-column")
    return None


def _table_rows(p: Path, fmt: str, df, tc: str, pc: Optional[str], lc: str) -> tuple[list, list, Optional[list]]:
    """Texts, labels and (with a pair column) pairs of a table; an empty text or label names its row."""
    cols = list(df.columns)
    texts, labels = [], []
    header_rows = 2 if fmt in ("csv", "tsv") else 1  # file line of row 0 (after a header line)
    pairs = [] if pc else None
    for i, row in enumerate(df.itertuples(index=False)):
        rec = dict(zip(cols, row))
        t = rec[tc]
        if not isinstance(t, str) or not t.strip():
            raise DiagnosticsError(f"{p}: row {i + header_rows if fmt in ('csv', 'tsv') else i}: empty or non-text "
                                   f"value in column {tc!r}: {t!r}")
        lab = rec[lc]
        if lab is None or (isinstance(lab, str) and not lab.strip()) or (isinstance(lab, float) and lab != lab):
            raise DiagnosticsError(f"{p}: row {i + header_rows if fmt in ('csv', 'tsv') else i}: missing label in column {lc!r}")
        texts.append(t.strip())
        labels.append(str(lab).strip() if isinstance(lab, str) else lab)
        if pc:
            t2 = rec[pc]
            if not isinstance(t2, str) or not t2.strip():
                raise DiagnosticsError(f"{p}: row {i + header_rows if fmt in ('csv', 'tsv') else i}: empty or "
                                       f"non-text value in column {pc!r}: {t2!r}")
            pairs.append(t2.strip())
    return texts, labels, pairs
