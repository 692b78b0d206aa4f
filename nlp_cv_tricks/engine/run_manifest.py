"""The run manifest: which files and folders of a run directory this package wrote, so that
``output.overwrite=true`` removes exactly those and nothing else.

``.nlp_cv_tricks_run.json`` is written with the first output of a run (its ``recipe.yaml``) and updated (atomically) as the run creates outputs.
Each entry is a path relative to the run directory and a kind:

``file``
    a file the run wrote (``recipe.yaml``, ``history.jsonl``, ``metrics.json``);
``tree``
    a folder the run writes as a whole (``best/``, ``final/``, ``checkpoints/step_N/``, ``logs/nlp-cv-tricks/``):
    removed with its content;
``dir``
    a folder the run created to hold trees (``checkpoints/``, ``logs/``): removed only when it is empty after
    the listed entries inside it went, so a folder of the user's placed in it (``checkpoints/my_own/``) stays.
    A folder that existed before the run is never listed.

Rules of :func:`prepare_run_dir`:

* a missing or empty directory: the run starts there with a fresh manifest;
* a non-empty directory, not resuming, without ``output.overwrite``: refused;
* ``output.overwrite=true``: the entries of the manifest are removed, nothing else; a non-empty directory
  without a manifest is refused (nothing there is known to be a run's output) -- except a run directory of
  an earlier version of this package, which wrote no manifest: it is recognised by its resolved
  ``recipe.yaml`` (what only a run's ``save_recipe`` writes: the seven sections with every option of the
  first version filled in, defaults included; a recipe written by hand lists a few) together with its
  ``history.jsonl``, ``metrics.json`` or a checkpoint, and only when every file in the directory is one that
  version writes, each checked by its content (:func:`legacy_entries`); anything else there is named, to be
  moved away first, and nothing is removed;
* the lock file of a running command (:mod:`.run_lock`) is never an output and never removed here;
* the recipe being trained from is never removed or replaced: a run whose recipe file is one of the outputs
  it would rewrite is refused before anything is touched;
* resuming keeps the manifest (a directory of an earlier version gets one, from :func:`legacy_entries`) and
  removes the temporary files an interrupted save left in the run's folders (:func:`remove_stale_temp_files`;
  a checkpoint written again is cleaned the same way before the write).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

from ..config import atomic_write_text
from .run_lock import LOCK_NAME

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".nlp_cv_tricks_run.json"
KINDS = ("file", "tree", "dir")
# the top-level keys of a recipe.yaml this package writes (recipe_to_dict)
_RECIPE_KEYS = {"name", "task", "data", "model", "train", "tricks", "output"}
# the resolved-recipe marker: the options of the first version, which a run's recipe.yaml lists in full (every
# default written out by save_recipe) in every version since; a hand-written recipe lists only the few it sets
_RESOLVED_SECTION_KEYS = {
    "data": {"train_file", "dev_file", "test_file", "format", "hub_name", "hub_config", "train_split", "dev_split",
             "test_split", "text_column", "text_pair_column", "label_column", "label_names", "label_names_file",
             "encoding", "max_length", "group_by_length", "max_train_samples", "max_eval_samples", "num_workers"},
    "model": {"name", "tokenizer", "from_scratch", "config_overrides", "kwargs", "gradient_checkpointing",
              "revision"},
    "train": {"seed", "epochs", "max_steps", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
              "optimizer", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
              "lr_scheduler", "warmup_ratio", "warmup_steps", "max_grad_norm", "mixed_precision", "logging_steps",
              "eval_steps", "eval_each_epoch", "metric", "greater_is_better", "early_stopping_patience",
              "save_steps", "save_total_limit", "resume_from", "nonfinite", "cpu", "progress_bar"},
    "output": {"dir", "overwrite", "report_to", "save_best"},
}

__all__ = ["MANIFEST_NAME", "RunManifest", "RunDirError", "prepare_run_dir", "legacy_entries",
           "unlisted_paths", "remove_stale_temp_files"]


class RunDirError(FileExistsError):
    """The output directory cannot be used as asked; the message says why and what to do."""


class RunManifest:
    """The manifest of one run directory. Only the main process writes it (``enabled=False`` elsewhere)."""

    def __init__(self, run_dir: Union[str, os.PathLike], entries: Optional[dict[str, str]] = None,
                 created: Optional[str] = None, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.entries: dict[str, str] = dict(entries or {})
        self.created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.enabled = enabled

    @property
    def path(self) -> Path:
        return self.run_dir / MANIFEST_NAME

    @classmethod
    def load(cls, run_dir: Union[str, os.PathLike]) -> Optional["RunManifest"]:
        """The manifest of ``run_dir``, or None when there is none. An unreadable one is an error (never guessed)."""
        path = Path(run_dir) / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["entries"]
            if not isinstance(entries, dict) or not all(
                    isinstance(k, str) and v in KINDS for k, v in entries.items()):
                raise ValueError("bad entries")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise RunDirError(f"{path}: not a readable run manifest ({e}); nothing was removed. Delete the run's "
                              "outputs yourself or choose another output.dir") from None
        for rel in entries:
            _check_relative(rel, path)
        return cls(run_dir, entries, data.get("created"))

    def save(self) -> None:
        if not self.enabled:
            return
        data = {"about": "outputs of an nlp-cv-tricks run in this directory; output.overwrite=true removes these "
                         "and nothing else",
                "created": self.created, "entries": dict(sorted(self.entries.items()))}
        atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")

    def add(self, rel: str, kind: str = "tree") -> None:
        """Record ``rel`` (relative to the run directory) as written by this run; its parent folders that do not
        exist yet are recorded as ``dir``. Call it before the output is written, so a crash mid-write leaves it
        listed. A no-op for entries already listed and on processes other than the main one."""
        if not self.enabled:
            return
        assert kind in KINDS, kind
        rel = Path(rel).as_posix()
        changed = False
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in self.entries and not (self.run_dir / parent).exists():
                self.entries[parent] = "dir"
                changed = True
        if self.entries.get(rel) != kind and not (kind == "dir" and rel in self.entries):
            if kind == "dir" and (self.run_dir / rel).exists():
                pass  # a folder that was there before the run is not the run's
            else:
                self.entries[rel] = kind
                changed = True
        if changed:
            self.save()

    def remove_outputs(self) -> list[str]:
        """Remove the listed entries (files and trees, then the run's own folders that are left empty) and the
        manifest itself. Returns what was removed."""
        gone = []
        for rel, kind in sorted(self.entries.items(), key=lambda kv: -kv[0].count("/")):
            if kind == "dir":
                continue
            p = self.run_dir / rel
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
                gone.append(rel)
            elif p.exists() or p.is_symlink():
                p.unlink()
                gone.append(rel)
        for rel in sorted((r for r, k in self.entries.items() if k == "dir"), key=lambda r: -r.count("/")):
            p = self.run_dir / rel
            if p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
                p.rmdir()
                gone.append(rel)
        if self.path.exists():
            self.path.unlink()
        self.entries = {}
        return gone


# temporary files of an interrupted write: ``.tmpXXXXXX`` (safetensors writes through Rust's tempfile crate) and
# ``.NAME.XXXXXXXX.tmp`` (:func:`nlp_cv_tricks.config.atomic_write_bytes`)
_TEMP_RE = re.compile(r"\.tmp[A-Za-z0-9_]{6}|\..+\.[A-Za-z0-9_]{8}\.tmp")


def remove_stale_temp_files(folder: Union[str, os.PathLike], recursive: bool = True) -> list[Path]:
    """Remove the temporary files an interrupted save left in ``folder`` (a checkpoint or model folder the run
    writes, before it is written again or resumed from). Only names of the two temporary-file patterns the
    package's writers use are touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in (folder.rglob(".*") if recursive else folder.glob(".*"))
             if p.is_file() and not p.is_symlink() and _TEMP_RE.fullmatch(p.name)]
    for p in found:
        p.unlink()
    if found:
        logger.info("removed %d temporary file(s) of an interrupted save from %s: %s", len(found), folder,
                    ", ".join(p.name for p in found[:5]))
    return found


def _check_relative(rel: str, where: Path) -> None:
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts or rel == MANIFEST_NAME:
        raise RunDirError(f"{where}: entry {rel!r} is not a path inside the run directory; nothing was removed")


def _is_resolved_recipe(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and _RECIPE_KEYS <= set(data) and all(
        isinstance(data.get(section), dict) and keys <= set(data[section])
        for section, keys in _RESOLVED_SECTION_KEYS.items())


def legacy_entries(run_dir: Union[str, os.PathLike]) -> Optional[dict[str, str]]:
    """The outputs of a run written by an earlier version of this package (no manifest), or None when
    ``run_dir`` does not look like one. Only what that version writes is taken, each checked by its content:
    ``recipe.yaml`` (a resolved recipe), ``history.jsonl``, ``metrics.json``, ``best/`` and ``final/`` (with a
    ``config.json``), their ``.tmp``/``.old`` leftovers, ``checkpoints/step_N/`` (with a
    ``trainer_state.json``), ``logs/nlp-cv-tricks/`` and ``eval_predictions/step_N/`` (with a
    ``predictions.json``); ``checkpoints/``, ``logs/`` and ``eval_predictions/`` only as folders removed when
    left empty. Whether anything else is in the directory is :func:`unlisted_paths`."""
    d = Path(run_dir)
    if not _is_resolved_recipe(d / "recipe.yaml"):
        return None
    ckpts = [p for p in (d / "checkpoints").glob("step_*")
             if re.fullmatch(r"step_\d+", p.name) and (p / "trainer_state.json").is_file()] \
        if (d / "checkpoints").is_dir() else []
    if not ((d / "history.jsonl").is_file() or (d / "metrics.json").is_file() or ckpts):
        return None
    out = {"recipe.yaml": "file"}
    for name in ("history.jsonl", "metrics.json"):
        if (d / name).is_file():
            out[name] = "file"
    for name in ("best", "final"):
        if (d / name / "config.json").is_file():
            out[name] = "tree"
        for suffix in (".tmp", ".old"):
            if (d / (name + suffix)).is_dir():
                out[name + suffix] = "tree"
    if ckpts:
        out["checkpoints"] = "dir"
        out.update({f"checkpoints/{p.name}": "tree" for p in ckpts})
    if (d / "logs" / "nlp-cv-tricks").is_dir():
        out["logs"] = "dir"
        out["logs/nlp-cv-tricks"] = "tree"
    preds = [p for p in (d / "eval_predictions").glob("step_*") if re.fullmatch(r"step_\d+", p.name)
             and (p / "predictions.json").is_file()] if (d / "eval_predictions").is_dir() else []
    if preds:  # a question-answering run's predictions at each evaluation
        out["eval_predictions"] = "dir"
        out.update({f"eval_predictions/{p.name}": "tree" for p in preds})
    return out


def unlisted_paths(run_dir: Union[str, os.PathLike], entries: dict[str, str]) -> list[str]:
    """The files and folders of ``run_dir`` that ``entries`` do not cover (a ``tree`` covers its content, a
    ``dir`` only itself), outermost first; the manifest and a lock file are not counted."""
    d = Path(run_dir)
    out = []

    def walk(folder: Path, rel: str) -> None:
        for p in sorted(folder.iterdir()):
            r = f"{rel}{p.name}"
            if not rel and p.name in (MANIFEST_NAME, LOCK_NAME):
                continue
            kind = entries.get(r)
            if kind in ("file", "tree"):
                continue
            if kind == "dir" and p.is_dir() and not p.is_symlink():
                walk(p, r + "/")
                continue
            out.append(r + ("/" if p.is_dir() else ""))

    if d.is_dir():
        walk(d, "")
    return out


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _check_recipe_source(out: Path, entries: dict[str, str], recipe_source: Optional[str]) -> None:
    """A fresh run rewrites ``recipe.yaml`` and the listed entries: refuse when the recipe being trained from is
    one of them."""
    if not recipe_source or not os.path.isfile(recipe_source):
        return
    src = Path(recipe_source).resolve()
    rewritten = [out / rel for rel, kind in entries.items() if kind != "dir"] + [
        out / name for name in ("recipe.yaml", "history.jsonl", "metrics.json", "best", "final", "best.tmp",
                                "best.old", "final.tmp", "final.old")]
    if _inside(src, (out / "checkpoints").resolve()) and re.fullmatch(
            r"step_\d+", src.relative_to((out / "checkpoints").resolve()).parts[0]):
        rewritten.append(src)
    for p in rewritten:
        p = p.resolve()
        if src == p or _inside(src, p):
            raise RunDirError(
                f"the recipe being trained from, {recipe_source}, is an output of a run in {out} "
                f"({p.relative_to(out.resolve()).as_posix()}) that this run would replace; copy it elsewhere "
                f"(e.g. cp {recipe_source} my_recipe.yaml) and train from the copy, or choose another output.dir")


def prepare_run_dir(out: Union[str, os.PathLike], *, resuming: bool, overwrite: bool,
                    recipe_source: Optional[str] = None) -> RunManifest:
    """Make ``out`` ready for a run (see the module docstring) and return its manifest (saved on its first
    entry for a fresh run, at once when resuming)."""
    out = Path(out)
    nonempty = out.is_dir() and any(p.name not in (MANIFEST_NAME, LOCK_NAME) for p in out.iterdir())
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output.dir {out} is a file; choose a folder for output.dir")
    manifest = RunManifest.load(out) if nonempty and (out / MANIFEST_NAME).is_file() else None
    if resuming:
        if manifest is None:
            manifest = RunManifest(out, legacy_entries(out) or {})
        out.mkdir(parents=True, exist_ok=True)
        manifest.save()
        # an interrupted save left temporary files: in the run's own folders, and next to its own files
        remove_stale_temp_files(out, recursive=False)
        for rel, kind in manifest.entries.items():
            if kind == "tree":
                remove_stale_temp_files(out / rel)
        return manifest
    if nonempty:
        if not overwrite:
            raise RunDirError(f"output directory {out} exists and is not empty; choose another output.dir, resume "
                              "with train.resume_from=latest, or set output.overwrite=true")
        if manifest is None:
            legacy = legacy_entries(out)
            if legacy is None:
                raise RunDirError(
                    f"output.overwrite=true: {out} is not empty and holds no run of this package (no "
                    f"{MANIFEST_NAME}); overwrite only removes what a run wrote, so nothing was removed. Choose a "
                    "new or empty output.dir (e.g. a subfolder such as runs/...), or move the files out yourself")
            foreign = unlisted_paths(out, legacy)
            if foreign:
                shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
                raise RunDirError(
                    f"output.overwrite=true: {out} holds a run of an earlier version of this package (no "
                    f"{MANIFEST_NAME}) together with files that run did not write: {shown}; nothing was removed. "
                    "Move those out of the folder and run again, or choose a new or empty output.dir")
            manifest = RunManifest(out, legacy)
        _check_recipe_source(out, manifest.entries, recipe_source)
        gone = manifest.remove_outputs()
        if gone:
            logger.warning("output.overwrite=true: removed the previous run's %s from %s (anything else there is "
                           "left alone)", ", ".join(gone), out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST_NAME).is_file():  # a run that failed while starting left only its manifest
        (out / MANIFEST_NAME).unlink()
    # written with the run's first output (recipe.yaml): a run that fails while starting leaves the directory
    # empty, so the corrected command can use it again
    return RunManifest(out)
