"""Evaluate or label data files with a saved model directory (``best/`` of a run, or any
``save_pretrained`` text classifier; image classifiers saved by an ``image-classification`` run)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
import yaml

from .config import DataConfig
from .utils.io import atomic_write_text
from .data.text import (_EXT_FORMATS, DataError, LabelMap, load_eval_file, longest_first, restore_order,
                        token_lengths, tokenize_dataset)
from .metrics.classification import classification_metrics, softmax
from .utils.model_dir import resolve_model_dir
from .utils.progress import progress

if TYPE_CHECKING:
    from .tasks.long_text import LongTextOptions

__all__ = ["load_model_dir", "predict_logits", "evaluate_file", "predict_file", "evaluate_image_file",
           "predict_image_file"]


def load_model_dir(path: str):
    """Return ``(model, tokenizer, data_cfg)``; the data settings come from the saved recipe when present."""
    from .models.auto import register_auto_classes

    register_auto_classes()  # this package's own architectures load through the Auto classes
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    d = resolve_model_dir(path)
    model = AutoModelForSequenceClassification.from_pretrained(d)
    tokenizer = AutoTokenizer.from_pretrained(d)
    data_cfg = DataConfig()
    raw = _saved_recipe(d)
    if raw:
        raw_data = raw.get("data") or {}
        data_cfg = DataConfig(**{k: v for k, v in raw_data.items() if k in DataConfig.__dataclass_fields__})
    return model, tokenizer, data_cfg


def _saved_recipe(d: Path) -> dict:
    f = d / "recipe.yaml"
    return (yaml.safe_load(f.read_text(encoding="utf-8")) or {}) if f.is_file() else {}


def saved_long_options(path: str) -> Optional["LongTextOptions"]:
    """The long-text options (truncation strategy, head tokens, global attention on the question) a model was
    trained with, from the recipe saved next to it; ``None`` for models of other tasks. ``eval``/``predict``
    prepare inputs the same way, so a head+tail model is evaluated on head+tail inputs."""
    raw = _saved_recipe(resolve_model_dir(path))
    if raw.get("task") != "long-text-classification":
        return None
    from .tasks.long_text import LongTextOptions

    return LongTextOptions.from_kwargs((raw.get("model") or {}).get("kwargs"), where=f"{path}: recipe.yaml model.kwargs")


def _data_cfg_for(data: str, data_cfg: DataConfig, fmt: Optional[str], text_column: Optional[str],
                  text_pair_column: Optional[str], label_column: Optional[str],
                  encoding: Optional[str] = None) -> DataConfig:
    cfg = DataConfig(**{k: getattr(data_cfg, k) for k in DataConfig.__dataclass_fields__})
    if encoding:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"--encoding {encoding!r}: not a text encoding Python knows (e.g. utf-8, gbk, latin-1, "
                            "utf-16)") from None
        cfg.encoding = encoding
    if fmt:
        cfg.format = fmt
    elif Path(data).suffix.lower() in _EXT_FORMATS or data_cfg.format == "hub":
        cfg.format = "auto"  # a .csv/.tsv/.json/.jsonl/.parquet file speaks for itself
    else:
        cfg.format = data_cfg.format  # e.g. kim2014 / thucnews lines, as in training
    if text_column:
        cfg.text_column = text_column
    if text_pair_column:
        cfg.text_pair_column = text_pair_column
    if label_column:
        cfg.label_column = label_column
    cfg.max_train_samples = cfg.max_eval_samples = None
    return cfg


@torch.no_grad()
def predict_logits(model, tokenizer, ds, data_cfg: DataConfig, batch_size: int = 64,
                   long_opts: Optional["LongTextOptions"] = None):
    """Logits (and labels if present) for a raw dataset, on whatever device Accelerate picks; multi-process
    runs gather with ``gather_for_metrics``. ``long_opts`` (:func:`saved_long_options`): prepare the inputs as
    the long-text task did in training (head/tail/head+tail truncation; Longformer padding and global
    attention)."""
    from accelerate import Accelerator
    from transformers import DataCollatorWithPadding

    acc = Accelerator()
    keep = ("labels",) if "labels" in ds.column_names else ()
    collate = DataCollatorWithPadding(tokenizer)
    if long_opts is None:
        tok = tokenize_dataset(ds, tokenizer, data_cfg, keep=keep)
    else:
        from .data.long import LongformerCollator, make_truncation_fn

        strategy = long_opts.strategy
        trunc = strategy if strategy in ("tail", "head+tail") else "head"
        fn = make_truncation_fn(tokenizer, trunc, max_length=data_cfg.max_length, head_tokens=long_opts.head_tokens,
                                text_column=data_cfg.text_column, question_column=data_cfg.text_pair_column)
        tok = ds.map(fn, batched=True, desc=f"tokenizing ({trunc})")
        inputs = {"input_ids", "attention_mask", "token_type_ids", *keep}
        tok = tok.remove_columns([c for c in tok.column_names if c not in inputs])
        if getattr(model.config, "model_type", None) == "longformer":
            collate = LongformerCollator(tokenizer, attention_window=model.config.attention_window,
                                         global_on_question=long_opts.global_on_question)
    # the forward passes run longest first (batches of similar lengths pad little); the outputs come back in
    # input order. The sampler's order is the gathered order under several processes too (accelerate shards
    # whole batches and gathers them in turn).
    order = longest_first(token_lengths(tok))
    dl = torch.utils.data.DataLoader(tok, batch_size=batch_size, sampler=order.tolist(), collate_fn=collate)
    model, dl = acc.prepare(model, dl)
    model.eval()
    logits, labels = [], []
    for batch in progress(dl, desc="predict", unit="batch", enabled=acc.is_local_main_process):
        y = batch.pop("labels", None)
        out = model(**batch).logits.float()
        if y is not None:
            out, y = acc.gather_for_metrics((out, y))
            labels.append(y.cpu().numpy())
        else:
            out = acc.gather_for_metrics(out)
        logits.append(out.cpu().numpy())
    if not logits:
        n = acc.unwrap_model(model).config.num_labels
        return np.zeros((0, n), dtype=np.float32), (np.zeros(0, dtype=np.int64) if keep else None)
    return (restore_order(np.concatenate(logits), order),
            restore_order(np.concatenate(labels), order) if labels else None)


def model_label_map(config) -> LabelMap:
    """Label names from ``id2label``; the raw values of the training files (e.g. ``0``/``1`` for names
    ``negative``/``positive``) from ``nct_raw_labels`` when the model was trained by this package."""
    label_map = LabelMap.from_model_config(config.id2label)
    raw = getattr(config, "nct_raw_labels", None)
    if raw and len(raw) == len(label_map):
        label_map = LabelMap([str(r) for r in raw], label_map.names)
    return label_map


def evaluate_file(model_dir: str, data: str, fmt: Optional[str] = None, text_column: Optional[str] = None,
                  text_pair_column: Optional[str] = None, label_column: Optional[str] = None,
                  batch_size: int = 64, encoding: Optional[str] = None) -> dict:
    """Metrics of a saved text classifier on a labelled file; ``encoding`` (default: the one saved with the model,
    else UTF-8) is the file's text encoding."""
    model, tokenizer, saved = load_model_dir(model_dir)
    cfg = _data_cfg_for(data, saved, fmt, text_column, text_pair_column, label_column, encoding)
    label_map = model_label_map(model.config)
    ds = load_eval_file(data, cfg, label_map, need_labels=True)
    logits, labels = predict_logits(model, tokenizer, ds, cfg, batch_size, saved_long_options(model_dir))
    metrics = classification_metrics(logits, labels, label_map.names)
    metrics["data"] = os.path.abspath(data)
    metrics["model"] = str(resolve_model_dir(model_dir))
    return metrics


def predict_file(model_dir: str, data: str, out: str, fmt: Optional[str] = None, text_column: Optional[str] = None,
                 text_pair_column: Optional[str] = None, batch_size: int = 64, overwrite: bool = False,
                 encoding: Optional[str] = None) -> int:
    """Write one prediction per input row (JSONL, or CSV when ``out`` ends in .csv): the input's other columns,
    the text (and ``text_pair`` for a pair model), the predicted label, its probability and the probability of
    every label. Returns the number of rows."""
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
    model, tokenizer, saved = load_model_dir(model_dir)
    cfg = _data_cfg_for(data, saved, fmt, text_column, text_pair_column, None, encoding)
    label_map = model_label_map(model.config)
    ds = load_eval_file(data, cfg, label_map, need_labels=False)
    texts = ds[cfg.text_column]
    gold = ds["labels"] if "labels" in ds.column_names else None
    # the input's other columns (an id, metadata) travel with each prediction, so results join back easily
    reserved = {"row", "text", "text_pair", "pred_label", "pred_prob", "label", cfg.text_column, cfg.text_pair_column,
                "labels"}
    extra = {c: ds[c] for c in ds.column_names if c not in reserved
             and all(v is None or isinstance(v, (str, int, float, bool)) for v in ds[c][:50])}
    logits, _ = predict_logits(model, tokenizer, ds, cfg, batch_size, saved_long_options(model_dir))
    pairs = ds[cfg.text_pair_column] if cfg.text_pair_column else None  # a pair model's second text
    lead = [{"row": i + 1, **{c: v[i] for c, v in extra.items()}, "text": texts[i],
             **({"text_pair": pairs[i]} if pairs is not None else {})} for i in range(len(texts))]
    rows = _prediction_rows(lead, logits, label_map.names, gold)
    _write_rows(out, rows)
    return len(rows)


def _prediction_rows(lead: list[dict], logits: np.ndarray, names: list[str], gold) -> list[dict]:
    """One output row per input: ``lead[i]`` (where it comes from), the predicted label and its probability, the
    gold label when known, then the probability of every label."""
    probs = softmax(logits.astype(np.float64)) if len(logits) else logits
    rows = []
    for i, p in enumerate(probs):
        j = int(p.argmax())
        row = {**lead[i], "pred_label": names[j], "pred_prob": round(float(p[j]), 6)}
        if gold is not None:
            row["label"] = names[int(gold[i])]
        row.update({f"prob/{n}": round(float(p[k]), 6) for k, n in enumerate(names)})
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# image models (task: image-classification): the same data forms the recipe trains on
# ---------------------------------------------------------------------------------------------------------------
def _image_logits(model_dir: str, data: str, batch_size: int):
    """``(model, names, ds, logits, gold, sources)`` for every image of ``data`` (an image folder, pixel CSV or
    ``.npy`` array, read with the loader options of the recipe saved with the model). ``gold`` holds model label
    ids, or None when the data's label names are not all the model's (``predict`` then writes no ``label``)."""
    from .data.vision import image_collate
    from .data.vision import ImageDataError
    from .tasks.image_classification import eval_view, label_map_for_model, load_image_model, load_labelled_images

    path = resolve_model_dir(model_dir)
    try:
        model = load_image_model(path)
        ds, data_names, _ = load_labelled_images(data, run_dir=path)
    except ImageDataError as e:
        raise DataError(str(e)) from None
    names = [str(model.config.id2label[i]) for i in sorted(int(k) for k in model.config.id2label)]
    mapping = label_map_for_model(model, data_names)
    sources = _image_sources(ds, data)
    view = eval_view(model, ds, range(len(ds)))
    dl = torch.utils.data.DataLoader(view, batch_size=batch_size, shuffle=False, collate_fn=image_collate)
    logits, labels = [], []
    with torch.no_grad():
        for batch in progress(dl, desc="predict", unit="batch"):
            labels.append(batch.pop("labels"))
            logits.append(model(pixel_values=batch["pixel_values"]).logits.float())
    logits_np = torch.cat(logits).numpy() if logits else np.zeros((0, len(names)), dtype=np.float32)
    gold = None
    if mapping is not None and labels:
        gold = np.array([mapping[int(i)] for i in torch.cat(labels).tolist()], dtype=np.int64)
    return model, names, data_names, logits_np, gold, sources


def _image_sources(ds, data: str) -> list[str]:
    """Where each image comes from: its file for an image folder, ``<file>:<row>`` for arrays and pixel CSVs."""
    import datasets

    if isinstance(ds.features.get("image"), datasets.Image):
        items = ds.cast_column("image", datasets.Image(decode=False))["image"]
        return [(it or {}).get("path") or f"{data}:{i + 1}" for i, it in enumerate(items)]
    return [f"{data}:{i + 1}" for i in range(len(ds))]


def evaluate_image_file(model_dir: str, data: str, batch_size: int = 64) -> dict:
    """Metrics of a saved image classifier on labelled images (every label must be one of the model's)."""
    model, names, data_names, logits, gold, _ = _image_logits(model_dir, data, batch_size)
    if gold is None:
        unknown = [n for n in data_names if n not in set(names)]
        raise DataError(f"{data}: label(s) {', '.join(map(str, unknown[:10]))} are not among the model's labels "
                        f"({', '.join(names[:20])})")
    metrics = classification_metrics(logits, gold, names)
    metrics["data"] = os.path.abspath(data)
    metrics["model"] = str(resolve_model_dir(model_dir))
    return metrics


def predict_image_file(model_dir: str, data: str, out: str, batch_size: int = 64, overwrite: bool = False) -> int:
    """One prediction per image (JSONL, or CSV when ``out`` ends in .csv): where the image comes from, the
    predicted label, its probability, the probability of every label, and the data's label when it is one of
    the model's. Returns the number of rows."""
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
    _, names, _, logits, gold, sources = _image_logits(model_dir, data, batch_size)
    rows = _prediction_rows([{"row": i + 1, "image": src} for i, src in enumerate(sources)], logits, names, gold)
    _write_rows(out, rows)
    return len(rows)


def _write_rows(out: str, rows: list[dict]) -> None:
    if out.endswith(".csv"):
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        atomic_write_text(out, buf.getvalue())
    else:
        atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
