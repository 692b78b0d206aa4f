"""Classic text-classification baselines as Hugging Face models: TextCNN, FastText, DPCNN, TextRNN (+ attention
pooling) and TextRCNN.

Each model is a :class:`transformers.PreTrainedModel` with its own :class:`transformers.PretrainedConfig`
(``model_type`` ``nct-textcnn``, ``nct-fasttext``, ``nct-dpcnn``, ``nct-textrnn``, ``nct-textrcnn``), saves as
safetensors with ``save_pretrained``, and -- after :func:`register_auto_classes` (called by the package's
loaders, or ``nlp_cv_tricks.register_auto_classes()``) -- loads with
``AutoModelForSequenceClassification.from_pretrained(dir)``. Each family lives in two self-contained files (torch
and transformers only): ``layers_<family>.py`` holds its config and layers (sharing ``layers_base.py``),
``modeling_<family>.py`` puts the layers on ``PreTrainedModel`` (sharing ``modeling_base.py``); all four are saved
next to each model with an ``auto_map``: without this package, ``AutoModelForSequenceClassification.from_pretrained(dir,
trust_remote_code=True)`` loads it. The recipes train the same layers as a plain ``nn.Module`` (``modules.py``),
which saves the same files without importing ``transformers.modeling_utils``.

Common behaviour, so that the generic trainer and the tricks can drive them like any HF classifier:

* ``model(input_ids=..., attention_mask=..., labels=...)`` returns a ``SequenceClassifierOutput`` (loss when
  ``labels`` are given: cross-entropy, MSE for ``num_labels == 1``, BCE for
  ``problem_type="multi_label_classification"``, as in HF models); ``token_type_ids`` is accepted and ignored;
  ``inputs_embeds`` replaces the embedding lookup (not for FastText, whose input is a bag).
* ``get_input_embeddings()`` returns the token embedding module, so adversarial tricks (FGM/PGD/FreeLB) can
  hook its output. For FastText it is the ``EmbeddingBag``, whose output is the averaged text vector.
* Padding never changes the logits: padded positions are masked (zeroed before convolutions, excluded from max-
  and mean-pooling, skipped by packed RNNs), so a text gives the same logits alone or in a padded batch.
* Options shared by all: ``dropout`` (before the classifier), ``embedding_dropout`` (on the embedding output),
  ``norm`` = ``"none" | "batch" | "layer"`` (BatchNorm/LayerNorm on the hidden features; the tip: LayerNorm for
  sequence features, BatchNorm otherwise), ``freeze_embeddings`` (static pretrained vectors),
  ``init`` = ``"xavier_normal"`` (the reference THUCNews code) ``| "xavier_uniform" | "kaiming" | "normal"``.

Published reference numbers (THUCNews test accuracy, 180k train, 649453932/Chinese-Text-Classification-Pytorch):
TextCNN 91.22, TextRNN 91.12, TextRNN_Att 90.90, TextRCNN 91.54, FastText 92.23, DPCNN 91.25.

Costs (32-char titles, defaults): FastText is a lookup + mean (no convolution, sparse gradients) -- by far the
fastest; TextCNN one convolution layer; DPCNN ~ 2 + 2*num_blocks convolution layers of 250 filters; the RNNs are
sequential in the length and the slowest per token on CPU.
"""

from __future__ import annotations

import inspect
import logging
from typing import Callable, Optional

from torch import nn
from transformers import PretrainedConfig

from ...data.vocab import build_tokenizer, detect_level, load_pretrained_vectors
from ..baseline_names import BASELINE_ALIASES
from ..baseline_names import TOKENIZER_KEYS as _TOKENIZER_KEYS
from .layers_base import TextBaselineConfig  # noqa: F401  (re-exported: each family lives in its own files)
from .layers_dpcnn import DPCNNConfig
from .layers_fasttext import FastTextConfig, FastTextLayers
from .layers_textcnn import TextCNNConfig
from .layers_textrcnn import TextRCNNConfig
from .layers_textrnn import TextRNNConfig
from .modules import MODULE_CLASSES as _MODULES
from .modules import DPCNNModule, FastTextModule, TextCNNModule, TextRCNNModule, TextRNNModule

# the PreTrainedModel classes (modeling_<family>.py) import transformers.modeling_utils (~2 s): loaded on first use
_PRETRAINED = {m.pretrained_class_name: m.family for m in _MODULES}


def __getattr__(name: str):
    if name in _PRETRAINED:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.modeling_{_PRETRAINED[name]}"), name)
    if name == "MODEL_CLASSES":
        return [__getattr__(n) for n in _PRETRAINED]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "TextBaselineConfig",
    "TextCNNConfig",
    "FastTextConfig",
    "DPCNNConfig",
    "TextRNNConfig",
    "TextRCNNConfig",
    "TextCNNForSequenceClassification",
    "FastTextForSequenceClassification",
    "DPCNNForSequenceClassification",
    "TextRNNForSequenceClassification",
    "TextRCNNForSequenceClassification",
    "BASELINES",
    "MODEL_CLASSES",
    "register_auto_classes",
    "build_baseline",
    "preferred_optimizer",
    "architecture_builder",
    "register_architectures",
]

logger = logging.getLogger(__name__)


# =============================================================================================================
# registry, Auto* registration, builder, optimizer hint
# =============================================================================================================
#: name -> (config class, ``nn.Module`` class (``modules.py``; its ``pretrained_class_name`` is the
#: ``PreTrainedModel``), config defaults that define the variant)
BASELINES: dict[str, tuple[type, type, dict]] = {
    "textcnn": (TextCNNConfig, TextCNNModule, {}),
    "fasttext": (FastTextConfig, FastTextModule, {}),
    "dpcnn": (DPCNNConfig, DPCNNModule, {}),
    "textrnn": (TextRNNConfig, TextRNNModule, {}),
    "textrnn_att": (TextRNNConfig, TextRNNModule, {"pooling": "attention"}),
    "textrcnn": (TextRCNNConfig, TextRCNNModule, {}),
}


def register_auto_classes() -> None:
    """Register every baseline config with ``AutoConfig`` and model with ``AutoModelForSequenceClassification``.

    Idempotent (safe to call many times). After it, ``AutoModelForSequenceClassification.from_pretrained(dir)``
    loads a saved baseline.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    for name in _PRETRAINED:
        model_cls = __getattr__(name)
        cfg_cls = model_cls.config_class
        AutoConfig.register(cfg_cls.model_type, cfg_cls, exist_ok=True)
        AutoModelForSequenceClassification.register(cfg_cls, model_cls, exist_ok=True)


def _config_params(cfg_cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cfg_cls.__mro__:
        if klass is PretrainedConfig or not issubclass(klass, PretrainedConfig):
            break
        names |= {p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "kwargs")}
    return names


_VECTOR_KEYS = ("pretrained_vectors", "vectors_vocab", "vectors_npz_key", "vectors_lowercase_fallback", "vectors_seed")


_detect_level = detect_level


def _as_text_list(texts) -> list:
    """``texts`` as a list: a ``datasets`` column (``Dataset[col]``, a lazy ``Column`` in datasets >= 4) is
    materialised with one slice -- one Arrow conversion, ~30x faster than iterating it row by row (0.02 s vs
    0.65 s for 45k THUCNews titles)."""
    if isinstance(texts, list):
        return texts
    if type(texts).__module__.startswith("datasets"):
        try:
            out = texts[:]
            if isinstance(out, list):
                return out
        except (TypeError, KeyError, IndexError):
            pass
    return list(texts)


def build_baseline(
    name: str,
    model_kwargs: Optional[dict] = None,
    tokenizer_kwargs: Optional[dict] = None,
    train_texts: Optional[list[str]] = None,
    id2label: Optional[dict] = None,
    pretrained_model: bool = True,
):
    """Build a baseline from scratch: train its tokenizer on ``train_texts``, create the model, and load
    pretrained vectors when ``model_kwargs`` names them.

    Args:
        name: ``textcnn``, ``fasttext``, ``dpcnn``, ``textrnn``, ``textrnn_att`` or ``textrcnn``
            (aliases: cnn, bilstm, rcnn, ...).
        model_kwargs: fields of the model's config (see each ``*Config``), e.g. ``embedding_dim``, ``dropout``,
            ``embedding_dropout``, ``norm``, ``freeze_embeddings``, ``init``; TextCNN: ``filter_sizes``,
            ``num_filters``, ``multichannel``; FastText: ``word_ngrams``, ``bucket``, ``hidden_size``, ``sparse``;
            DPCNN: ``num_filters``, ``region_size``, ``num_blocks``; TextRNN: ``rnn_type``, ``hidden_size``,
            ``num_layers``, ``bidirectional``, ``pooling``, ``rnn_dropout``; TextRCNN: ``rnn_type``,
            ``hidden_size``, ``num_layers``, ``latent_size``. Plus the vector keys:
            ``pretrained_vectors`` (path: ``.npz``/``.npy`` + ``vectors_vocab``, word2vec ``.bin``, or
            word2vec/GloVe text), ``vectors_vocab`` (row-aligned vocab file), ``vectors_npz_key``,
            ``vectors_lowercase_fallback`` (default True), ``vectors_seed`` (default 0). With vectors,
            ``embedding_dim`` defaults to the file's dimension.
        tokenizer_kwargs: ``level`` (``"char"``, ``"word"`` or ``"auto"`` = char when > 30% of the characters are
            CJK; default auto), ``max_vocab_size``, ``min_freq``, ``lowercase``, ``unicode_normalization``,
            ``split``, ``keep_whitespace``, ``max_length`` (default 128) -- see
            :func:`nlp_cv_tricks.data.vocab.build_tokenizer`.
        train_texts: the training texts (the vocabulary is built from them only).
        id2label: ``{id: label name}``; gives ``num_labels``.
        pretrained_model: True: the family's ``transformers.PreTrainedModel`` (``TextCNNForSequenceClassification``,
            ...); False: the same network as a plain ``nn.Module`` (:mod:`.modules`: same parameters, init and
            forward; ``save_pretrained`` writes the same files, loaded back as the ``PreTrainedModel``), which
            spares the ~2 s import of ``transformers.modeling_utils`` -- what the recipes' trainer builds.

    Returns:
        ``(model, tokenizer)``; ``model.config.pretrained_vectors`` holds the vector report (coverage) when
        vectors were loaded, and ``model.vector_report`` the :class:`~nlp_cv_tricks.data.vocab.VectorReport`.

    Raises:
        ValueError for an unknown name or key (the message lists the accepted ones).
    """
    key = name.lower().strip()
    key = BASELINE_ALIASES.get(key, key)
    if key not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    cfg_cls, module_cls, variant = BASELINES[key]
    model_cls = __getattr__(module_cls.pretrained_class_name) if pretrained_model else module_cls
    model_kwargs = dict(model_kwargs or {})
    tokenizer_kwargs = dict(tokenizer_kwargs or {})
    if not train_texts:
        raise ValueError(f"build_baseline({name!r}): train_texts is empty; the tokenizer is trained on it")
    if not id2label:
        raise ValueError(f"build_baseline({name!r}): id2label is required (e.g. {{0: 'neg', 1: 'pos'}})")
    id2label = {int(k): str(v) for k, v in id2label.items()}

    vec = _split_vector_keys(key, cfg_cls, model_kwargs, tokenizer_kwargs)
    train_texts = _as_text_list(train_texts)
    tokenizer = _train_tokenizer(train_texts, tokenizer_kwargs)
    matrix, report = _load_vectors(key, tokenizer, vec, model_kwargs, train_texts)

    cfg_kwargs = {**variant, **model_kwargs}
    config = cfg_cls(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        max_seq_length=tokenizer.model_max_length if tokenizer.model_max_length < 10**9 else None,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        pretrained_vectors=report.to_dict() if report is not None else None,
        **cfg_kwargs,
    )
    model = model_cls(config)
    if matrix is not None:
        model.load_embedding_matrix(matrix)
    model.vector_report = report
    return model, tokenizer


def _split_vector_keys(key: str, cfg_cls: type, model_kwargs: dict, tokenizer_kwargs: dict) -> dict:
    """Check the tokenizer and model keys; pop the vector keys out of ``model_kwargs`` and return them."""
    import difflib

    bad_tok = sorted(set(tokenizer_kwargs) - set(_TOKENIZER_KEYS))
    if bad_tok:
        near = difflib.get_close_matches(bad_tok[0], list(_TOKENIZER_KEYS), n=1)
        raise ValueError(f"build_baseline: unknown model.kwargs.tokenizer keys {bad_tok}"
                         + (f"; did you mean {near[0]!r}?" if near else "") + f" (accepted: {list(_TOKENIZER_KEYS)})")
    accepted = _config_params(cfg_cls) - {"vocab_size", "pad_token_id", "max_seq_length", "pretrained_vectors"}
    # a key set to null (``model.kwargs.pretrained_vectors=null`` on the command line) is no key
    vec = {k: v for k in _VECTOR_KEYS if k in model_kwargs and (v := model_kwargs.pop(k)) is not None}
    bad = sorted(set(model_kwargs) - accepted - {"problem_type"})
    if bad:
        valid = sorted(accepted | set(_VECTOR_KEYS))
        near = difflib.get_close_matches(bad[0], valid, n=1)
        raise ValueError(
            f"build_baseline({key!r}): unknown model.kwargs {bad}"
            + (f"; did you mean {near[0]!r}?" if near else "") + f" (accepted: {valid})"
        )
    return vec


def _train_tokenizer(train_texts: list, tokenizer_kwargs: dict):
    """The baseline's tokenizer, trained on ``train_texts`` (level ``"auto"``: char for mostly-CJK text)."""
    level = tokenizer_kwargs.pop("level", "auto")
    if level == "auto":
        level = _detect_level(train_texts)
        logger.info("build_baseline: tokenizer level auto-detected as %r", level)
    tokenizer_kwargs.setdefault("max_length", 128)
    return build_tokenizer(train_texts, level=level, **tokenizer_kwargs)


def _load_vectors(key: str, tokenizer, vec: dict, model_kwargs: dict, train_texts: list) -> tuple:
    """``(embedding matrix, VectorReport)`` when ``vec`` names pretrained vectors, else ``(None, None)``;
    ``embedding_dim`` defaults to the vectors' dimension."""
    if vec.get("pretrained_vectors"):
        matrix, report = load_pretrained_vectors(
            tokenizer,
            vec["pretrained_vectors"],
            vec.get("vectors_vocab"),
            texts=train_texts,
            npz_key=vec.get("vectors_npz_key"),
            lowercase_fallback=vec.get("vectors_lowercase_fallback", True),
            seed=vec.get("vectors_seed", 0),
        )
        dim = matrix.shape[1]
        if model_kwargs.setdefault("embedding_dim", dim) != dim:
            raise ValueError(
                f"build_baseline({key!r}): embedding_dim={model_kwargs['embedding_dim']} but the vectors in "
                f"{vec['pretrained_vectors']} have dimension {dim}"
            )
        return matrix, report
    if any(k in vec for k in ("vectors_vocab", "vectors_npz_key")):
        raise ValueError("build_baseline: vectors_vocab/vectors_npz_key given without pretrained_vectors")
    return None, None


def preferred_optimizer(model: nn.Module) -> dict:
    """The optimizer the tip recommends for ``model`` (what ``train.optimizer: auto`` picks): Adagrad for
    sparse-feature models (FastText with sparse gradients: only the rows a batch touches get updated, and Adagrad's
    per-row accumulators make it insensitive to the learning rate), Adam for dense ones.

    The fastest choice for FastText is plain SGD with a linearly decaying learning rate -- what the official
    fastText does (Joulin et al. 2016) -- and what ``recipes/thucnews_fasttext.yaml`` uses: its sparse update is
    one row update (compiled with numba, the ``fast`` extra: :class:`nlp_cv_tricks.engine.optim.SparseRowSGD`), while
    Adagrad also sums the duplicate rows and keeps a squared-gradient table as large as the bag (about 2x the
    training time with :class:`nlp_cv_tricks.engine.optim.SparseRowAdagrad`; benchmarks/RESULTS.md). SGD needs
    ``momentum: 0`` with sparse gradients (a momentum buffer of sparse gradients grows with every step) and a
    learning rate scaled with the batch (``lr ~ per-example lr x batch_size``, as the loss is the batch mean; 48
    for batch 128 on THUCNews).

    Returns:
        ``{"name": "adagrad" | "adam", "lr": float, "weight_decay": 0.0, "sparse": bool, "reason": str}``.
        ``lr`` is a starting point (Adagrad 0.2 for the bag, Adam 1e-3 as in the THUCNews reference); weight
        decay must stay 0 with sparse gradients (torch refuses it).
    """
    m = getattr(model, "module", model)  # DDP
    if isinstance(m, FastTextLayers) and m.preferred_optimizer() == "adagrad":
        return {
            "name": "adagrad",
            "lr": 0.2,
            "weight_decay": 0.0,
            "sparse": True,
            "reason": "sparse EmbeddingBag gradients: Adagrad supports them; Adam/AdamW do not",
        }
    return {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "sparse": False, "reason": "dense gradients"}


def _split_recipe_kwargs(name: str, kwargs: dict, overrides: Optional[dict]) -> tuple[dict, dict]:
    """Recipe ``model.kwargs`` -> (model_kwargs, tokenizer_kwargs): tokenizer keys may sit at the top level or
    under ``tokenizer:``; ``model.config_overrides`` are merged into the model kwargs."""
    kwargs = dict(kwargs or {})
    tok = dict(kwargs.pop("tokenizer", None) or {})
    for k in list(kwargs):
        if k in _TOKENIZER_KEYS:
            if k in tok:
                raise ValueError(f"model.kwargs: {k!r} given both at the top level and under tokenizer")
            tok[k] = kwargs.pop(k)
    for k, v in (overrides or {}).items():
        kwargs[k] = v
    return kwargs, tok


def architecture_builder(name: str) -> Callable:
    """The builder ``(model_cfg, train_texts, id2label) -> (model, tokenizer)`` of the baseline ``name``
    (``textcnn``, ``fasttext``, ``dpcnn``, ``textrnn``, ``textrnn_att``, ``textrcnn``), by which a recipe with
    ``model.name: textcnn`` builds it from scratch on the training texts (the model factory's
    ``BUILTIN_ARCHITECTURES`` names this function). ``model.kwargs`` holds the config fields and vector keys of
    :func:`build_baseline`; tokenizer keys (``level``, ``max_length``, ...) go at the top level or under
    ``model.kwargs.tokenizer``."""

    def builder(model_cfg, train_texts, id2label):
        mk, tk = _split_recipe_kwargs(name, getattr(model_cfg, "kwargs", None),
                                      getattr(model_cfg, "config_overrides", None))
        return build_baseline(name, mk, tk, list(train_texts), id2label, pretrained_model=False)

    builder.__name__ = f"build_{name}"
    return builder


def register_architectures() -> None:
    """Nothing to do: the model factory lists the baselines (``BUILTIN_ARCHITECTURES``) and loads one when a recipe
    names it. Kept so that code written when they had to be registered first still runs."""
