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

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from ..config import Recipe
from ._common import sha256_file
from .annotations import Answer, ImportValidationError, _s, read_annotations
from .images import load_image_file
from .versions import VersionStore

__all__ = ["ImportValidationError", "VersionStore", "import_annotations", "read_annotations", "RULES"]

RULES = ("majority", "latest", "first", "priority", "strict")
ACTIONS = ("relabel", "confirm", "drop", "add")


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


def import_annotations(files, recipe: Recipe, versions_dir, base: Optional[str] = "latest", rule: str = "majority",
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
    b = _read_base(store, base)
    answers, errors = _read_files(files, _imported_in_chain(store, base), default_annotator)
    stamp = now or datetime.now(timezone.utc).isoformat(timespec="seconds")
    valid, unanswered = _validate(answers, b, stamp, errors)
    decided, conflicts = _decide(valid, rule, priority, errors)
    if not errors and not decided:
        errors.append(f"{', '.join(map(str, files))}: no answer to import ({unanswered} unanswered rows"
                      + (f", {len(conflicts)} unresolved conflicts" if conflicts else "")
                      + "): fill new_label or action, then import")
    if errors:
        raise ImportValidationError(errors)
    new_cols, new_ids, changes, next_id = _apply(decided, b, recipe, stamp)
    counts = Counter(c["action"] for c in changes)
    manifest = {"created": stamp, "original_sha256": original_sha, "annotation_files": [str(f) for f in files],
                "annotation_sha256": {str(f): sha256_file(f) for f in files}, "rule": rule,
                "priority": list(priority), "counts": {a: counts.get(a, 0) for a in ACTIONS},
                "unanswered_rows": unanswered, "conflicts": conflicts, "n_examples": len(new_ids),
                "next_id": next_id}
    name = store.create(base, new_cols, new_ids, changes, manifest, _write=_write)
    return {"version": name, "parent": base, "path": str(store.root / name), **manifest}


@dataclass
class _Base:
    """The version an import builds on (``name`` None: the original), read once."""

    store: VersionStore
    name: Optional[str]
    labels: Any  # data.text.LabelMap
    by_name: dict  # label name or raw spelling -> index
    ids: list
    texts: list
    raw_labels: list
    cols: dict
    orig_labels: list
    image_like: Any  # an image of the pixel source (shape/dtype of an added image), else None
    row_of: dict = field(default_factory=dict)  # example id -> row
    existing: dict = field(default_factory=dict)  # normalised text -> example id

    @property
    def is_image(self) -> bool:
        return self.store.kind == "image"

    def name_of(self, raw) -> str:
        from ..data.text import _label_key

        return self.labels.names[self.by_name[_label_key(raw)]]


def _read_base(store: VersionStore, base: Optional[str]) -> _Base:
    labels = store.label_set()
    by_name = {n: i for i, n in enumerate(labels.names)}
    by_name.update({r: i for i, r in enumerate(labels.raw)})
    ids, texts, raw_labels, cols = store.table(base)
    orig_labels = store.original_labels()
    is_image = store.kind == "image"
    image_like = cols["image"][0] if is_image and store.image.kind == "arrays" and cols["image"] else None
    return _Base(store, base, labels, by_name, ids, texts, raw_labels, cols, orig_labels, image_like,
                 row_of={i: r for r, i in enumerate(ids)},
                 existing={" ".join(str(t).split()).lower(): i for i, t in zip(ids, texts) if isinstance(t, str)})


def _imported_in_chain(store: VersionStore, base: Optional[str]) -> dict:
    """``{sha256: version}`` of the annotation files applied in ``base`` and its ancestors.

    A file already applied in the chain the new version builds on would count twice; a sibling branch (e.g. a
    new import on v0 next to the version that holds it) never had its answers."""
    chain, name = [], base
    while name not in (None, "v0", "original"):
        chain.append(name)
        name = store.manifest(name).get("parent")
    return {sha: name for name in chain for sha in (store.manifest(name).get("annotation_sha256") or {}).values()}


def _read_files(files: list, imported: dict, default_annotator: str) -> tuple[list[Answer], list[str]]:
    """The answers of every file, and the errors of all of them (a file imported before is one)."""
    answers: list[Answer] = []
    errors: list[str] = []
    for f in files:
        if Path(f).is_file() and sha256_file(f) in imported:
            errors.append(f"{f}: this exact file was already imported as version {imported[sha256_file(f)]}; "
                          "importing it again would apply its answers twice (drop that version first to redo it)")
            continue
        try:
            answers += read_annotations(f, default_annotator)
        except ImportValidationError as e:
            errors += e.errors
    return answers, errors


def _validate(answers: list[Answer], b: _Base, stamp: str, errors: list[str]) -> tuple[list[Answer], int]:
    """The valid answers (action and label completed, time stamped) and the number of unanswered rows; every
    invalid answer adds an error naming its file and row."""
    valid: list[Answer] = []
    seen: dict[tuple, Answer] = {}
    unanswered = 0
    for a in answers:
        if a.action and a.action not in ACTIONS:
            errors.append(f"{a.loc}: action {a.action!r} is not one of {', '.join(ACTIONS)} (or empty)")
            continue
        if not a.action and not a.new_label:
            unanswered += 1
            continue
        if a.new_label and a.new_label not in b.by_name:
            errors.append(f"{a.loc}: new_label {a.new_label!r} is not in the label set "
                          f"({', '.join(b.labels.names)})")
            continue
        if a.action == "add" or (not a.id and a.new_label):
            key, err = _check_added(a, b)
        else:
            key, err = _check_edit(a, b)
        if err:
            errors.append(err)
            continue
        if key in seen:
            errors.append(f"{a.loc}: duplicate answer for {'id ' + a.id if key[0] == 'id' else 'the added text'} "
                          f"by annotator {a.annotator or '(none)'!r} (also at {seen[key].loc})")
            continue
        seen[key] = a
        if not a.time:
            a.time = stamp
        valid.append(a)
    return valid, unanswered


def _check_added(a: Answer, b: _Base) -> tuple[Optional[tuple], Optional[str]]:
    """An answer that adds an example: ``(key, None)``, or ``(None, error)``."""
    if a.id and a.id.lstrip("-").isdigit() and int(a.id) in b.row_of:
        return None, f"{a.loc}: action 'add' with id {a.id} that already exists; leave id empty to add"
    if b.is_image:
        if not a.image:
            return None, f"{a.loc}: action 'add' needs the image file in column 'path'"
        try:
            added = load_image_file(a.image, b.image_like)
        except ValueError as e:
            return None, f"{a.loc}: action 'add': {e}"
        a.text = os.path.realpath(a.image)
        a.extra["image"] = added if b.image_like is not None else a.text
    if not isinstance(a.text, str) or not a.text.strip():
        return None, f"{a.loc}: action 'add' needs a non-empty text"
    if not a.new_label:
        return None, f"{a.loc}: action 'add' needs a new_label"
    dup = b.existing.get(" ".join(a.text.split()).lower())
    if dup is not None:
        return None, (f"{a.loc}: action 'add' of a text that is already example id {dup} (an emptied id "
                      f"cell?); to change its label answer for id {dup}")
    a.action = "add"
    return ("add", " ".join(a.text.split()).lower(), a.annotator), None


def _check_edit(a: Answer, b: _Base) -> tuple[Optional[tuple], Optional[str]]:
    """An answer about an existing example (relabel, confirm, drop; empty action: inferred from the label):
    ``(key, None)``, or ``(None, error)``."""
    if not a.id.lstrip("-").isdigit() or int(a.id) not in b.row_of:
        return None, f"{a.loc}: unknown id {a.id!r} (not in version {b.name or 'v0'} of {b.store.original})"
    r = b.row_of[int(a.id)]
    if b.is_image and a.image and b.texts[r] and os.path.realpath(a.image) != b.texts[r]:
        return None, (f"{a.loc}: image path of id {a.id} ({a.image}) differs from the dataset's "
                      f"({b.texts[r]}) (annotation file of another dataset or version?)")
    if a.text is not None and _s(a.text) and " ".join(_s(a.text).split()) != " ".join(b.texts[r].split()):
        return None, (f"{a.loc}: text of id {a.id} differs from the dataset's text (annotation file of "
                      "another dataset or version?)")
    current = b.name_of(b.raw_labels[r])
    new = b.labels.names[b.by_name[a.new_label]] if a.new_label else ""
    if not a.action:
        a.action = "confirm" if new == current else "relabel"
    elif a.action == "relabel" and (not new or new == current):
        return None, (f"{a.loc}: action 'relabel' needs a new_label different from the current "
                      f"label {current!r}")
    elif a.action == "confirm" and new and new != current:
        return None, (f"{a.loc}: action 'confirm' but new_label {new!r} differs from the current "
                      f"label {current!r}")
    a.new_label = new if a.action != "drop" else ""
    if a.action == "confirm":
        a.new_label = current
    return ("id", a.id, a.annotator), None


def _decide(valid: list[Answer], rule: str, priority: Sequence[str],
            errors: list[str]) -> tuple[list[tuple[Answer, list[Answer]]], list[dict]]:
    """Group the answers by example and resolve conflicts by ``rule``: ``(winner, its group)`` per decided
    example, and a record of every conflict (``strict``: an error each)."""
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
    return decided, conflicts


def _apply(decided: list[tuple[Answer, list[Answer]]], b: _Base, recipe: Recipe,
           stamp: str) -> tuple[dict, list, list[dict], int]:
    """The new version's columns and ids, its change records and the next free example id."""
    store = b.store
    int_labels = all(isinstance(v, int) for v in b.raw_labels)
    new_cols = {c: list(v) for c, v in b.cols.items()}
    new_ids = list(b.ids)
    drop_rows = set()
    next_id = max([store.manifest(n).get("next_id", 0) for n in store.names()]
                  + [len(b.orig_labels), max(b.ids, default=-1) + 1])
    changes = []
    lab_col, txt_col = ("labels", "image") if b.is_image else (recipe.data.label_column, recipe.data.text_column)
    for win, grp in decided:
        agree = [a.annotator for a in grp if (a.action, a.new_label) == (win.action, win.new_label)]
        rec = {"action": win.action, "new_label": win.new_label or None, "annotator": ",".join(x for x in agree if x),
               "time": win.time, "note": " | ".join(a.note for a in grp if a.note), "source": win.loc,
               "imported_at": stamp}
        raw_new = None
        if win.new_label:
            raw_new = b.labels.raw[b.by_name[win.new_label]]
            raw_new = int(raw_new) if int_labels and raw_new.lstrip("-").isdigit() else raw_new
        if win.action == "add":
            eid = next_id
            next_id += 1
            for c in new_cols:
                new_cols[c].append((win.extra["image"] if b.is_image else win.text) if c == txt_col
                                   else raw_new if c == lab_col else None)
            new_ids.append(eid)
            changes.append({"id": eid, "original_label": None, "previous_label": None, "text": win.text, **rec})
            continue
        eid = int(win.id)
        r = b.row_of[eid]
        prev = b.name_of(b.raw_labels[r])
        orig = b.name_of(b.orig_labels[eid]) if 0 <= eid < len(b.orig_labels) else None
        if win.action == "relabel":
            new_cols[lab_col][r] = raw_new
        elif win.action == "drop":
            drop_rows.add(r)
        changes.append({"id": eid, "original_label": orig, "previous_label": prev, **rec})
    if drop_rows:
        keep = [r for r in range(len(new_ids)) if r not in drop_rows]
        new_cols = {c: [v[r] for r in keep] for c, v in new_cols.items()}
        new_ids = [new_ids[r] for r in keep]
    return new_cols, new_ids, changes, next_id
