"""Long-document classification (``task: long-text-classification``): head / tail / head+tail truncation,
chunk-and-pool, or a Longformer (converted on the fly from a BERT-style encoder), with typed options from the
recipe's ``task_options`` (``model.kwargs``, their deprecated spelling, is still read)."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import ClassVar, Optional

import torch
from transformers import AutoConfig

from ..config import RecipeError, saved_task_options, split_task_options
from ..data.long import HYPERPARTISAN_ARTICLES, LongformerCollator, load_hyperpartisan, make_truncation_fn
from ..engine.task import CardModel, InferenceRequest
from ..models.factory import build_classifier
from ..models.long import (CHUNK_REPRESENTATIONS, POOLINGS, ChunkPoolForSequenceClassification,
                           convert_to_longformer, register_auto_classes, resolve_model_path)
from .text_classification import SavedTextModel, TextClassificationTask

logger = logging.getLogger(__name__)

LONG_STRATEGIES = ("head", "tail", "head+tail", "chunk_pool", "longformer")
HYPERPARTISAN_SPLITS = ("stratified", "paper")


@dataclasses.dataclass
class LongTextOptions:
    """The options of ``task: long-text-classification``, read from a recipe's ``task_options`` (unknown keys
    and out-of-range values are errors that name the key; ``model.kwargs``, the deprecated spelling, is still read). The same object drives training, ``eval``/``predict``
    (:meth:`LongTextTask.saved_options` reads it back from a run's ``recipe.yaml``) and the model card."""

    strategy: str = "head"  # head | tail | head+tail | chunk_pool | longformer
    head_tokens: int = 128  # head+tail: tokens kept from the start (Sun et al. 2019: 128, then 382 from the end)
    chunk_size: int = 512  # chunk_pool: tokens per chunk, specials included
    chunk_overlap: int = 128  # chunk_pool: tokens shared by consecutive chunks
    pooling: str = "mean"  # chunk_pool: mean | max | attention
    chunk_representation: str = "cls"  # chunk_pool: cls | mean
    encoder_batch_size: Optional[int] = None  # chunk_pool: chunks per encoder call (None: all)
    attention_window: int = 256  # longformer: window (converted models) or override (long models)
    global_on_question: bool = False  # longformer: global attention on the question tokens (text_pair_column)
    hyperpartisan_split: str = "stratified"  # data.train_file = a Hyperpartisan directory: stratified | paper
    split_seed: int = 42  # seed of the stratified Hyperpartisan split (fixed across training seeds)

    # the options read from model.kwargs before task_options existed (that spelling is still read): all of them
    LEGACY_KEYS: ClassVar[tuple[str, ...]] = ("strategy", "head_tokens", "chunk_size", "chunk_overlap", "pooling",
                                              "chunk_representation", "encoder_batch_size", "attention_window",
                                              "global_on_question", "hyperpartisan_split", "split_seed")

    @classmethod
    def from_kwargs(cls, kwargs: Optional[dict], where: str = "model.kwargs") -> "LongTextOptions":
        """Validated options from a mapping of them; ``where`` (the mapping's recipe key, ``task_options``) prefixes
        every error message."""
        if kwargs is not None and not isinstance(kwargs, dict):
            raise RecipeError(f"{where} must be a mapping, got {type(kwargs).__name__} {kwargs!r}")
        kwargs = dict(kwargs or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            import difflib

            near = difflib.get_close_matches(str(unknown[0]), known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise RecipeError(f"{where}: unknown long-text option {unknown[0]!r}{hint} (known: {sorted(known)})")
        opts = cls(**kwargs)
        opts.validate(where)
        return opts

    @classmethod
    def from_recipe(cls, recipe) -> "LongTextOptions":
        src = recipe.source or "recipe"
        opts, rest = split_task_options(recipe.task_options, recipe.model.kwargs, cls.LEGACY_KEYS, f"{src}: ")
        if rest:  # the model takes no arguments: a key left in model.kwargs is no option
            cls.from_kwargs(rest, where=f"{src}: model.kwargs")
        return cls.from_kwargs(opts, where=f"{src}: task_options")

    @classmethod
    def from_saved_recipe(cls, recipe: dict, where: str) -> "LongTextOptions":
        """The options of a saved recipe (a mapping, either spelling); ``where`` names it."""
        return cls.from_kwargs(saved_task_options(recipe, cls.LEGACY_KEYS, f"{where}: "),
                               where=f"{where}: task_options")

    def validate(self, where: str = "model.kwargs") -> None:
        def choice(key, allowed):
            if getattr(self, key) not in allowed:
                raise RecipeError(f"{where}.{key}={getattr(self, key)!r}; expected one of {list(allowed)}")

        def integer(key, low, none_ok=False):
            v = getattr(self, key)
            if v is None and none_ok:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise RecipeError(f"{where}.{key}={v!r}; expected an integer >= {low}"
                                  + (" or null" if none_ok else ""))

        choice("strategy", LONG_STRATEGIES)
        choice("pooling", POOLINGS)
        choice("chunk_representation", CHUNK_REPRESENTATIONS)
        choice("hyperpartisan_split", HYPERPARTISAN_SPLITS)
        integer("head_tokens", 0)
        integer("chunk_size", 3)
        integer("chunk_overlap", 0)
        integer("encoder_batch_size", 1, none_ok=True)
        integer("attention_window", 2)
        integer("split_seed", 0)
        if self.chunk_overlap >= self.chunk_size - 2:
            raise RecipeError(f"{where}.chunk_overlap={self.chunk_overlap} must be smaller than chunk_size - 2 "
                              f"(= {self.chunk_size - 2}: each chunk also holds [CLS] and [SEP])")
        if self.attention_window % 2:
            raise RecipeError(f"{where}.attention_window={self.attention_window} must be even (Longformer)")
        if not isinstance(self.global_on_question, bool):
            raise RecipeError(f"{where}.global_on_question={self.global_on_question!r}; expected true or false")


def _is_hyperpartisan_dir(path: Optional[str]) -> bool:

    return bool(path) and Path(path).is_dir() and (Path(path) / HYPERPARTISAN_ARTICLES).is_file()


def build_long_text_task(recipe, accelerator) -> dict:
    """Task builder for ``task: long-text-classification`` (register with ``nlp_cv_tricks.tasks.register_task``):
    :func:`prepare_long_text` without the test split (which the trainer does not take)."""
    register_auto_classes()  # the selected chunk-and-pool model is reloaded through the Auto classes
    comps = prepare_long_text(recipe, accelerator)
    comps.pop("test_dataset", None)
    return comps


def prepare_long_text(recipe, accelerator) -> dict:
    """Model, tokenizer, tokenized train/dev/test datasets, task and collator for a long-text recipe.

    ``data.train_file`` is either a Hyperpartisan directory (split in memory, seeded, stratified 80/10/10 - the
    test split is kept out of training) or files the text-classification reader understands (CSV/TSV/JSONL/...
    with ``data.text_column``). ``data.max_length`` is the model input length for ``head``/``tail``/``head+tail``
    (512 for BERT) and the document length read by ``chunk_pool``/``longformer`` (e.g. 4096; longer documents
    are cut, and the number of dropped tokens is logged). Options live in ``task_options`` (see
    :class:`LongTextOptions`).
    """
    from transformers import AutoTokenizer, LongformerForSequenceClassification


    data, mcfg = recipe.data, recipe.model
    opts = LongTextOptions.from_recipe(recipe)
    strategy = opts.strategy
    with accelerator.main_process_first():
        if _is_hyperpartisan_dir(data.train_file):
            dd = load_hyperpartisan(data.train_file, split=opts.hyperpartisan_split, seed=opts.split_seed)
            names = dd["train"].features["label"].names
            dd = dd.rename_column("label", "labels")
            train, dev, test = dd["train"], dd["validation"], dd["test"]
            text_column = "text"
            if data.max_train_samples:
                train = train.select(range(min(data.max_train_samples, len(train))))
            if data.max_eval_samples:
                dev = dev.select(range(min(data.max_eval_samples, len(dev))))
        else:
            from ..data.text import load_text_classification

            splits = load_text_classification(data)
            names = list(splits.label_map.names)
            train, dev, test = splits.train, splits.dev, splits.test
            text_column = data.text_column
    id2label = dict(enumerate(names))
    label2id = {n: i for i, n in id2label.items()}
    path = resolve_model_path(mcfg.name)
    collate_fn = None

    if strategy in ("head", "tail", "head+tail"):

        model, tokenizer = build_classifier(mcfg, id2label)
    elif strategy == "chunk_pool":
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(mcfg.tokenizer or mcfg.name))
        model = ChunkPoolForSequenceClassification.from_encoder(
            path, tokenizer=tokenizer, num_labels=len(names), id2label=id2label, label2id=label2id,
            chunk_size=opts.chunk_size, chunk_overlap=opts.chunk_overlap, pooling=opts.pooling,
            chunk_representation=opts.chunk_representation, encoder_batch_size=opts.encoder_batch_size,
        )
    else:  # longformer
        src_type = AutoConfig.from_pretrained(path).model_type
        kw = dict(num_labels=len(names), id2label=id2label, label2id=label2id, **(mcfg.config_overrides or {}))
        if src_type == "longformer":
            if "attention_window" in split_task_options(recipe.task_options, mcfg.kwargs, opts.LEGACY_KEYS)[0]:
                kw["attention_window"] = opts.attention_window
                saved = AutoConfig.from_pretrained(path).attention_window
                saved = saved[0] if isinstance(saved, (list, tuple)) and len(set(saved)) == 1 else saved
                if saved != opts.attention_window:
                    logger.warning("task_options.attention_window=%s replaces the window %s saved with %s (drop the "
                                   "key to keep the converted model's)", opts.attention_window, saved, path)
            model = LongformerForSequenceClassification.from_pretrained(path, dtype=torch.float32, **kw)
            tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(mcfg.tokenizer or mcfg.name))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                convert_to_longformer(path, max_length=data.max_length, attention_window=opts.attention_window,
                                      out_dir=Path(tmp) / "long", tokenizer_name_or_path=mcfg.tokenizer)
                model = LongformerForSequenceClassification.from_pretrained(Path(tmp) / "long", dtype=torch.float32,
                                                                            **kw)
                tokenizer = AutoTokenizer.from_pretrained(Path(tmp) / "long")
        limit = model.config.max_position_embeddings - (model.config.pad_token_id + 1)
        if data.max_length > limit:
            raise ValueError(f"data.max_length={data.max_length} exceeds the Longformer's {limit} positions")
        collate_fn = LongformerCollator(tokenizer, attention_window=model.config.attention_window,
                                        global_on_question=opts.global_on_question)
    if strategy in ("chunk_pool", "longformer") and mcfg.gradient_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()

    trunc = strategy if strategy in ("tail", "head+tail") else "head"
    fn = make_truncation_fn(tokenizer, trunc, max_length=data.max_length, head_tokens=opts.head_tokens,
                            text_column=text_column, question_column=data.text_pair_column)
    keep = {"input_ids", "attention_mask", "token_type_ids", "labels"}

    def prepare(ds, role):
        if ds is None:
            return None
        with accelerator.main_process_first():
            out = ds.map(fn, batched=True, desc=f"tokenizing {role} ({trunc})")
        dropped = sum(out["num_truncated"])
        cut = sum(1 for n in out["num_truncated"] if n)
        logger.info("%s: %d documents, %d truncated to %d tokens (%s), %d tokens dropped of %d", role, len(out), cut,
                    data.max_length, trunc, dropped, sum(out["num_tokens"]))
        return out.remove_columns([c for c in out.column_names if c not in keep])

    return {
        "model": model,
        "tokenizer": tokenizer,
        "train_dataset": prepare(train, "train"),
        "eval_dataset": prepare(dev, "dev"),
        "test_dataset": prepare(test, "test"),
        "task": LongTextTask(names),
        **({"collate_fn": collate_fn} if collate_fn is not None else {}),
    }


class LongTextTask(TextClassificationTask):
    """Long-document classification: trained as text classification; a saved model's inputs are prepared with
    the options of its run (head/tail/head+tail truncation; Longformer padding and global attention), so a
    head+tail model is evaluated on head+tail inputs."""

    name = "long-text-classification"
    description = "long-document classification"
    pipeline_tag = "text-classification"

    @classmethod
    def training_labels(cls, recipe):
        return None  # a Hyperpartisan directory is read by the task itself

    @classmethod
    def saved_options(cls, recipe: dict, where: str) -> LongTextOptions:
        """The options a model was trained with, from its saved recipe (a mapping); ``where`` names it."""
        return LongTextOptions.from_saved_recipe(recipe, f"{where}: recipe.yaml")

    @classmethod
    def preprocess_for_inference(cls, loaded: SavedTextModel, data, request: Optional[InferenceRequest] = None,
                                 data_cfg=None):
        where = request.model_dir if request is not None else str(loaded.path)
        return prepare_long_inputs(loaded.model, loaded.tokenizer, data, data_cfg or loaded.data_cfg,
                                   cls.saved_options(loaded.recipe, where))

    # ---- the model card ------------------------------------------------------------------------------------------
    @classmethod
    def card_model(cls, config: dict, recipe: dict) -> CardModel:
        from ._card import transformers_card_model

        facts = transformers_card_model(config, recipe)
        max_length = (recipe.get("data") or {}).get("max_length")
        opts = LongTextOptions.from_saved_recipe(recipe, "recipe.yaml")
        s = opts.strategy
        if s == "chunk_pool":
            facts.inputs.append(f"whole documents, cut into chunks of {opts.chunk_size} tokens (specials included) "
                                f"overlapping by {opts.chunk_overlap}, each encoded separately; chunk vectors "
                                f"({opts.chunk_representation}) are pooled by {opts.pooling}")
        elif s == "longformer":
            facts.inputs.append(f"documents up to {max_length} tokens with Longformer's sliding-window attention "
                                f"(window {config.get('attention_window') or opts.attention_window})"
                                + (", global attention on the question" if opts.global_on_question else ""))
        elif s == "head+tail":
            facts.inputs.append(f"documents truncated to {max_length} tokens: the first {opts.head_tokens} and the "
                                f"last {max_length - opts.head_tokens if isinstance(max_length, int) else 'rest'} "
                                "(head+tail, Sun et al. 2019)")
        else:
            facts.inputs.append(f"documents truncated to their {'first' if s == 'head' else 'last'} {max_length} "
                                "tokens")
        return facts

    @classmethod
    def card_usage(cls, repo_id: str, model: CardModel) -> list[str]:
        lines = super().card_usage(repo_id, model)
        if any("head+tail" in i or "last" in i for i in model.inputs):
            lines.append("Prepare inputs the way training did (see Inputs above); `nlp-cv-tricks eval`/`predict` do.")
        return lines

    @classmethod
    def card_limitations(cls, model: CardModel, max_length) -> list[str]:
        if not any(i.startswith("whole documents") for i in model.inputs):
            return ["- Text outside the kept tokens (see Inputs) is never seen by the model."]
        return []


def prepare_long_inputs(model, tokenizer, ds, data_cfg, long_opts: LongTextOptions):
    """``(tokenized dataset, collator)`` for raw rows, truncated as the long-text task does in training
    (head/tail/head+tail), with Longformer padding and global attention for a Longformer."""
    from transformers import DataCollatorWithPadding

    keep = ("labels",) if "labels" in ds.column_names else ()
    collate = DataCollatorWithPadding(tokenizer)
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
    return tok, collate
