"""FastText text classification as numpy arrays for the compiled loop (:mod:`nlp_cv_tricks.engine.compiled_loop`):
the same data checks, tokenizer, bags, initialisation and saved model as the trainer's FastText, built without
torch, transformers or (for line files) datasets, which take most of a small run's time.

What a recipe gets from it is the same run: dev accuracy within seed noise of the trainer's (the initial weights
and the shuffling are drawn by numpy instead of torch), the same run directory, and a ``best/`` with the same files
(``config.json``, ``model.safetensors`` with the same tensors, the family's code, ``tokenizer.json``), loaded by the
package's ``eval``/``predict`` and by ``AutoModelForSequenceClassification.from_pretrained(dir,
trust_remote_code=True)``. :func:`compiled_fasttext_reasons` says when a recipe needs the trainer instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Optional

import numpy as np

from ..config import Recipe
from ..engine.compiled_loop import compiled_loop_reasons
from ..models import fasttext_kernels as K
from ..models.baseline_names import BASELINE_ALIASES, TOKENIZER_KEYS

__all__ = ["compiled_fasttext_reasons", "CompiledFastText", "build_compiled_fasttext"]

logger = logging.getLogger(__name__)

# model.kwargs the compiled model runs as the trainer's FastText does (the value each must have, None: any)
_KWARGS = {"embedding_dim": None, "word_ngrams": None, "bucket": None, "sparse": None, "tokenizer": None,
           "hidden_size": 0, "dropout": 0.0, "embedding_dropout": 0.0, "norm": "none", "freeze_embeddings": False}
# config.json of the FastText config class (text_baselines/layers_fasttext.py, layers_base.py) for what the compiled
# model trains: the fields it writes with their defaults (tests/test_compiled_fasttext.py checks the file is the
# trainer's)
_CONFIG_DEFAULTS = {"bucket": 250499, "dropout": 0.0, "embedding_dim": 100, "embedding_dropout": 0.0,
                    "embedding_init_std": 1.0, "embedding_init_uniform": None, "freeze_embeddings": False,
                    "hidden_size": 0, "init": "xavier_normal", "max_norm": None, "norm": "none",
                    "pretrained_vectors": None, "sparse": True, "tie_word_embeddings": False, "word_ngrams": 2}
_FAMILY_FILES = ("modeling_fasttext.py", "modeling_base.py", "layers_fasttext.py", "layers_base.py")


def compiled_fasttext_reasons(recipe: Recipe) -> list[str]:
    """Why the compiled FastText cannot train ``recipe`` as the trainer would (empty: it can)."""
    name = BASELINE_ALIASES.get(recipe.model.name.lower().strip(), recipe.model.name.lower().strip())
    if recipe.task != "text-classification" or name != "fasttext":
        return [f"task {recipe.task!r} with model {recipe.model.name!r} (it trains FastText text classification)"]
    out = []
    kwargs = recipe.model.kwargs or {}
    for k, v in kwargs.items():
        if k not in _KWARGS:
            out.append(f"model.kwargs.{k}")
        elif _KWARGS[k] is not None and v != _KWARGS[k]:
            out.append(f"model.kwargs.{k}={v!r}")
    tok = kwargs.get("tokenizer") or {}
    if not isinstance(tok, dict) or set(tok) - set(TOKENIZER_KEYS):
        out.append("model.kwargs.tokenizer")
    if recipe.model.config_overrides or recipe.model.tokenizer or recipe.model.from_scratch:
        out.append("model.config_overrides/tokenizer/from_scratch")
    if recipe.task_options:
        out.append("task_options")
    data = recipe.data
    if data.format == "hub" or (data.hub_name and not data.train_file):
        out.append("data from the Hub")
    if data.text_pair_column:
        out.append("data.text_pair_column")
    out += compiled_loop_reasons(recipe)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        out.append("several processes")
    if not out and not K.kernels_available():
        out.append("numba is not installed (pip install 'nlp-cv-tricks[fast]')")
    return out


class CompiledFastText:
    """The FastText weights (``embeddings.weight``, ``classifier.weight``, ``classifier.bias``) with the bags of
    the training and dev texts: the :class:`~nlp_cv_tricks.engine.compiled_loop.CompiledModel` the loop trains."""

    def __init__(self, weights: dict, train_bags: tuple, train_labels: np.ndarray, dev_bags: Optional[tuple],
                 config: dict, tokenizer, max_length: Optional[int]):
        self.weights, self.config = weights, config
        self.train_bags, self.train_labels, self.dev_bags = train_bags, train_labels, dev_bags
        self.tokenizer, self.max_length = tokenizer, max_length
        self.num_train = len(train_labels)

    def train_steps(self, order, start, batch_size, lrs, losses) -> int:
        return K.train_fasttext_steps(self.weights, *self.train_bags, self.train_labels, order, start, batch_size,
                                      lrs, losses)

    def eval_logits(self) -> np.ndarray:
        return K.fasttext_logits(self.weights, *self.dev_bags)

    def snapshot(self, into: Optional[dict] = None) -> dict:
        if into is not None and all(into[k].shape == v.shape for k, v in self.weights.items()):
            for k, v in self.weights.items():
                np.copyto(into[k], v)
            return into
        return {k: v.copy() for k, v in self.weights.items()}

    def write(self, directory: Path, weights: dict) -> None:
        """What the trainer's FastText writes: ``config.json``, the family's code, ``model.safetensors``
        (``metadata={"format": "pt"}``), ``tokenizer.json`` and ``tokenizer_config.json``."""
        from safetensors.numpy import save_file

        from ..utils.io import atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        here = Path(find_spec("nlp_cv_tricks.models.text_baselines").submodule_search_locations[0])
        for name in _FAMILY_FILES:
            shutil.copyfile(here / name, directory / name)
        atomic_write_text(directory / "config.json", json.dumps(self.config, indent=2, sort_keys=True) + "\n")
        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(directory / "model.safetensors"),
                  metadata={"format": "pt"})
        self.tokenizer.save(str(directory / "tokenizer.json"), pretty=True)
        tok_cfg = {"clean_up_tokenization_spaces": False, "model_input_names": ["input_ids", "attention_mask"],
                   "model_max_length": self.max_length if self.max_length else int(1e30), "pad_token": "[PAD]",
                   "padding_side": "right", "tokenizer_class": "PreTrainedTokenizerFast",
                   "truncation_side": "right", "unk_token": "[UNK]"}
        atomic_write_text(directory / "tokenizer_config.json", json.dumps(tok_cfg, indent=2, sort_keys=True) + "\n")


def _read(recipe: Recipe):
    """``(train texts, train label ids, dev texts or None, dev label ids or None, label map)``: line files without
    ``datasets``, any other file through the trainer's reader."""
    from ..data.lines import line_splits_reason, load_line_splits

    cfg = recipe.data
    if line_splits_reason(cfg) is None:
        s = load_line_splits(cfg)
        dev = s.dev or (None, None)
        return s.train[0], s.train[1], dev[0], dev[1], s.label_map
    from ..data.text import load_text_classification

    s = load_text_classification(cfg)
    col = cfg.text_column
    dev = (s.dev[col][:], s.dev["labels"][:]) if s.dev is not None else (None, None)
    return s.train[col][:], s.train["labels"][:], dev[0], dev[1], s.label_map


def _encode(tokenizer, texts: list, max_length: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids + offsets of ``texts``, truncated to ``max_length``: the ids the trainer's tokenization gives
    (per character by dictionary for a character tokenizer, else the Rust tokenizer)."""
    from tokenizers import Tokenizer

    from ..data.encode import char_ids_flat, char_lookup

    bt = Tokenizer.from_str(tokenizer.to_str())
    bt.no_padding()
    if max_length:
        bt.enable_truncation(int(max_length), stride=0, strategy="longest_first", direction="right")
    flat = char_ids_flat(tokenizer, texts, max_length, bt)
    if flat is not None:
        return flat
    lookup = char_lookup(tokenizer, ["input_ids"])
    if lookup is not None:
        ids = lookup(texts, max_length, bt)["input_ids"]
    else:
        ids = [e.ids for e in bt.encode_batch(list(texts))]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(offsets[-1]))
    return flat, offsets


def build_compiled_fasttext(recipe: Recipe) -> tuple[CompiledFastText, Optional[np.ndarray], list[str]]:
    """Data, tokenizer, bags and initial weights of ``recipe`` (one :func:`compiled_fasttext_reasons` accepts):
    ``(model, dev label ids or None, label names)``."""
    from ..data.root import resolve_data_paths
    from ..data.vocab import build_tokenizer_backend, detect_level

    # relative data paths are read from the data root, as the trainer's tasks read them
    texts, labels, dev_texts, dev_labels, label_map = _read(resolve_data_paths(recipe))
    kwargs = {k: v for k, v in (recipe.model.kwargs or {}).items() if k != "tokenizer"}
    tok_kwargs = dict((recipe.model.kwargs or {}).get("tokenizer") or {})
    level = tok_kwargs.pop("level", "auto")
    if level == "auto":
        level = detect_level(texts)
        logger.info("build_baseline: tokenizer level auto-detected as %r", level)
    tok_max = tok_kwargs.pop("max_length", 128)
    tokenizer = build_tokenizer_backend(texts, level, **tok_kwargs)
    max_length = recipe.data.max_length or tok_max
    vocab_size = tokenizer.get_vocab_size()
    cfg = {**_CONFIG_DEFAULTS, **kwargs}
    word_ngrams, dim = int(cfg["word_ngrams"]), int(cfg["embedding_dim"])
    bucket = int(cfg["bucket"]) if word_ngrams > 1 else 0
    cfg.update(bucket=bucket, word_ngrams=word_ngrams, embedding_dim=dim, sparse=bool(cfg["sparse"]))
    id2label = dict(enumerate(label_map.names))
    config = {**cfg, "architectures": ["FastTextForSequenceClassification"],
              "auto_map": {"AutoConfig": "layers_fasttext.FastTextConfig",
                           "AutoModelForSequenceClassification": "modeling_fasttext.FastTextForSequenceClassification"},
              "dtype": "float32", "id2label": {str(i): n for i, n in id2label.items()},
              "label2id": {n: i for i, n in id2label.items()}, "max_seq_length": tok_max if tok_max else None,
              "model_type": "nct-fasttext", "nct_raw_labels": list(label_map.raw), "pad_token_id": 0,
              "transformers_version": _transformers_version(), "vocab_size": vocab_size}
    train_bags = K.fasttext_bag_ids(*_encode(tokenizer, texts, max_length), vocab_size, word_ngrams, bucket)
    dev_bags = (K.fasttext_bag_ids(*_encode(tokenizer, dev_texts, max_length), vocab_size, word_ngrams, bucket)
                if dev_texts is not None else None)
    weights = K.init_fasttext_weights(vocab_size + bucket, dim, len(id2label), 0, recipe.train.seed)
    # the saved tokenizer.json is the trainer's: truncation as set by tokenizing, and the plain template
    # (no special tokens) transformers' tokenizer class puts on its backend
    from tokenizers import processors

    if max_length:
        tokenizer.enable_truncation(int(max_length), stride=0, strategy="longest_first", direction="right")
    tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B:1", special_tokens=[])
    model = CompiledFastText(weights, train_bags, np.asarray(labels, dtype=np.int64), dev_bags, config, tokenizer,
                             tok_max)
    return (model, np.asarray(dev_labels, dtype=np.int64) if dev_labels is not None else None,
            list(label_map.names))


def _transformers_version() -> Optional[str]:
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return None
