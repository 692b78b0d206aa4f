"""The version store of hard-case imports: versions ``v0001``, ``v0002``, ... of one training file, each built in a
hidden directory and renamed into place; a dropped version's name is retired (see :mod:`.importer` for what a
version holds and how an import makes one)."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Optional

from ..config import Recipe
from ..utils.io import WriteError, as_write_error, atomic_write_text
from ._common import atomic_write_json, atomic_write_jsonl, sha256_file
from .images import ImageSource, fingerprint_dir, id_of_version_file, is_image_recipe

__all__ = ["VersionStore", "DROPPED_FILE"]

_VERSION_RE = re.compile(r"v(\d{4,})")
DROPPED_FILE = "dropped_versions.json"  # names of dropped versions: never reused


class VersionStore:
    """Versions of the recipe's training file under ``root`` (see :mod:`.importer`)."""

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
        from ..config import recipe_from_dict, recipe_to_dict, task_option_key

        if name in (None, "v0", "original"):
            return copy.deepcopy(self.recipe)
        d = recipe_to_dict(self.recipe)
        for key, value in self.overrides(name).items():
            cur = d
            parts = task_option_key(key, d).split(".")  # versions stored with model.kwargs.image
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
