"""The line formats the package reads itself (no ``datasets`` builder reads label-first lines): ``kim2014``
(``<label> <text>``) and ``thucnews`` (``<text><TAB><label>``), the check that every text is text, and
:func:`load_line_splits`: train/dev/test line files read, checked and label-encoded as
:func:`nlp_cv_tricks.data.text.load_text_classification` does, as plain lists (what the compiled FastText loop
trains on without importing ``datasets`` or ``torch``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from ..config import DataConfig
from .errors import (ENCODING_HINT, LINE_FORMATS, DataError, _first_undecodable_line, _row_desc, check_data_file,
                     no_rows, resolve_format)
from .labels import LabelMap, label_ids, warn_label_spellings

__all__ = ["read_line_file", "check_text_values", "LineSplits", "line_splits_reason", "load_line_splits"]

_INT_RE = re.compile(r"-?[0-9]+")


def read_line_file(path: str, fmt: str, cfg: DataConfig) -> tuple[list[str], list[int]]:
    """``kim2014``: ``<label> <text>``; ``thucnews``: ``<text>\\t<label>``: the texts and integer labels, in file
    order; a line that is not of the format is an error naming the file and the line."""
    texts, labels = [], []
    try:
        with open(path, encoding=cfg.encoding, newline="") as f:
            # split on newlines only (\n or \r\n): str.splitlines() and universal newlines also break on a lone
            # \r, NEL (0x85) and other separators that occur inside sentences of some corpora (rt-polarity.all)
            lines = [ln.rstrip("\r") for ln in f.read().split("\n")]
        if lines and lines[-1] == "":
            lines.pop()
        if lines and lines[0].startswith("\ufeff"):  # a byte-order mark (files saved by some editors)
            lines[0] = lines[0][1:]
    except UnicodeDecodeError as e:
        line = _first_undecodable_line(path, cfg.encoding)
        raise DataError(f"{path}: {f'line {line}: ' if line else ''}not valid {cfg.encoding} text ({e.reason}); "
                        f"{ENCODING_HINT}") from None
    for i, line in enumerate(lines):
        if not line.strip():
            raise DataError(f"{path}: line {i + 1}: empty line; expected "
                            + ("'<label> <text>'" if fmt == "kim2014" else "'<text><TAB><label>'"))
        if fmt == "kim2014":
            label, sep, text = line.partition(" ")
            if not sep or not _INT_RE.fullmatch(label):
                raise DataError(f"{path}: line {i + 1}: expected '<integer label> <text>', got {line[:60]!r}")
        else:
            text, sep, label = line.rpartition("\t")
            if not sep or not _INT_RE.fullmatch(label.strip()):
                raise DataError(f"{path}: line {i + 1}: expected '<text><TAB><integer label>', got {line[:60]!r}")
        texts.append(text)
        labels.append(int(label))
    return texts, labels


def check_text_values(values: Sequence, column: str, path: str, fmt: str, cfg: DataConfig) -> None:
    """Every value of a text column is a non-blank string (else an error naming up to five rows)."""
    bad = [i for i, v in enumerate(values) if v is None or not isinstance(v, str) or not v.strip()]
    if bad:
        rows = ", ".join(_row_desc(fmt, i, path, cfg.encoding) for i in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError(f"{path}: {rows}{more}: empty or non-text value in column {column!r}")


@dataclass
class LineSplits:
    """Texts and label ids of each split (``dev``/``test`` None when absent), the label map, the files read."""

    train: tuple[list[str], list[int]]
    dev: Optional[tuple[list[str], list[int]]]
    test: Optional[tuple[list[str], list[int]]]
    label_map: LabelMap
    sources: dict


def line_splits_reason(cfg: DataConfig) -> Optional[str]:
    """Why :func:`load_line_splits` cannot read these data settings (None when it can): it reads local line files
    with one text column, without a carved dev split."""
    if cfg.format == "hub" or (cfg.hub_name and not cfg.train_file):
        return "data from the Hub"
    if cfg.text_pair_column:
        return "text pairs (data.text_pair_column)"
    if cfg.dev_fraction is not None:
        return "a carved dev split (data.dev_fraction)"
    for key in ("train_file", "dev_file", "test_file"):
        path = getattr(cfg, key)
        try:
            fmt = resolve_format(path, cfg.format) if path else None
        except DataError:
            fmt = "unknown"
        if fmt is not None and fmt not in LINE_FORMATS:
            return f"data.{key} is not a kim2014/thucnews line file"
    return None


def load_line_splits(cfg: DataConfig) -> LineSplits:
    """Read and check train (dev, test) line files in the order and with the messages of
    :func:`~nlp_cv_tricks.data.text.load_text_classification`; labels are encoded with the training file's label
    map. Only for settings :func:`line_splits_reason` accepts."""
    reason = line_splits_reason(cfg)
    if reason is not None:
        raise ValueError(f"load_line_splits reads local line files only, not {reason}")
    raw = {}
    for role, path in (("train", cfg.train_file), ("dev", cfg.dev_file), ("test", cfg.test_file)):
        if not path:
            continue
        check_data_file(path)
        fmt = resolve_format(path, cfg.format)
        raw[role] = (read_line_file(path, fmt, cfg), path, fmt)
    if "train" not in raw:
        raise DataError("no training data: set data.train_file (or data.hub_name)")
    for role, ((texts, _), path, fmt) in raw.items():
        if not texts:
            raise DataError(no_rows(path, fmt))
        check_text_values(texts, cfg.text_column, path, fmt, cfg)
    (_, train_labels), train_path, _ = raw["train"]
    label_map = LabelMap.from_train(train_labels, cfg)
    warn_label_spellings(label_map.raw, train_path)
    if len(label_map) < 2:
        raise DataError(f"{train_path}: only one label value ({label_map.raw}) in column {cfg.label_column!r}; "
                        "classification needs at least two")
    out = {}
    for role, ((texts, labels), path, fmt) in raw.items():
        ids = label_ids(labels, path, fmt, cfg, label_map, train_path if role != "train" else None)
        if role == "train" and cfg.max_train_samples:
            texts, ids = texts[:cfg.max_train_samples], ids[:cfg.max_train_samples]
        if role != "train" and cfg.max_eval_samples:
            texts, ids = texts[:cfg.max_eval_samples], ids[:cfg.max_eval_samples]
        out[role] = (texts, ids)
    return LineSplits(out["train"], out.get("dev"), out.get("test"), label_map,
                      {role: path for role, (_, path, _) in raw.items()})
