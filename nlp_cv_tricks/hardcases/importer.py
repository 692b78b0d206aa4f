"""Import annotated hard cases as a new dataset version; validate every row; undo by dropping the version.

A *version store* is a directory of versions ``v0001``, ``v0002``, ... of one training file (the recipe's
``data.train_file``, "v0" = the original, which is only ever read). Each version holds:

* the training file in the original's format (kim2014, thucnews, csv, tsv, json/jsonl, parquet) and file name,
  with every column of the original kept, so a recipe trains on it with ``data.train_file=<version>/<name>``;
* ``ids.json``: the stable example id of each row (ids of the original are its row numbers; added examples get
  new ids), so dropped rows never shift ids;
* ``changes.jsonl``: one record per example touched: id, action (relabel, confirm, drop, add), original label
  (in the original file), previous label (in the parent version), new label, annotator(s), time, note, and the
  annotation file and row the answer came from;
* ``manifest.json``: parent version, sha256 of the original file, annotation files, counts, the conflict rule
  and every conflict with its resolution.

Image recipes (``image-classification``): the original is the training image folder or pixel file, and a
version is an image folder of links (or a pixel CSV) plus the pinned dev split, with the recipe overrides the
vision task needs to train on it in its manifest (see :mod:`.images`; :meth:`VersionStore.recipe_for`).

A version is built in a hidden temporary directory and renamed into place in one step, so an interrupted
import leaves no partial version. ``drop`` removes a version (refused while another version builds on it); its
name is retired (``dropped_versions.json``) and never given to other data.

Conflicting answers for one example from several annotators are resolved by a stated rule: ``majority``
(default; a tie leaves the example unchanged and is reported as unresolved), ``latest`` (newest time),
``first`` (first in file order), ``priority`` (the first annotator in a given order), or ``strict`` (any
conflict is a validation error).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from ..config import Recipe
from ..utils.io import WriteError, as_write_error, atomic_write_text
from ._common import atomic_write_json, atomic_write_jsonl, sha256_file
from .images import ImageSource, fingerprint_dir, id_of_version_file, is_image_recipe, load_image_file

__all__ = ["ImportValidationError", "VersionStore", "import_annotations", "read_annotations", "RULES"]

RULES = ("majority", "latest", "first", "priority", "strict")
ACTIONS = ("relabel", "confirm", "drop", "add")
_VERSION_RE = re.compile(r"v(\d{4,})")
DROPPED_FILE = "dropped_versions.json"  # names of dropped versions: never reused


class ImportValidationError(ValueError):
    """Rows of annotation files that cannot be imported; ``errors`` lists ``file: row N: reason`` strings."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        shown = "\n  ".join(self.errors[:50])
        more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__(f"{len(self.errors)} annotation error(s), nothing imported:\n  {shown}{more}")


# ---- the version store ------------------------------------------------------------------------------------
class VersionStore:
    """Versions of the recipe's training file under ``root`` (see the module docstring)."""

    def __init__(self, root, recipe: Recipe):
        if not recipe.data.train_file:
            raise ValueError("hardcases versions need a local data.train_file in the recipe")
        from ..data.root import resolve_data_paths

        recipe = resolve_data_paths(recipe)  # relative data paths: the current directory, then the data root
        self.root = Path(root)
        self.recipe = recipe
        self.original = Path(recipe.data.train_file)
        self.image = ImageSource(recipe) if is_image_recipe(recipe) else None
        if self.image is None and not self.original.is_file():
            raise FileNotFoundError(f"data.train_file {str(self.original)!r} does not exist")
        if self.image is not None and not self.original.exists():
            raise FileNotFoundError(f"data.train_file {str(self.original)!r} (an image folder or pixel file) "
                                    "does not exist")

    @property
    def kind(self) -> str:
        return "text" if self.image is None else "image"

    def original_sha(self) -> str:
        """sha256 of the original training file (of every file's path and content for an image folder)."""
        return fingerprint_dir(self.original) if self.original.is_dir() else sha256_file(self.original)

    # -- listing
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in self.root.iterdir()
                 if (m := _VERSION_RE.fullmatch(p.name)) and (p / "manifest.json").is_file()]
        return [n for _, n in sorted(found)]

    def latest(self) -> Optional[str]:
        names = self.names()
        return names[-1] if names else None

    def manifest(self, name: str) -> dict:
        path = self.root / name / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"no version {name!r} in {self.root} (versions: {', '.join(self.names()) or 'none'})")
        return json.loads(path.read_text(encoding="utf-8"))

    def train_file(self, name: Optional[str]) -> Path:
        if name in (None, "v0", "original"):
            return self.original
        return self.root / name / self.manifest(name)["train_file"]

    def dev_file(self, name: Optional[str]) -> Optional[Path]:
        """The dev data a version evaluates on: its pinned dev split, else the recipe's ``data.dev_file``."""
        if name not in (None, "v0", "original"):
            dev = self.manifest(name).get("dev_file")
            if dev:
                return self.root / name / dev
        return Path(self.recipe.data.dev_file) if self.recipe.data.dev_file else None

    def overrides(self, name: str) -> dict:
        """The recipe keys that make a recipe train on version ``name``: its training file, its pinned dev split
        (which replaces a dev split cut by ``data.dev_fraction``), and the image options of its files."""
        m = self.manifest(name)
        over: dict = {"data.train_file": str(self.train_file(name))}
        if m.get("dev_file"):
            over["data.dev_file"] = str(self.root / name / m["dev_file"])
            if self.recipe.data.dev_fraction is not None:
                over["data.dev_fraction"] = None
        over.update(m.get("recipe_overrides") or {})
        return over

    def recipe_for(self, name: Optional[str]) -> Recipe:
        """A copy of the recipe that trains on version ``name`` (``None``/``v0``: the original): its training
        file, and for image versions the pinned dev split and the image options of the version's files."""
        from ..config import recipe_from_dict, recipe_to_dict

        if name in (None, "v0", "original"):
            return copy.deepcopy(self.recipe)
        d = recipe_to_dict(self.recipe)
        for key, value in self.overrides(name).items():
            cur = d
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(cur.get(part), dict):
                    cur[part] = {}
                cur = cur[part]
            cur[parts[-1]] = value
        return recipe_from_dict(d, self.recipe.source)

    def ids(self, name: Optional[str]) -> list[int]:
        if name in (None, "v0", "original"):
            if self.image is not None:
                return list(range(len(self.image.splits.train)))
            return list(range(len(self._read(self.original))))
        return json.loads((self.root / name / "ids.json").read_text())

    def changes(self, name: Optional[str], chain: bool = False) -> list[dict]:
        """The changes of a version (with ``chain``: of it and all its ancestors, oldest first)."""
        out: list[dict] = []
        while name not in (None, "v0", "original"):
            path = self.root / name / "changes.jsonl"
            recs = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            out = recs + out
            if not chain:
                break
            name = self.manifest(name).get("parent")
        return out

    def children(self, name: str) -> list[str]:
        return [n for n in self.names() if self.manifest(n).get("parent") == name]

    def drop(self, name: str) -> None:
        """Remove a version (undo its import). Refused while another version has it as parent."""
        self.manifest(name)
        kids = self.children(name)
        if kids:
            raise ValueError(f"version {name} is the parent of {', '.join(kids)}; drop those first")
        # the name is retired first: a later import never gives it to other data (a result or a note that says
        # "v0002" keeps meaning the dropped version)
        from ..config import atomic_write_text

        retired = sorted(set(self.dropped()) | {name}, key=lambda n: int(_VERSION_RE.fullmatch(n).group(1)))
        atomic_write_text(self.root / DROPPED_FILE, json.dumps(retired, indent=1) + "\n")
        trash = self.root / f".dropped-{name}-{uuid.uuid4().hex[:8]}"
        os.replace(self.root / name, trash)
        shutil.rmtree(trash)

    def dropped(self) -> list[str]:
        """Names of dropped versions (never used again)."""
        path = self.root / DROPPED_FILE
        if not path.is_file():
            return []
        try:
            names = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise ValueError(f"{path}: not a JSON list of dropped version names; fix or delete it") from None
        return [n for n in names if isinstance(n, str) and _VERSION_RE.fullmatch(n)]

    # -- data
    def fmt(self) -> str:
        if self.image is not None:
            return "imagefolder" if self.image.kind == "files" else "image_csv"
        from ..data.text import resolve_format

        return resolve_format(str(self.original), self.recipe.data.format)

    def _read(self, path: Path):
        from ..data.text import load_split

        return load_split(str(path), self.recipe.data)[0]

    def label_set(self):
        from ..data.text import LabelMap

        if self.image is not None:
            names = self.image.label_names
            return LabelMap(list(names), list(names))
        ds = self._read(self.original)
        return LabelMap.from_train(ds[self.recipe.data.label_column], self.recipe.data)

    def original_labels(self) -> list:
        """Raw labels of the original's rows (index = example id)."""
        if self.image is not None:
            return self.image.table()[1]
        return self._read(self.original)[self.recipe.data.label_column]

    def _image_source(self, name: Optional[str]) -> ImageSource:
        if name in (None, "v0", "original"):
            return self.image
        return ImageSource(self.recipe_for(name))

    def table(self, name: Optional[str]) -> tuple[list[int], list[str], list, dict]:
        """(ids, texts, raw labels, all columns) of a version. Image recipes: the "texts" are the image file
        paths ("" for pixel sources) and the columns are ``image`` (paths or arrays) and ``labels`` (names)."""
        if self.image is not None:
            refs, labels, cols = self._image_source(name).table()
            ids = self.ids(name)
            if len(ids) != len(labels):
                raise ValueError(f"version {name}: {len(ids)} ids for {len(labels)} images")
            return ids, refs, labels, cols
        ds = self._read(self.train_file(name))
        cols = {c: ds[c] for c in ds.column_names}
        d = self.recipe.data
        texts = [str(t) for t in cols.get(d.text_column, [""] * len(ds))]
        return self.ids(name), texts, cols[d.label_column], cols

    def _write_train(self, path: Path, cols: dict, fmt: str) -> None:
        d = self.recipe.data
        n = len(next(iter(cols.values()))) if cols else 0
        if fmt == "kim2014":
            atomic_write_text(path, "".join(f"{cols[d.label_column][i]} {cols[d.text_column][i]}\n" for i in range(n)))
        elif fmt == "thucnews":
            atomic_write_text(path, "".join(f"{cols[d.text_column][i]}\t{cols[d.label_column][i]}\n" for i in range(n)))
        elif fmt in ("json", "jsonl"):
            atomic_write_jsonl(path, [{c: v[i] for c, v in cols.items()} for i in range(n)])
        elif fmt in ("csv", "tsv"):
            import pandas as pd

            df = pd.DataFrame(cols)
            text = (df.to_csv(index=False) if fmt == "csv" else
                    df.to_csv(index=False, sep="\t", quoting=csv.QUOTE_NONE, escapechar="\\"))
            atomic_write_text(path, text)
        elif fmt == "parquet":
            import pandas as pd

            tmp = path.with_name(f".{path.name}.tmp")
            pd.DataFrame(cols).to_parquet(tmp, index=False)
            os.replace(tmp, path)
        else:
            raise ValueError(f"cannot write a version in format {fmt!r}")

    def create(self, parent: Optional[str], new_cols: dict, ids: list[int], changes: list[dict],
               manifest: dict, _write=None) -> str:
        """Write a new version atomically: build it in a hidden directory, then rename it into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        for p in self.root.glob(".incoming-*"):  # leftovers of an interrupted import
            shutil.rmtree(p, ignore_errors=True)
        used = self.names() + self.dropped()  # a dropped version's name is never given to other data
        number = max((int(_VERSION_RE.fullmatch(n).group(1)) for n in used), default=0) + 1
        name = f"v{number:04d}"
        tmp = self.root / f".incoming-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            files = {"train_file": self.original.name}
            if self.image is not None:
                if _write is not None:
                    _write(tmp / "train", new_cols, self.fmt())
                files = self.image.write_version(tmp, new_cols, ids, self.image.pinned_dev())
                if self.image.kind == "files":  # rows in the loader's order: sorted file paths
                    ids = [id_of_version_file(p) for p in sorted(
                        str(q.relative_to(tmp / "train")) for q in (tmp / "train").glob("*/*"))]
            else:
                (_write or self._write_train)(tmp / files["train_file"], new_cols, self.fmt())
            atomic_write_json(tmp / "ids.json", ids)
            atomic_write_jsonl(tmp / "changes.jsonl", changes)
            atomic_write_json(tmp / "manifest.json", {"name": name, "parent": parent, **files,
                                                      "format": self.fmt(), "original": str(self.original),
                                                      **manifest})
            os.replace(tmp, self.root / name)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            err = as_write_error(e, self.root / name)
            if err is not None:  # disk full, permission: named by the version, not the temporary folder
                raise WriteError(self.root / name, err.reason, f"the new dataset version {name}") from e
            raise
        return name


# ---- reading annotation files -----------------------------------------------------------------------------
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


def read_annotations(path, default_annotator: str = "") -> list[Answer]:  # noqa: C901  (complex today; the list only shrinks)
    """Answers of one annotation file: CSV, JSONL (as exported), or a Label Studio JSON export."""
    path = Path(path)
    p = str(path)
    if not path.is_file():
        raise ImportValidationError([f"{p}: file does not exist"])
    out: list[Answer] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from ..data.text import csv_fields_any_length

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
    elif suffix == ".jsonl":
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
    elif suffix == ".json":
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
    else:
        raise ImportValidationError([f"{p}: unknown annotation file type {suffix!r} (expected .csv, .jsonl or "
                                     "a Label Studio export .json)"])
    return out


# ---- import -------------------------------------------------------------------------------------------------
def _resolve(rule: str, answers: list[Answer], priority: Sequence[str]) -> tuple[Optional[Answer], str]:
    keys = [(a.action, a.new_label) for a in answers]
    if rule == "majority":
        counts = Counter(keys).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            return None, "unresolved tie: example left unchanged"
        win = counts[0][0]
        return next(a for a in answers if (a.action, a.new_label) == win), f"majority {counts[0][1]}/{len(answers)}"
    if rule == "latest":
        return max(answers, key=lambda a: a.time), "latest time"
    if rule == "first":
        return answers[0], "first in file order"
    if rule == "priority":
        order = {n: i for i, n in enumerate(priority)}
        best = min(answers, key=lambda a: order.get(a.annotator, len(order)))
        if best.annotator not in order:
            return None, "no annotator in the priority list: example left unchanged"
        return best, f"priority of annotator {best.annotator}"
    raise ValueError(rule)


def import_annotations(files, recipe: Recipe, versions_dir, base: Optional[str] = "latest", rule: str = "majority",  # noqa: C901
                       priority: Sequence[str] = (), default_annotator: str = "", now: Optional[str] = None,
                       _write=None) -> dict:
    """Validate the annotation files and write a new version on top of ``base`` (``latest`` by default, ``v0``
    for the original). Returns a report: version name, counts, conflicts, unanswered rows."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if rule == "priority" and not priority:
        raise ValueError("rule 'priority' needs the annotators in order (priority=[...])")
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    store = VersionStore(versions_dir, recipe)
    base = store.latest() if base == "latest" else (None if base in (None, "v0", "original") else base)
    original_sha = store.original_sha()
    if base is not None:
        recorded = store.manifest(base).get("original_sha256")
        if recorded and recorded != original_sha:
            raise ValueError(f"{store.original} changed since version {base} was made (sha256 differs); versions "
                             "are edits of that exact file")
    labels = store.label_set()
    by_name = {n: i for i, n in enumerate(labels.names)}
    by_name.update({r: i for i, r in enumerate(labels.raw)})
    ids, texts, raw_labels, cols = store.table(base)
    row_of = {i: r for r, i in enumerate(ids)}
    orig_labels = store.original_labels()
    is_image = store.kind == "image"
    image_like = cols["image"][0] if is_image and store.image.kind == "arrays" and cols["image"] else None
    int_labels = all(isinstance(v, int) for v in raw_labels)

    def name_of(raw) -> str:
        from ..data.text import _label_key

        return labels.names[by_name[_label_key(raw)]]

    existing = {" ".join(str(t).split()).lower(): i for i, t in zip(ids, texts) if isinstance(t, str)}
    answers: list[Answer] = []
    errors: list[str] = []
    # a file already applied in the chain the new version builds on (base and its ancestors) would count twice;
    # a sibling branch (e.g. a new import on v0 next to the version that holds it) never had its answers
    chain, name = [], base
    while name not in (None, "v0", "original"):
        chain.append(name)
        name = store.manifest(name).get("parent")
    imported = {sha: name for name in chain
                for sha in (store.manifest(name).get("annotation_sha256") or {}).values()}
    for f in files:
        if Path(f).is_file() and sha256_file(f) in imported:
            errors.append(f"{f}: this exact file was already imported as version {imported[sha256_file(f)]}; "
                          "importing it again would apply its answers twice (drop that version first to redo it)")
            continue
        try:
            answers += read_annotations(f, default_annotator)
        except ImportValidationError as e:
            errors += e.errors
    valid: list[Answer] = []
    seen: dict[tuple, Answer] = {}
    unanswered = 0
    stamp = now or datetime.now(timezone.utc).isoformat(timespec="seconds")
    for a in answers:
        if a.action and a.action not in ACTIONS:
            errors.append(f"{a.loc}: action {a.action!r} is not one of {', '.join(ACTIONS)} (or empty)")
            continue
        if not a.action and not a.new_label:
            unanswered += 1
            continue
        if a.new_label and a.new_label not in by_name:
            errors.append(f"{a.loc}: new_label {a.new_label!r} is not in the label set "
                          f"({', '.join(labels.names)})")
            continue
        if a.action == "add" or (not a.id and a.new_label):
            if a.id and a.id.lstrip("-").isdigit() and int(a.id) in row_of:
                errors.append(f"{a.loc}: action 'add' with id {a.id} that already exists; leave id empty to add")
                continue
            if is_image:
                if not a.image:
                    errors.append(f"{a.loc}: action 'add' needs the image file in column 'path'")
                    continue
                try:
                    added = load_image_file(a.image, image_like)
                except ValueError as e:
                    errors.append(f"{a.loc}: action 'add': {e}")
                    continue
                a.text = os.path.realpath(a.image)
                a.extra["image"] = added if image_like is not None else a.text
            if not isinstance(a.text, str) or not a.text.strip():
                errors.append(f"{a.loc}: action 'add' needs a non-empty text")
                continue
            if not a.new_label:
                errors.append(f"{a.loc}: action 'add' needs a new_label")
                continue
            dup = existing.get(" ".join(a.text.split()).lower())
            if dup is not None:
                errors.append(f"{a.loc}: action 'add' of a text that is already example id {dup} (an emptied id "
                              f"cell?); to change its label answer for id {dup}")
                continue
            a.action = "add"
            key = ("add", " ".join(a.text.split()).lower(), a.annotator)
        else:
            if not a.id.lstrip("-").isdigit() or int(a.id) not in row_of:
                errors.append(f"{a.loc}: unknown id {a.id!r} (not in version {base or 'v0'} of {store.original})")
                continue
            r = row_of[int(a.id)]
            if is_image and a.image and texts[r] and os.path.realpath(a.image) != texts[r]:
                errors.append(f"{a.loc}: image path of id {a.id} ({a.image}) differs from the dataset's "
                              f"({texts[r]}) (annotation file of another dataset or version?)")
                continue
            if a.text is not None and _s(a.text) and " ".join(_s(a.text).split()) != " ".join(texts[r].split()):
                errors.append(f"{a.loc}: text of id {a.id} differs from the dataset's text (annotation file of "
                              "another dataset or version?)")
                continue
            current = name_of(raw_labels[r])
            new = labels.names[by_name[a.new_label]] if a.new_label else ""
            if not a.action:
                a.action = "confirm" if new == current else "relabel"
            elif a.action == "relabel" and (not new or new == current):
                errors.append(f"{a.loc}: action 'relabel' needs a new_label different from the current "
                              f"label {current!r}")
                continue
            elif a.action == "confirm" and new and new != current:
                errors.append(f"{a.loc}: action 'confirm' but new_label {new!r} differs from the current "
                              f"label {current!r}")
                continue
            a.new_label = new if a.action != "drop" else ""
            if a.action == "confirm":
                a.new_label = current
            key = ("id", a.id, a.annotator)
        if key in seen:
            errors.append(f"{a.loc}: duplicate answer for {'id ' + a.id if key[0] == 'id' else 'the added text'} "
                          f"by annotator {a.annotator or '(none)'!r} (also at {seen[key].loc})")
            continue
        seen[key] = a
        if not a.time:
            a.time = stamp
        valid.append(a)
    # group by example, resolve conflicts
    groups: dict[tuple, list[Answer]] = {}
    for a in valid:
        k = ("id", a.id) if a.action != "add" else ("add", " ".join(a.text.split()).lower())
        groups.setdefault(k, []).append(a)
    conflicts, decided = [], []
    for k, grp in groups.items():
        if len({(a.action, a.new_label) for a in grp}) == 1:
            decided.append((grp[0], grp))
            continue
        if rule == "strict":
            errors.append(f"conflicting answers for {'id ' + k[1] if k[0] == 'id' else 'an added text'}: "
                          + "; ".join(f"{a.loc}: {a.annotator or '(none)'} -> {a.action} {a.new_label}" for a in grp)
                          + " (rule 'strict')")
            continue
        win, how = _resolve(rule, grp, priority)
        conflicts.append({"example": k[1], "answers": [{"annotator": a.annotator, "action": a.action,
                                                         "new_label": a.new_label, "time": a.time, "at": a.loc}
                                                        for a in grp],
                          "rule": rule, "resolution": how,
                          "chosen": None if win is None else {"action": win.action, "new_label": win.new_label}})
        if win is not None:
            decided.append((win, grp))
    if not errors and not decided:
        errors.append(f"{', '.join(map(str, files))}: no answer to import ({unanswered} unanswered rows"
                      + (f", {len(conflicts)} unresolved conflicts" if conflicts else "")
                      + "): fill new_label or action, then import")
    if errors:
        raise ImportValidationError(errors)
    # apply
    new_cols = {c: list(v) for c, v in cols.items()}
    new_ids = list(ids)
    drop_rows = set()
    next_id = max([store.manifest(n).get("next_id", 0) for n in store.names()] + [len(orig_labels), max(ids, default=-1) + 1])
    changes = []
    lab_col, txt_col = ("labels", "image") if is_image else (recipe.data.label_column, recipe.data.text_column)
    for win, grp in decided:
        agree = [a.annotator for a in grp if (a.action, a.new_label) == (win.action, win.new_label)]
        rec = {"action": win.action, "new_label": win.new_label or None, "annotator": ",".join(x for x in agree if x),
               "time": win.time, "note": " | ".join(a.note for a in grp if a.note), "source": win.loc,
               "imported_at": stamp}
        raw_new = None
        if win.new_label:
            raw_new = labels.raw[by_name[win.new_label]]
            raw_new = int(raw_new) if int_labels and raw_new.lstrip("-").isdigit() else raw_new
        if win.action == "add":
            eid = next_id
            next_id += 1
            for c in new_cols:
                new_cols[c].append((win.extra["image"] if is_image else win.text) if c == txt_col
                                   else raw_new if c == lab_col else None)
            new_ids.append(eid)
            changes.append({"id": eid, "original_label": None, "previous_label": None, "text": win.text, **rec})
            continue
        eid = int(win.id)
        r = row_of[eid]
        prev = name_of(raw_labels[r])
        orig = name_of(orig_labels[eid]) if 0 <= eid < len(orig_labels) else None
        if win.action == "relabel":
            new_cols[lab_col][r] = raw_new
        elif win.action == "drop":
            drop_rows.add(r)
        changes.append({"id": eid, "original_label": orig, "previous_label": prev, **rec})
    if drop_rows:
        keep = [r for r in range(len(new_ids)) if r not in drop_rows]
        new_cols = {c: [v[r] for r in keep] for c, v in new_cols.items()}
        new_ids = [new_ids[r] for r in keep]
    counts = Counter(c["action"] for c in changes)
    manifest = {"created": stamp, "original_sha256": original_sha, "annotation_files": [str(f) for f in files],
                "annotation_sha256": {str(f): sha256_file(f) for f in files}, "rule": rule,
                "priority": list(priority), "counts": {a: counts.get(a, 0) for a in ACTIONS},
                "unanswered_rows": unanswered, "conflicts": conflicts, "n_examples": len(new_ids),
                "next_id": next_id}
    name = store.create(base, new_cols, new_ids, changes, manifest, _write=_write)
    return {"version": name, "parent": base, "path": str(store.root / name), **manifest}
