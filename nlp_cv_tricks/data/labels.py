"""Labels of a text-classification file: how a raw value is keyed (``1``, ``1.0`` and `` 1 `` are one label;
``True``/``true`` too), the :class:`LabelMap` from raw values to model ids and display names, the label ids of a
file's values, and the warning about one class spelled several ways. Light (standard library), shared by the
``datasets`` reader (:mod:`.text`) and the line-file reader (:mod:`.lines`)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..config import DataConfig
from .errors import DataError, _row_desc

__all__ = ["LabelMap", "label_ids", "warn_label_spellings"]

logger = logging.getLogger(__name__)

_INT_VALUED_RE = re.compile(r"(-?[0-9]+)\.0*")  # ASCII digits: str.isdigit() also accepts '²', which int() refuses


def _label_key(v) -> str:
    """The key of a label value: its text without surrounding spaces; ``true``/``false`` in lower case (a CSV
    or JSON boolean, or the word in any case); integer-valued numbers (``1``, ``1.0``) as the integer."""
    if isinstance(v, bool):  # a column of true/false: keep the words
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    if s.lower() in ("true", "false"):
        return s.lower()
    m = _INT_VALUED_RE.fullmatch(s)
    return str(int(m.group(1))) if m else s


@dataclass
class LabelMap:
    """Raw label values (as strings) in model order, and their display names."""

    raw: list[str]
    names: list[str]

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.raw)

    @classmethod
    def from_train(cls, values: Sequence, cfg: DataConfig) -> "LabelMap":
        keys = sorted({_label_key(v) for v in values},
                      key=lambda s: (0, int(s), s) if s.lstrip("-").isdigit() else (1, 0, s))
        names = _label_names(cfg)
        if names is None:
            return cls(keys, keys)
        # integer labels index the names (THUCNews class.txt, SST-2 [negative, positive])
        out = []
        where = f"{cfg.train_file}: " if cfg.train_file else ""
        for k in keys:
            if not k.lstrip("-").isdigit():
                raise DataError(f"{where}label {k!r} is not an integer: data.label_names names integer labels "
                                f"(0 = {names[0]!r}, ...); with text labels leave data.label_names out")
            if not 0 <= int(k) < len(names):
                raise DataError(f"{where}label {k!r} has no entry in data.label_names ({len(names)} names, "
                                f"0..{len(names) - 1})")
            out.append(str(names[int(k)]))
        return cls(keys, out)

    @classmethod
    def from_model_config(cls, id2label: dict) -> "LabelMap":
        names = [str(id2label[i]) for i in sorted(int(k) for k in id2label)]
        return cls(list(names), names)


def _label_names(cfg: DataConfig) -> Optional[list[str]]:
    if cfg.label_names:
        return [str(n) for n in cfg.label_names]
    if cfg.label_names_file:
        p = cfg.label_names_file
        if not os.path.isfile(p):
            raise DataError(f"data.label_names_file {p!r} does not exist")
        names = [ln.strip() for ln in Path(p).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not names:
            raise DataError(f"{p}: no label names (expected one name per line)")
        return names
    return None



def label_ids(values: Sequence, path: str, fmt: str, cfg: DataConfig, label_map: LabelMap,
              train_path: Optional[str] = None) -> list[int]:
    """The model ids of a file's raw label ``values``; a value absent from the label map is an error naming the
    file and the row. Accepts both the raw values (``0``/``1``) and the display names (``negative``/``positive``)."""
    index = {k: i for i, k in enumerate(label_map.raw)}
    index.update({n: i for i, n in enumerate(label_map.names)})
    ids = []
    for i, v in enumerate(values):
        if v is None:
            raise DataError(f"{path}: {_row_desc(fmt, i, path, cfg.encoding)}: missing label in column "
                            f"{cfg.label_column!r}")
        key = _label_key(v)
        if key not in index and (isinstance(v, bool) or key in ("true", "false")):
            # booleans against a model trained on 0/1 (or True/False): match those as well
            b = v if isinstance(v, bool) else key == "true"
            key = next((k for k in (str(int(b)), str(b)) if k in index), key)
        if key not in index:
            seen = f"the training file {train_path}" if train_path else "the model's label set"
            shown = f"{v!r} (read as a boolean)" if isinstance(v, bool) else repr(key)
            raise DataError(f"{path}: {_row_desc(fmt, i, path, cfg.encoding)}: label {shown} never seen in {seen} "
                            f"(known: {', '.join(label_map.names[:20])})")
        ids.append(index[key])
    return ids


def warn_label_spellings(raw: Sequence[str], where: str) -> list[str]:
    """Warn when the training labels look like one class spelled several ways: values that differ only in
    case or spaces (``Positive``/``positive``), or integer labels next to names (``0``/``1`` with
    ``negative``/``positive``). Each spelling trains as its own class. Returns the warnings."""
    out = []
    groups: dict[str, list[str]] = {}
    for k in raw:
        groups.setdefault(" ".join(str(k).split()).casefold(), []).append(str(k))
    same = [v for v in groups.values() if len(v) > 1]
    if same:
        out.append("labels that differ only in case or spaces: " + "; ".join(" / ".join(map(repr, v)) for v in same))
    ints = [k for k in raw if str(k).lstrip("-").isdigit()]
    names = [k for k in raw if not str(k).lstrip("-").isdigit()]
    if ints and names:
        out.append(f"integer labels ({', '.join(ints[:5])}) next to named ones ({', '.join(names[:5])})")
    for w in out:
        logger.warning("%s: %s; each spelling trains as a separate class (%d classes: %s). If they are the same "
                       "class, write it one way in the file", where, w, len(raw), ", ".join(map(str, raw[:10])))
    return out

