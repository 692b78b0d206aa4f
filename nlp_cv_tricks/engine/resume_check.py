"""Resuming checks the recipe: the run a checkpoint continues must be the run that wrote it.

Each checkpoint's ``trainer_state.json`` records the recipe it was trained under (``recipe``), the content hash
of each local data file (``data_files``: sha256 and size; for a folder, a hash of its file list and sizes) and
the label names of the model (``label_names``). Before a resumed run does any work, :func:`check_resume`
compares them with the current recipe and data:

* **refused** -- anything that changes the model, the data, the label set or the saved position (the batch
  arithmetic): ``model.*``, ``task``, ``tricks`` and ``callbacks`` (an observer moved from ``tricks`` to
  ``callbacks`` with the plug-ins' order unchanged is no change), data files whose content changed, every other
  ``data.*`` key (columns, ``label_names``, ``max_length``, ...), and the optimisation settings of ``train.*`` (``seed``,
  ``batch_size``, ``gradient_accumulation_steps``, optimizer and schedule, ...). The error lists each changed
  key with its old and new value and what to do. With ``train.resume_force=true`` the run continues anyway and
  the change is recorded;
* **safe, with a note** -- ``train.epochs``/``train.max_steps`` (extension), evaluation, logging and saving
  intervals, ``train.early_stopping_patience``, ``train.eval_batch_size``, ``train.progress_bar``, ``train.cpu``
  (the device), ``train.nonfinite``, ``data.num_workers``, ``data.max_eval_samples``, ``data.tensor_batches``,
  ``name``, ``output.*``, and a data file that moved with the same content (``data.root`` included: the files'
  content is what is compared).

The run's ``recipe.yaml`` stays as the run started; every resume that changed something is appended to
``resume_changes.jsonl`` in the run directory (step, checkpoint, forced or not, ``{key: [old, new]}``) and to
the ``resume_changes`` list of later checkpoints' ``trainer_state.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config import Recipe, RecipeError, recipe_to_dict
from ..utils.io import sha256_file

logger = logging.getLogger(__name__)

__all__ = ["ResumeError", "data_fingerprint", "check_resume", "recipe_changes", "RESUME_CHANGES_FILE"]

RESUME_CHANGES_FILE = "resume_changes.jsonl"
DATA_FILE_KEYS = ("data.train_file", "data.dev_file", "data.test_file", "data.label_names_file")
# changes that leave the model, the data, the label set and the saved position as they were
SAFE_KEYS = {"name", "train.epochs", "train.max_steps", "train.eval_steps", "train.eval_each_epoch", "train.cpu",
             "train.nonfinite",
             "train.logging_steps", "train.save_steps", "train.save_total_limit", "train.early_stopping_patience",
             "train.progress_bar", "train.eval_batch_size", "data.num_workers", "data.max_eval_samples",
             "data.tensor_batches", "data.root"}  # data.root: where the files are; their content is compared
SAFE_PREFIXES = ("output.",)
IGNORED_KEYS = {"train.resume_from", "train.resume_force"}


class ResumeError(RecipeError):
    """A resume that would not continue the same run (or cannot load); the message says what changed and what
    to do."""


def _file_hash(path: Path) -> dict:
    if path.is_dir():
        h = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for p in files:
            h.update(f"{p.relative_to(path).as_posix()}\0{p.stat().st_size}\n".encode("utf-8", "surrogateescape"))
        return {"kind": "folder", "sha256": h.hexdigest(), "files": len(files)}
    return {"kind": "file", "sha256": sha256_file(path), "bytes": path.stat().st_size}


def data_fingerprint(recipe: Recipe) -> dict[str, dict]:
    """``{"data.train_file": {"path", "sha256", ...}, ...}`` for the recipe's local data files (and folders):
    ``path`` as the recipe writes it, the hash of the file it names (relative paths found as the data loader
    finds them: the current directory, then the data root)."""
    try:
        from ..data.root import resolve_data_paths

        resolved = resolve_data_paths(recipe)
    except Exception:  # noqa: BLE001 - data given to the trainer directly, or not found: hash what exists
        resolved = recipe
    out = {}
    for key in DATA_FILE_KEYS:
        field = key.split(".", 1)[1]
        value, found = getattr(recipe.data, field, None), getattr(resolved.data, field, None)
        if isinstance(found, str) and found and os.path.exists(found):
            try:
                out[key] = {"path": value, **_file_hash(Path(found))}
            except OSError:  # unreadable now: the data loader reports it
                continue
    return out


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict) and d:
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = d
    return out


def _merge(defaults: dict, saved: dict) -> dict:
    """``saved`` over ``defaults``, section by section (a dict-valued key such as ``model.kwargs`` is taken whole)."""
    out = dict(defaults)
    for k, v in saved.items():
        d = defaults.get(k)
        out[k] = _merge(d, v) if isinstance(d, dict) and d and isinstance(v, dict) else v
    return out


def _saved_recipe(state: dict, checkpoint: Path) -> tuple[Optional[dict], str]:
    if isinstance(state.get("recipe"), dict):
        return state["recipe"], f"{checkpoint}/trainer_state.json"
    path = checkpoint.parent.parent / "recipe.yaml"  # a checkpoint of an earlier version: the run's recipe
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None, str(path)
    return (data if isinstance(data, dict) else None), str(path)


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _same_plugins(old: dict, new: dict) -> None:
    """Observers that moved from ``tricks:`` to ``callbacks:`` without changing the order the plug-ins run in
    (tricks, then callbacks) are no change: drop both keys when the lists joined are equal."""
    def joined(flat: dict) -> list:
        return [*(flat.get("tricks") or []), *(flat.get("callbacks") or [])]

    if joined(old) == joined(new):
        for flat in (old, new):
            flat.pop("tricks", None)
            flat.pop("callbacks", None)


def _same_spelling(a: dict, b: dict) -> tuple[dict, dict]:
    """``a`` and ``b`` with each task option in the same place: one that ``model.kwargs`` holds in one recipe (its
    deprecated spelling) and ``task_options`` in the other is moved to ``task_options``."""
    def spots(d):
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        kw, opts = model.get("kwargs"), d.get("task_options")
        return (kw if isinstance(kw, dict) else {}), (opts if isinstance(opts, dict) else {})

    def moved(d, keys):
        if not keys:
            return d
        kw, opts = spots(d)
        return {**d, "model": {**d["model"], "kwargs": {k: v for k, v in kw.items() if k not in keys}},
                "task_options": {**opts, **{k: kw[k] for k in keys}}}

    (kwa, opa), (kwb, opb) = spots(a), spots(b)
    return (moved(a, {k for k in kwa if k in opb and k not in opa}),
            moved(b, {k for k in kwb if k in opa and k not in opb}))


def recipe_changes(saved: dict, current: Recipe, saved_data: Optional[dict] = None,
                   current_data: Optional[dict] = None) -> tuple[dict, dict]:
    """``(refused, safe)``: each ``{key: (old, new)}``. Keys missing from ``saved`` (a recipe of an earlier
    version) count as their default value; task options count as the same in either spelling (``model.kwargs``,
    deprecated, or ``task_options``)."""
    saved, now = _same_spelling({k: v for k, v in saved.items() if k != "source"}, recipe_to_dict(current))
    old = _flatten(_merge(recipe_to_dict(Recipe()), saved))
    new = _flatten(now)
    _same_plugins(old, new)
    refused, safe = {}, {}
    for key in sorted(set(old) | set(new)):
        if key in IGNORED_KEYS:
            continue
        a, b = old.get(key), new.get(key)
        if key in DATA_FILE_KEYS:
            fa, fb = (saved_data or {}).get(key), (current_data or {}).get(key)
            if fa and fb:
                if fa["sha256"] != fb["sha256"]:
                    what = "content" if a == b else "file and content"
                    refused[f"{key} ({what})"] = (f"{fa['path']} sha256 {fa['sha256'][:12]}",
                                                  f"{fb['path']} sha256 {fb['sha256'][:12]}")
                elif a != b:
                    safe[f"{key} (moved, same content)"] = (a, b)
                continue
            if bool(fa) != bool(fb) and a == b and saved_data is not None:
                refused[f"{key} (content)"] = ("recorded" if fa else "absent", "absent" if fa else "present")
                continue
        if a == b:
            continue
        if key in SAFE_KEYS or key.startswith(SAFE_PREFIXES):
            safe[key] = (a, b)
        else:
            refused[key] = (a, b)
    return refused, safe


def check_resume(recipe: Recipe, checkpoint: Path, state: dict, label_names: Optional[list],
                 current_data: dict, run_dir: Path) -> Optional[dict]:
    """Compare the checkpoint's recipe, data and labels with the current ones (see the module docstring).

    Raises :class:`ResumeError` on a refused change unless ``train.resume_force``; returns the change record to
    keep (``{"step", "checkpoint", "forced", "changes"}``) or None when nothing changed."""
    saved, source = _saved_recipe(state, checkpoint)
    if saved is None:
        logger.warning("resuming from %s: its recipe (%s) cannot be read, so the current recipe is not checked "
                       "against it", checkpoint, source)
        return None
    saved_data = state.get("data_files") if isinstance(state.get("data_files"), dict) else None
    refused, safe = recipe_changes(saved, recipe, saved_data, current_data)
    saved_labels = state.get("label_names")
    if saved_labels is not None and label_names is not None and list(map(str, saved_labels)) != list(
            map(str, label_names)):
        refused["label names (from the data)"] = (list(saved_labels), list(label_names))
    if not refused and not safe:
        return None
    lines = "\n".join(f"  {k}: {_show(a)} -> {_show(b)}" for k, (a, b) in {**refused, **safe}.items()
                      if k in refused)
    force = bool(getattr(recipe.train, "resume_force", False))
    if refused and not force:
        unchecked = "" if saved_data is not None else (" (this checkpoint is from an earlier version and records "
                                                        "no data hashes: data files were compared by path only)")
        raise ResumeError(
            f"train.resume_from: cannot resume {checkpoint} with this recipe; these settings differ from the "
            f"ones it was trained with ({source}) and change the model, the data, the label set or the saved "
            f"position{unchecked}:\n{lines}\n"
            "Undo these changes to continue the run, start a new run in another output.dir, or set "
            "train.resume_force=true to continue anyway (the change is recorded in "
            f"{RESUME_CHANGES_FILE} and the checkpoints)")
    if refused:
        logger.warning("train.resume_force=true: resuming %s although these settings changed (recorded in %s):\n%s",
                       checkpoint, run_dir / RESUME_CHANGES_FILE, lines)
    if safe:
        logger.info("resuming %s with changed settings that keep the run the same (recorded in %s): %s",
                    checkpoint, RESUME_CHANGES_FILE,
                    "; ".join(f"{k}: {_show(a)} -> {_show(b)}" for k, (a, b) in safe.items()))
    return {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "step": state.get("global_step"),
            "checkpoint": checkpoint.name, "forced": bool(refused),
            "changes": {k: [a, b] for k, (a, b) in {**refused, **safe}.items()}}


def load_error(checkpoint: Path, err: Exception) -> ResumeError:
    """A clear error for a checkpoint whose tensors do not fit the model built from the current recipe."""
    first = str(err).strip().splitlines()
    detail = next((ln.strip() for ln in first if "size mismatch" in ln or "Missing key" in ln
                   or "Unexpected key" in ln), first[0] if first else type(err).__name__)
    return ResumeError(
        f"train.resume_from: the checkpoint {checkpoint} does not fit the model or optimizer built from the current "
        f"recipe ({detail[:300]}); the model, its vocabulary or the optimizer changed (model.*, the training data, "
        "train.optimizer). Resume with the recipe and data the run started with, or start a new run in another "
        "output.dir")
