"""Image data in the hard-case loop: what an annotator sees, and dataset versions the vision task trains on.

The training examples of an ``image-classification`` recipe are the rows of the training split that
:func:`nlp_cv_tricks.data.vision.load_image_classification` gives (the same function the task builder calls,
so row ``j`` here is row ``j`` of the task's training set, the example id of the original). Two kinds of
sources:

* **files** (``imagefolder``): every example is an image file. Exports show its path; a version is an image
  folder ``vNNNN/train/<class>/<id>_<name>`` of symbolic links to the original files (copies where links are
  not possible), so relabelling moves a link to another class folder and the originals are never touched.
* **arrays** (pixel CSV such as MNIST, ``.npy``): there are no files. Exports write each exported image as a
  PNG next to the annotation file (atomically) and reference it; a version is a pixel CSV ``vNNNN/train.csv.gz``
  (pixels row-major, label last, no header) that the vision loader reads.

The dev split is pinned: when the recipe cuts its dev set from the training data (no ``data.dev_file``,
``image.dev_fraction`` > 0), the version also holds that dev split (``vNNNN/dev``), so a version trains on the
same training rows (with the changes) and evaluates on the same dev images as the original; array versions
always carry their dev split so that the image options of the version (CSV layout) apply to both files.
A version's recipe overrides (``data.train_file``, ``data.dev_file``, image options) are in its manifest
(``recipe_overrides``) and applied by :meth:`VersionStore.recipe_for`.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..config import Recipe, split_task_options
from ..utils.io import atomic_write_bytes

__all__ = ["ImageSource", "is_image_recipe", "write_png", "fingerprint_dir"]


def is_image_recipe(recipe: Recipe) -> bool:
    """Whether the recipe's task trains on images (its Task class says)."""
    from ..tasks import task_modality

    return task_modality(recipe.task) == "image"


def fingerprint_dir(path) -> str:
    """sha256 over the relative paths, sizes and contents of every file under ``path`` (sorted): the identity
    of an image folder, checked like a training file's sha256 (originals must not change under versions)."""
    import hashlib

    h = hashlib.sha256()
    root = Path(path)
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode("utf-8") + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def write_png(path, image: Any) -> str:
    """Write one image (PIL, or an (H, W[, C]) uint8 array) as a PNG, atomically; returns the absolute path."""
    from ..data.vision import _to_pil

    buf = io.BytesIO()
    _to_pil(image).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return str(Path(path).resolve())


class ImageSource:
    """The training (and dev) images of an image recipe, loaded once, as the vision task sees them."""

    def __init__(self, recipe: Recipe):
        if not is_image_recipe(recipe):
            raise ValueError(f"task {recipe.task!r} is not an image task")
        self.recipe = recipe
        from ..tasks.image_classification import TASK_OPTIONS

        task_options = split_task_options(recipe.task_options, recipe.model.kwargs, TASK_OPTIONS)[0]
        self.opts = dict(task_options.get("image") or {})
        self._splits = None

    @property
    def splits(self):
        if self._splits is None:
            from ..data.vision import load_image_classification

            self._splits = load_image_classification(self.recipe.data, self.opts)
        return self._splits

    @property
    def label_names(self) -> list[str]:
        return [str(n) for n in self.splits.label_names]

    @staticmethod
    def has_files(ds) -> bool:
        import datasets

        return isinstance(ds.features.get("image"), datasets.Image)

    @property
    def kind(self) -> str:
        """``files`` (every image is a file) or ``arrays`` (pixels without files)."""
        return "files" if self.has_files(self.splits.train) else "arrays"

    @staticmethod
    def paths(ds) -> list[str]:
        """Absolute real paths (links resolved: a version folder links to the original files) of the images of a
        file-backed split ("" where an image has no path)."""
        import datasets

        raw = ds.cast_column("image", datasets.Image(decode=False))
        return [os.path.realpath(item["path"]) if item and item.get("path") else "" for item in raw["image"]]

    def train_labels(self) -> np.ndarray:
        return np.asarray(self.splits.train["labels"], dtype=np.int64)

    def train_refs(self) -> list[str]:
        """What identifies each training image for an annotator: its file path (files), else "" (arrays)."""
        if self.kind == "files":
            return self.paths(self.splits.train)
        return [""] * len(self.splits.train)

    def image(self, row: int, split: str = "train"):
        """Training image ``row`` as a PIL image."""
        from ..data.vision import _to_pil

        ds = self.splits.train if split == "train" else self.splits.dev
        return _to_pil(ds[int(row)]["image"])

    def arrays(self, split: str = "train") -> np.ndarray:
        ds = self.splits.train if split == "train" else self.splits.dev
        return np.asarray(ds.with_format("numpy")["image"], dtype=np.uint8)

    # ---- versions --------------------------------------------------------------------------------------
    def table(self) -> tuple[list[str], list, dict]:
        """(refs, label names per row, columns) of the training split: columns ``image`` (file paths, or
        (H, W, C) uint8 arrays for array sources) and ``labels`` (label names)."""
        names = self.label_names
        labels = [names[i] for i in self.train_labels()]
        refs = self.train_refs()
        images = refs if self.kind == "files" else list(self.arrays("train"))
        return refs, labels, {"image": images, "labels": labels}

    def pinned_dev(self) -> Optional[tuple[list, list[str]]]:
        """The dev split to store in a version (images or paths, label names), or None when the recipe's dev
        file is used as it is (file sources with a ``data.dev_file``) or there is no dev split."""
        dev = self.splits.dev
        if dev is None or (self.kind == "files" and self.recipe.data.dev_file):
            return None
        names = self.label_names
        labels = [names[i] for i in np.asarray(dev["labels"], dtype=np.int64)]
        images = self.paths(dev) if self.kind == "files" else list(self.arrays("dev"))
        return images, labels

    def write_version(self, tmp: Path, cols: dict, ids: Sequence[int], dev: Optional[tuple]) -> dict:
        """Write the version's image data into the (temporary) version directory ``tmp``; returns the manifest
        entries: ``train_file``, ``dev_file``, ``recipe_overrides``."""
        names = self.label_names
        counts = {n: 0 for n in names}
        for lab in cols["labels"]:
            if lab not in counts:
                raise ValueError(f"label {lab!r} is not one of the classes {names}")
            counts[lab] += 1
        empty = [n for n, c in counts.items() if c == 0]
        if empty:
            raise ValueError(f"the version would leave class(es) {empty} without a training image; the vision task "
                             "reads its classes from the data, so every class needs at least one image")
        over: dict[str, Any] = {"data.max_train_samples": None, "data.max_eval_samples": None}
        if self.kind == "files":
            _link_folder(tmp / "train", cols["image"], cols["labels"], ids, names)
            out = {"train_file": "train", "dev_file": None}
            if dev is not None:
                _link_folder(tmp / "dev", dev[0], dev[1], list(range(len(dev[0]))), names)
                out["dev_file"] = "dev"
        else:
            shape = _write_pixel_csv(tmp / "train.csv.gz", cols["image"], cols["labels"])
            out = {"train_file": "train.csv.gz", "dev_file": None}
            if dev is not None:
                _write_pixel_csv(tmp / "dev.csv.gz", dev[0], dev[1])
                out["dev_file"] = "dev.csv.gz"
            over.update({"data.label_names": names, "task_options.image.format": "auto",
                         "task_options.image.csv_header": False, "task_options.image.csv_label_column": -1,
                         "task_options.image.image_shape": list(shape)})
        out["recipe_overrides"] = over
        return out


def _link_folder(root: Path, paths: Sequence[str], labels: Sequence[str], ids: Sequence[int],
                 names: Sequence[str]) -> None:
    """An image folder ``root/<class>/<id:08d>_<file name>`` of links to ``paths`` (copies where the file
    system has no symbolic links). The id prefix keeps names unique and the loader's (sorted) row order
    deterministic; :meth:`VersionStore.ids` reads the ids back from the names."""
    for n in names:
        (root / n).mkdir(parents=True, exist_ok=True)
    for p, lab, i in zip(paths, labels, ids):
        src = Path(os.path.realpath(p))
        if not src.is_file():
            raise FileNotFoundError(f"image {p} (id {i}) does not exist")
        dst = root / lab / f"{int(i):08d}_{src.name}"
        try:
            os.symlink(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def id_of_version_file(path: str) -> int:
    """The example id encoded in a version image file name (``<id:08d>_<name>``)."""
    name = Path(path).name
    head = name.split("_", 1)[0]
    if not head.isdigit():
        raise ValueError(f"{path}: not a version image file (expected <id>_<name>)")
    return int(head)


def _write_pixel_csv(path: Path, images: Sequence[np.ndarray], labels: Sequence[str]) -> tuple:
    """Pixels row-major and the label last, no header, gzip; written atomically. Returns the image shape as
    the loader's ``image_shape`` ((H, W) for one channel, (H, W, C) otherwise)."""
    arr = np.stack([np.asarray(a, dtype=np.uint8) for a in images])
    shape = arr.shape[1:]
    if len(shape) == 3 and shape[-1] == 1:
        shape = shape[:2]
    flat = arr.reshape(len(arr), -1)
    buf = io.StringIO()
    for row, lab in zip(flat, labels):
        lab = str(lab)
        if any(c in lab for c in ',"\n\r'):
            raise ValueError(f"label {lab!r} cannot be written to a pixel CSV (comma, quote or newline)")
        buf.write(",".join(map(str, row.tolist())))
        buf.write(f",{lab}\n")
    atomic_write_bytes(path, gzip.compress(buf.getvalue().encode("utf-8"), mtime=0))
    return tuple(int(s) for s in shape)


def load_image_file(path: str, like: Optional[np.ndarray] = None, where: str = "") -> np.ndarray:
    """An added image as an (H, W, C) uint8 array shaped like ``like`` (same size and channels), for array
    versions; a file that does not open or has another size is an error naming it."""
    from ..utils.optional import require

    Image = require("PIL.Image", purpose="image hard cases")

    try:
        with Image.open(path) as img:
            img.load()
            if like is not None and like.shape[-1] == 1:
                img = img.convert("L")
            elif like is not None and like.shape[-1] == 3:
                img = img.convert("RGB")
            a = np.asarray(img, dtype=np.uint8)
    except Exception as e:
        raise ValueError(f"{where}image {path!r} cannot be opened ({type(e).__name__}: {e})") from None
    if a.ndim == 2:
        a = a[..., None]
    if like is not None and a.shape != like.shape:
        raise ValueError(f"{where}image {path!r} has shape {a.shape[:2]}, the dataset's images are "
                         f"{like.shape[:2]}")
    return a
