"""Text classification (``task: text-classification``): one text (or a text pair) and one label per row; for a
saved model: loading it, tokenizing files as in training, ``eval`` / ``predict``, its model card."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import torch
import yaml

from ..config import DataConfig, Recipe, check_task_option_keys
from ..data.text import (_EXT_FORMATS, DataError, LabelMap, load_eval_file, longest_first, restore_order,
                         token_lengths, tokenize_dataset)
from ..engine.task import CardModel, ClassificationTask, InferenceRequest
from ..metrics.classification import classification_metrics
from ..utils.model_dir import resolve_model_dir
from ..utils.progress import progress
from ._card import transformers_card_model
from ._outputs import prediction_rows, write_rows

__all__ = ["TextClassificationTask", "build_text_classification", "SavedTextModel", "load_model_dir",
           "saved_recipe", "inference_data_config", "model_label_map", "classification_logits"]


def build_text_classification(recipe: Recipe, accelerator) -> dict:
    from ..data.text import load_text_classification
    from ..models.factory import build_classifier, check_model_name

    check_model_name(recipe.model.name)  # a mistyped built-in name fails before the data is read
    # the task has no options of its own (the model's arguments are model.kwargs)
    check_task_option_keys(recipe.task_options, (), recipe.task, f"{recipe.source}: " if recipe.source else "")

    with accelerator.main_process_first():
        splits = load_text_classification(recipe.data)
    texts = splits.train[recipe.data.text_column][:]
    model, tokenizer = build_classifier(recipe.model, splits.label_map.id2label, texts)
    # the raw label values of the files, so eval/predict read files that use them (saved in config.json)
    model.config.nct_raw_labels = list(splits.label_map.raw)
    with accelerator.main_process_first():
        train = tokenize_dataset(splits.train, tokenizer, recipe.data)
        dev = tokenize_dataset(splits.dev, tokenizer, recipe.data) if splits.dev is not None else None
    return {
        "model": model,
        "tokenizer": tokenizer,
        "train_dataset": train,
        "eval_dataset": dev,
        "task": TextClassificationTask(splits.label_map.names),
    }


# ---------------------------------------------------------------------------------------------------------------
# a saved model
# ---------------------------------------------------------------------------------------------------------------
class SavedTextModel(NamedTuple):
    """A saved text classifier ready for inference: the model, its tokenizer, the data settings of the recipe it
    was trained with, and that recipe (a mapping; empty without ``recipe.yaml``)."""

    model: Any
    tokenizer: Any
    data_cfg: DataConfig
    recipe: dict
    path: Path


def saved_recipe(d: Path) -> dict:
    """The ``recipe.yaml`` saved next to a model, as a mapping (empty when there is none)."""
    f = d / "recipe.yaml"
    return (yaml.safe_load(f.read_text(encoding="utf-8")) or {}) if f.is_file() else {}


def load_model_dir(path: str):
    """Return ``(model, tokenizer, data_cfg)``; the data settings come from the saved recipe when present."""
    saved = TextClassificationTask.load_for_inference(path)
    return saved.model, saved.tokenizer, saved.data_cfg


def inference_data_config(data: str, data_cfg: DataConfig, fmt: Optional[str], text_column: Optional[str],
                          text_pair_column: Optional[str], label_column: Optional[str],
                          encoding: Optional[str] = None) -> DataConfig:
    """The data settings to read ``data`` with: the saved ones, with the command line's options over them."""
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


def model_label_map(config) -> LabelMap:
    """Label names from ``id2label``; the raw values of the training files (e.g. ``0``/``1`` for names
    ``negative``/``positive``) from ``nct_raw_labels`` when the model was trained by this package."""
    label_map = LabelMap.from_model_config(config.id2label)
    raw = getattr(config, "nct_raw_labels", None)
    if raw and len(raw) == len(label_map):
        label_map = LabelMap([str(r) for r in raw], label_map.names)
    return label_map


@torch.no_grad()
def classification_logits(model, tok, collate: Callable, batch_size: int = 64):
    """Logits (and labels if ``tok`` has them) of the tokenized dataset ``tok``, on whatever device Accelerate
    picks; multi-process runs gather with ``gather_for_metrics``. The forward passes run longest first (batches
    of similar lengths pad little); the outputs come back in input order. The sampler's order is the gathered
    order under several processes too (accelerate shards whole batches and gathers them in turn)."""
    from accelerate import Accelerator

    acc = Accelerator()
    keep = "labels" in tok.column_names
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


class TextClassificationTask(ClassificationTask):
    """Text classification: training through :class:`~nlp_cv_tricks.engine.task.ClassificationTask`; a saved
    model is a ``save_pretrained`` sequence classifier with its tokenizer (and the run's ``recipe.yaml``)."""

    name = "text-classification"
    description = "text classification"
    pipeline_tag = "text-classification"

    @classmethod
    def load_for_inference(cls, model_dir: str) -> SavedTextModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..models.auto import register_auto_classes

        register_auto_classes()  # this package's own architectures load through the Auto classes
        d = resolve_model_dir(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(d)
        tokenizer = AutoTokenizer.from_pretrained(d)
        data_cfg = DataConfig()
        raw = saved_recipe(d)
        if raw:
            raw_data = raw.get("data") or {}
            data_cfg = DataConfig(**{k: v for k, v in raw_data.items() if k in DataConfig.__dataclass_fields__})
        return SavedTextModel(model, tokenizer, data_cfg, raw, d)

    @classmethod
    def preprocess_for_inference(cls, loaded: SavedTextModel, data, request: Optional[InferenceRequest] = None,
                                 data_cfg: Optional[DataConfig] = None):
        """``(tokenized dataset, collator)`` for the rows of ``data`` (a ``datasets.Dataset`` with the text
        columns of ``data_cfg``, and ``labels`` when known), tokenized as in training."""
        from transformers import DataCollatorWithPadding

        keep = ("labels",) if "labels" in data.column_names else ()
        tok = tokenize_dataset(data, loaded.tokenizer, data_cfg or loaded.data_cfg, keep=keep)
        return tok, DataCollatorWithPadding(loaded.tokenizer)

    @classmethod
    def _read(cls, request: InferenceRequest, need_labels: bool):
        loaded = cls.load_for_inference(request.model_dir)
        cfg = inference_data_config(request.data, loaded.data_cfg, request.format, request.text_column,
                                    request.text_pair_column, request.label_column if need_labels else None,
                                    request.encoding)
        label_map = model_label_map(loaded.model.config)
        ds = load_eval_file(request.data, cfg, label_map, need_labels=need_labels)
        tok, collate = cls.preprocess_for_inference(loaded, ds, request, cfg)
        logits, labels = classification_logits(loaded.model, tok, collate, request.batch_size)
        return loaded, cfg, label_map, ds, logits, labels

    @classmethod
    def evaluate(cls, request: InferenceRequest) -> dict:
        """Metrics of a saved text classifier on a labelled file; ``request.encoding`` (default: the one saved
        with the model, else UTF-8) is the file's text encoding."""
        loaded, _, label_map, _, logits, labels = cls._read(request, need_labels=True)
        metrics = classification_metrics(logits, labels, label_map.names)
        metrics["data"] = os.path.abspath(request.data)
        metrics["model"] = str(loaded.path)
        return metrics

    @classmethod
    def predict(cls, request: InferenceRequest) -> int:
        """One prediction per input row (JSONL, or CSV when ``out`` ends in .csv): the input's other columns, the
        text (and ``text_pair`` for a pair model), the predicted label, its probability and the probability of
        every label."""
        out = request.out
        if os.path.isdir(out):
            raise FileExistsError(f"--out {out} is a directory; --out names the .jsonl or .csv file to write")
        if os.path.exists(out) and not request.overwrite:
            raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
        _, cfg, label_map, ds, logits, _ = cls._read(request, need_labels=False)
        texts = ds[cfg.text_column]
        gold = ds["labels"] if "labels" in ds.column_names else None
        # the input's other columns (an id, metadata) travel with each prediction, so results join back easily
        reserved = {"row", "text", "text_pair", "pred_label", "pred_prob", "label", cfg.text_column,
                    cfg.text_pair_column, "labels"}
        extra = {c: ds[c] for c in ds.column_names if c not in reserved
                 and all(v is None or isinstance(v, (str, int, float, bool)) for v in ds[c][:50])}
        pairs = ds[cfg.text_pair_column] if cfg.text_pair_column else None  # a pair model's second text
        lead = [{"row": i + 1, **{c: v[i] for c, v in extra.items()}, "text": texts[i],
                 **({"text_pair": pairs[i]} if pairs is not None else {})} for i in range(len(texts))]
        rows = prediction_rows(lead, logits, label_map.names, gold)
        write_rows(out, rows)
        return len(rows)

    @classmethod
    def training_labels(cls, recipe: Recipe):
        from ..data.text import load_text_classification

        splits = load_text_classification(recipe.data)
        return splits.train["labels"], list(splits.label_map.names)

    # ---- the model card ------------------------------------------------------------------------------------------
    @classmethod
    def card_model(cls, config: dict, recipe: dict) -> CardModel:
        facts = transformers_card_model(config, recipe)
        data = recipe.get("data") or {}
        max_length = data.get("max_length")
        facts.inputs.append(f"texts truncated to {max_length} tokens" if max_length else "texts as tokenized")
        if data.get("text_pair_column"):
            facts.inputs[-1] = facts.inputs[-1].replace("texts", "text pairs", 1)
        return facts

    @classmethod
    def card_shows_columns(cls) -> bool:
        return True

    @classmethod
    def card_usage(cls, repo_id: str, model: CardModel) -> list[str]:
        trust = ", trust_remote_code=True" if model.own_code else ""
        auto = cls.auto_class
        lines = ["```python", f"from transformers import {auto}, AutoTokenizer", "",
                 f'model = {auto}.from_pretrained("{repo_id}"{trust})',
                 f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{trust})',
                 'logits = model(**tokenizer(["some text"], return_tensors="pt", truncation=True)).logits',
                 "label = model.config.id2label[int(logits.argmax(-1))]", "```", ""]
        if model.own_code:
            lines.append(own_code_note(model))
        return lines

    @classmethod
    def card_limitations(cls, model: CardModel, max_length) -> list[str]:
        if max_length:
            return [f"- Inputs longer than {max_length} tokens were truncated in training; the model never saw "
                    "their ends."]
        return []


def own_code_note(model: CardModel) -> str:
    """The card's sentence on a model whose modeling code ships with it."""
    return (f"The architecture (`{model.architecture}`) is defined by nlp-cv-tricks; its modeling code is part "
            "of this repository (`auto_map` in `config.json`), hence `trust_remote_code=True`: the package "
            "need not be installed.")
