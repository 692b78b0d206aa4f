"""Recipes: YAML files loaded into typed dataclasses, with dotted command-line overrides and clear errors.

A recipe has six sections — ``data``, ``model``, ``train``, ``tricks``, ``callbacks``, ``output`` — plus ``name``,
``task`` and ``task_options`` (the task's own options, typed and checked by the task's options dataclass in
``nlp_cv_tricks/tasks/``; ``model.kwargs`` holds the model's constructor arguments only). Any key can be
overridden on the command line as ``section.key=value`` (the value is parsed as YAML, then converted to the
field's type, so ``train.learning_rate=3e-5`` is a float). Lists can be replaced
(``tricks=[fgm,rdrop]``) or extended (``tricks+=fgm``). An unknown or mistyped key is an error that names the
key and the nearest valid one.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .utils.bundled import bundled_recipes
from .utils.io import atomic_write_bytes, atomic_write_text  # noqa: F401  (their home is utils/io.py)

logger = logging.getLogger(__name__)

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "OutputConfig",
    "Recipe",
    "RecipeError",
    "load_recipe",
    "resolve_recipe",
    "apply_overrides",
    "recipe_to_dict",
    "save_recipe",
    "split_task_options",
    "saved_task_options",
    "task_option_key",
    "check_task_option_keys",
]


class RecipeError(ValueError):
    """A recipe file or override is invalid; the message names the file/key and what was expected."""


@dataclass
class DataConfig:
    """Where the data comes from and how to read it.

    ``format``: ``auto`` (by file extension), ``csv``, ``tsv`` (header row), ``json``/``jsonl``, ``parquet``,
    ``kim2014`` (``<label> <text>`` lines, as in ../shared/data/kim2014), ``thucnews`` (``text<TAB>label_id``
    lines, no header), or ``hub`` (``hub_name`` is a Hugging Face dataset id).

    ``dev_fraction``: when there is no dev file (or Hub dev split), carve a seeded, stratified dev split of this
    fraction out of the training data (``split_seed``); the rows go to exactly one of the two splits.

    ``root``: the folder that relative data paths are read from when they are not found from the current
    directory (else the ``NLP_CV_TRICKS_DATA`` environment variable, else ``../shared/data`` when present; see
    :mod:`nlp_cv_tricks.data.root`).

    ``tensor_batches``: with the default collator, pad the token columns into tensors once and cut each batch from
    them (:class:`nlp_cv_tricks.data.batches.PaddedTokenDataset`): the same batches, without per-row Python work
    per step. Datasets it cannot serve exactly (extra columns, left padding) keep the collator.
    """

    train_file: Optional[str] = None
    dev_file: Optional[str] = None
    test_file: Optional[str] = None
    format: str = "auto"
    hub_name: Optional[str] = None
    hub_config: Optional[str] = None
    train_split: str = "train"
    dev_split: Optional[str] = "validation"
    test_split: Optional[str] = None
    text_column: str = "text"
    text_pair_column: Optional[str] = None
    label_column: str = "label"
    label_names: Optional[list] = None
    label_names_file: Optional[str] = None
    encoding: str = "utf-8"
    max_length: int = 128
    group_by_length: bool = False
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    num_workers: int = 0
    dev_fraction: Optional[float] = None
    split_seed: int = 42
    tensor_batches: bool = True
    root: Optional[str] = None


@dataclass
class ModelConfig:
    """Which model to fine-tune.

    ``name``: a Hub id, a local directory, an alias (``minilm-l6``), or a built-in architecture of this package
    (e.g. ``textcnn``). ``config_overrides`` are set on the model config before the weights load (e.g.
    ``hidden_dropout_prob``); ``kwargs`` go to built-in architectures and their tokenizers, or are the timm
    model's arguments. The task's options are not model arguments: they live in the recipe's ``task_options``.
    """

    name: str = "minilm-l6"
    tokenizer: Optional[str] = None
    from_scratch: bool = False
    config_overrides: dict = field(default_factory=dict)
    kwargs: dict = field(default_factory=dict)
    gradient_checkpointing: bool = False
    revision: Optional[str] = None


@dataclass
class TrainConfig:
    """The optimisation loop (see :class:`nlp_cv_tricks.engine.trainer.Trainer`)."""

    seed: int = 42
    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 32
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    optimizer: str = "adamw"
    learning_rate: float = 5e-5
    momentum: float = 0.9
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: Optional[float] = 1.0
    mixed_precision: str = "no"
    logging_steps: int = 10
    eval_steps: Optional[int] = None
    eval_each_epoch: bool = True
    metric: str = "accuracy"
    greater_is_better: Optional[bool] = None
    early_stopping_patience: Optional[int] = None
    save_steps: Optional[int] = None
    save_total_limit: Optional[int] = 2
    resume_from: Optional[str] = None
    resume_force: bool = False  # resume although the recipe changed (engine/resume_check.py); the change is recorded
    nonfinite: str = "error"
    cpu: bool = False
    progress_bar: bool = True
    # which loop trains: "auto" = the compiled FastText loop when the recipe is one it runs (FastText, plain SGD,
    # no tricks: engine/compiled_loop.py) and numba is installed, else the trainer; "trainer"; "compiled" (an error
    # naming the options it cannot run)
    engine: str = "auto"


@dataclass
class OutputConfig:
    """Where a run writes. ``dir`` may use ``{name}`` and ``{timestamp}``. An existing non-empty run directory
    is never written into unless ``overwrite`` is true or the run resumes from it."""

    dir: str = "runs/{name}/{timestamp}"
    overwrite: bool = False
    report_to: str = "tensorboard"
    save_best: bool = True
    report: bool = True  # report.html + report_files/ with figures at the end of training (nlp_cv_tricks.report)


@dataclass
class Recipe:
    name: str = "run"
    task: str = "text-classification"
    task_options: dict = field(default_factory=dict)  # read by the task's options dataclass (nlp_cv_tricks.tasks)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tricks: list = field(default_factory=list)  # act on the step (nlp_cv_tricks.tricks)
    callbacks: list = field(default_factory=list)  # observe: log, evaluate, warn (nlp_cv_tricks.callbacks)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: Optional[str] = field(default=None, metadata={"internal": True})

    def validate(self) -> "Recipe":
        _validate(self)
        return self


# The built-in tasks (their builders: nlp_cv_tricks.tasks.TASKS); plug-ins add theirs with register_task_name.
BUILTIN_TASKS = ("text-classification", "long-text-classification", "question-answering", "image-classification")

_CHOICES = {
    "task": set(BUILTIN_TASKS),
    "data.format": {"auto", "csv", "tsv", "json", "jsonl", "parquet", "kim2014", "thucnews", "hub"},
    "train.optimizer": {"adamw", "adam", "sgd", "adagrad", "adadelta", "sparse_adam", "auto"},
    "train.lr_scheduler": {"linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts",
                           "polynomial"},
    "train.mixed_precision": {"no", "bf16", "fp16"},
    "train.nonfinite": {"error", "skip"},
    "train.engine": {"auto", "trainer", "compiled"},
    "output.report_to": {"tensorboard", "none", "wandb", "mlflow", "comet_ml", "aim", "all"},
}

# Tasks contributed by other modules register here (e.g. question answering).
def register_task_name(name: str) -> None:
    _CHOICES["task"].add(name)


def _validate(r: Recipe) -> None:
    for key, choices in _CHOICES.items():
        value = _get(r, key)
        if value not in choices:
            near = difflib.get_close_matches(str(value), sorted(choices), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise RecipeError(f"{_where(r)}{key}={value!r} is not one of {sorted(choices)}{hint}")
    positive = ["train.epochs", "train.batch_size", "train.eval_batch_size", "train.gradient_accumulation_steps",
                "train.logging_steps", "data.max_length"]
    for key in positive:
        if _get(r, key) < 1:
            raise RecipeError(f"{_where(r)}{key} must be >= 1, got {_get(r, key)}")
    for key in ["train.max_steps", "train.eval_steps", "train.save_steps", "train.save_total_limit",
                "train.early_stopping_patience", "data.max_train_samples", "data.max_eval_samples"]:
        v = _get(r, key)
        if v is not None and v < 1:
            raise RecipeError(f"{_where(r)}{key} must be >= 1 or null, got {v}")
    if r.train.learning_rate <= 0:
        raise RecipeError(f"{_where(r)}train.learning_rate must be > 0, got {r.train.learning_rate}")
    if not 0.0 <= r.train.warmup_ratio < 1.0:
        raise RecipeError(f"{_where(r)}train.warmup_ratio must be in [0, 1), got {r.train.warmup_ratio}")
    if r.data.dev_fraction is not None and not 0.0 < r.data.dev_fraction < 1.0:
        raise RecipeError(f"{_where(r)}data.dev_fraction must be in (0, 1) or null, got {r.data.dev_fraction}")
    if r.data.dev_fraction is not None and r.data.dev_file:
        raise RecipeError(f"{_where(r)}data.dev_fraction and data.dev_file are both set; the dev split would be "
                          "ambiguous: keep one")
    if not 0.0 <= r.train.momentum < 1.0:
        raise RecipeError(f"{_where(r)}train.momentum must be in [0, 1), got {r.train.momentum}")
    if r.data.format == "hub" and not r.data.hub_name:
        raise RecipeError(f"{_where(r)}data.format=hub needs data.hub_name (a Hugging Face dataset id)")
    if r.data.format != "hub" and not r.data.train_file and not r.data.hub_name:
        raise RecipeError(f"{_where(r)}data.train_file is required (or data.hub_name for a Hub dataset)")
    _validate_plugin_lists(r)


def _validate_plugin_lists(r: Recipe) -> None:
    for key in ("tricks", "callbacks"):
        if not isinstance(getattr(r, key), list):
            raise RecipeError(f"{_where(r)}{key} must be a list, got {type(getattr(r, key)).__name__}")


def _where(r: Recipe) -> str:
    return f"{r.source}: " if r.source else ""


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


# ---- typed construction ----------------------------------------------------------------------------------

def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _all_keys(cls: type = Recipe, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for name in _fields(cls):
        t = hints[name]
        if dataclasses.is_dataclass(t):
            keys.extend(_all_keys(t, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _unknown_key_error(key: str, where: str) -> RecipeError:
    top = list(_fields(Recipe))
    head = key.split(".", 1)[0]
    if head not in top:  # a mistyped section (trian:, trian.epochs) is matched among the sections first
        near = difflib.get_close_matches(head, top, n=1, cutoff=0.6)
        if near:
            fixed = near[0] + key[len(head):]
            if "." not in key or fixed in _all_keys() or fixed.startswith(("model.config_overrides.",
                                                                          "model.kwargs.", "task_options.")):
                what = "section" if "." not in key and near[0] in _sections() else "key"
                return RecipeError(f"{where}unknown recipe {what} {key!r}; did you mean {fixed!r}?")
    valid = _all_keys()
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not near:  # try the leaf name alone: "lr" → nothing, "learning_rte" → train.learning_rate
        leaf = key.rsplit(".", 1)[-1]
        leaves = {k.rsplit(".", 1)[-1]: k for k in valid}
        m = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)
        near = [leaves[m[0]]] if m else []
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return RecipeError(f"{where}unknown recipe key {key!r}{hint}")


def _sections() -> set[str]:
    return {name for name, t in typing.get_type_hints(Recipe).items() if dataclasses.is_dataclass(t)}


def _coerce(value: Any, t: Any, key: str, where: str) -> Any:  # noqa: C901  (complex today; the list only shrinks)
    origin = typing.get_origin(t)
    if origin is Union:
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in {"null", "none", "~"}):
            return None
        return _coerce(value, args[0], key, where)
    if value is None:
        raise RecipeError(f"{where}{key} may not be null (expected {getattr(t, '__name__', t)})")
    try:
        if t is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "yes", "1", "on"}:
                return True
            if isinstance(value, str) and value.lower() in {"false", "no", "0", "off"}:
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if t is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        if t is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if t is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            if isinstance(value, bool):  # YAML 1.1 reads `no`/`yes` as booleans (mixed_precision: no)
                return "yes" if value else "no"
            return str(value)
        if t is list or origin is list:
            if not isinstance(value, list):
                raise ValueError
            return list(value)
        if t is dict or origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        tname = getattr(t, "__name__", str(t))
        raise RecipeError(f"{where}{key}: expected {tname}, got {value!r}") from None
    return value


def _build(cls: type, data: Any, prefix: str, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{where}{prefix.rstrip('.') or 'recipe'} must be a mapping, got {data!r}")
    fields = _fields(cls)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key_error(f"{prefix}{key}", where)
        t = hints[key]
        if dataclasses.is_dataclass(t):
            kwargs[key] = _build(t, value, f"{prefix}{key}.", where)
        else:
            kwargs[key] = _coerce(value, t, f"{prefix}{key}", where)
    return cls(**kwargs)


def recipe_from_dict(data: dict, source: Optional[str] = None) -> Recipe:
    where = f"{source}: " if source else ""
    r = _build(Recipe, data, "", where)
    _check_not_both(r.task_options, r.model.kwargs, where)
    r.source = source
    return r.validate()


def recipe_to_dict(r: Recipe) -> dict:
    d = dataclasses.asdict(r)
    d.pop("source", None)
    return d


def flat_recipe(r: Recipe) -> dict:
    """The recipe as ``{"section.key": value}`` (lists as JSON text): what trackers record as a run's settings."""
    import json

    def flatten(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flatten(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v if not isinstance(v, list) else json.dumps(v)
        return out

    return flatten(recipe_to_dict(r))


# ---- overrides --------------------------------------------------------------------------------------------

def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _leaf_type(parts: list[str]) -> Any:
    """The declared type of a dotted key (``Optional`` unwrapped), or None for keys inside dict fields."""
    cls: Any = Recipe
    for p in parts:
        if not dataclasses.is_dataclass(cls) or p not in _fields(cls):
            return None
        cls = typing.get_type_hints(cls)[p]
    args = [a for a in typing.get_args(cls) if a is not type(None)] if typing.get_origin(cls) is Union else [cls]
    return args[0] if len(args) == 1 else None


def apply_overrides(data: dict, overrides: list[str], where: str = "command line: ") -> dict:
    """Apply ``key=value`` / ``key+=value`` overrides to a raw recipe mapping (before typing)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"{where}override {item!r} must look like key=value (e.g. train.learning_rate=3e-5)")
        key, _, raw = item.partition("=")
        append = key.endswith("+")
        key = _task_option_override(key.rstrip("+").strip(), data)
        parts = key.split(".")
        # dict-valued leaves (model.config_overrides.x, model.kwargs.x, task_options.x) may take sub-keys
        if key not in _all_keys() and not (
                (len(parts) >= 3 and ".".join(parts[:2]) in {"model.config_overrides", "model.kwargs"})
                or (len(parts) >= 2 and parts[0] == "task_options")):
            raise _unknown_key_error(key, where)
        value = raw if _leaf_type(parts) is str else _parse_value(raw)
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        leaf = parts[-1]
        if append:
            current = node.get(leaf)
            if current is None:
                current = []
            if not isinstance(current, list):
                raise RecipeError(f"{where}{key}+= only works on lists; {key} is {current!r}")
            node[leaf] = current + (value if isinstance(value, list) else [value])
        else:
            node[leaf] = value
    return data


# ---- task options -----------------------------------------------------------------------------------------
# A task's options (``task_options:``) are typed and checked by the task's own options dataclass
# (``nlp_cv_tricks/tasks/``), which also names the options it read from ``model.kwargs`` before ``task_options``
# existed: that spelling is still read (split_task_options), with a deprecation note once per key. Here, below the
# tasks, the two spellings are matched by the key alone: an option named in one place and found in the other.

def _model_kwargs(data: dict) -> Any:
    model = data.get("model")
    return model.get("kwargs") if isinstance(model, dict) else None


def task_option_key(key: str, data: dict) -> str:
    """``key`` (dotted) in the spelling of the recipe mapping ``data``: ``model.kwargs.<x>`` (the deprecated
    spelling of a task option) → ``task_options.<x>`` when ``data`` has ``task_options.<x>``; any other key as
    it is."""
    parts = key.split(".")
    opts = data.get("task_options")
    if len(parts) >= 3 and parts[:2] == ["model", "kwargs"] and isinstance(opts, dict) and parts[2] in opts:
        return ".".join(["task_options", *parts[2:]])
    return key


def _task_option_override(key: str, data: dict) -> str:
    """The key an override writes: a task option lives in one place, whichever spelling names it (the recipe's
    own spelling of it wins: an old-spelling recipe's option moves to ``task_options`` when one names it there)."""
    new = task_option_key(key, data)
    if new != key:
        _note_legacy(key.split(".")[2], "command line: ")
        return new
    parts = key.split(".")
    kwargs = _model_kwargs(data)
    if len(parts) >= 2 and parts[0] == "task_options" and isinstance(kwargs, dict) and parts[1] in kwargs:
        opts = data.get("task_options") if isinstance(data.get("task_options"), dict) else {}
        if parts[1] not in opts:
            data["task_options"] = {**opts, parts[1]: kwargs.pop(parts[1])}
    return key


_NOTED: set = set()


def _note_legacy(key: str, where: str) -> None:
    if key not in _NOTED:  # once per key and process
        _NOTED.add(key)
        logger.warning("%smodel.kwargs.%s is a task option: write it as task_options.%s (the model.kwargs spelling "
                       "is deprecated and still read)", where, key, key)


def _check_not_both(task_options: Any, model_kwargs: Any, where: str) -> None:
    if isinstance(task_options, dict) and isinstance(model_kwargs, dict):
        for key in task_options:
            if key in model_kwargs:
                raise RecipeError(f"{where}task_options.{key} and model.kwargs.{key} are both set; model.kwargs.{key} "
                                  f"is the deprecated spelling of task_options.{key}: keep task_options.{key}")


def split_task_options(task_options: Any, model_kwargs: Any, legacy: typing.Iterable[str],
                       where: str = "") -> tuple[dict, dict]:
    """``(task options, model kwargs)``: the options named in ``legacy`` (those a task read from ``model.kwargs``
    before ``task_options`` existed) found in ``model_kwargs`` moved into the task options, with a deprecation
    note once per key. The same key in both places is an error naming both."""
    if task_options is None:
        task_options = {}
    if not isinstance(task_options, dict):
        raise RecipeError(f"{where}task_options must be a mapping of the task's options, got {task_options!r}")
    if model_kwargs is None:
        model_kwargs = {}
    if not isinstance(model_kwargs, dict):
        raise RecipeError(f"{where}model.kwargs must be a mapping, got {model_kwargs!r}")
    _check_not_both(task_options, model_kwargs, where)
    legacy = set(legacy)
    opts, kwargs = dict(task_options), {}
    for key, value in model_kwargs.items():
        if key in legacy:
            _note_legacy(key, where)
            opts[key] = value
        else:
            kwargs[key] = value
    return opts, kwargs


def saved_task_options(recipe: Any, legacy: typing.Iterable[str], where: str = "") -> dict:
    """The task options of a recipe mapping (a run's ``recipe.yaml``), either spelling (:func:`split_task_options`)."""
    if not isinstance(recipe, dict):
        return {}
    return split_task_options(recipe.get("task_options"), _model_kwargs(recipe), legacy, where)[0]


def check_task_option_keys(given: dict, known: typing.Iterable[str], task: str, where: str = "") -> None:
    """Refuse a key of ``task_options`` that the task does not have, naming the nearest and the valid ones."""
    known = sorted(known)
    for key in given:
        if key in known:
            continue
        near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        valid = f"valid: {', '.join(known)}" if known else f"task {task} has no task options"
        raise RecipeError(f"{where}unknown task option task_options.{key} for task {task}{hint} ({valid})")


def resolve_recipe(recipe: Union[str, os.PathLike]) -> Path:
    """A recipe argument → its file: a file that exists, as given; else the name of a built-in recipe
    (``quickstart``, or ``quickstart.yaml``: :func:`nlp_cv_tricks.utils.bundled.bundled_recipes`, listed by
    ``nlp-cv-tricks recipes``). The one place where a name becomes a file: :func:`load_recipe` and the command
    line's verbs that take a recipe go through it. Anything else is a :class:`RecipeError` with the nearest names."""
    text = os.fspath(recipe)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise RecipeError(f"recipe {text!r} is a directory; give a recipe YAML file or a built-in recipe's name "
                          "(nlp-cv-tricks recipes lists them)")
    builtin = bundled_recipes()
    name = path.stem if path.suffix == ".yaml" else path.name
    if len(path.parts) == 1 and name in builtin:
        return builtin[name]
    if len(path.parts) > 1 or not builtin:  # a path: only a file will do
        hint = (f"; a built-in recipe has that name: use {name!r} (e.g. nlp-cv-tricks train {name})"
                if name in builtin else "")
        raise RecipeError(f"recipe file {text!r} does not exist{hint}")
    raise RecipeError(unknown_recipe_message(text, builtin))


def unknown_recipe_message(name: str, builtin: dict) -> str:
    """The did-you-mean of a name that is neither a recipe file nor a built-in recipe."""
    stem = Path(name).stem if name.endswith(".yaml") else name
    near = difflib.get_close_matches(stem, list(builtin), n=3, cutoff=0.5)
    if not near:  # a word of the name (textcnn, mnist) names a family of recipes
        near = [n for n in builtin if stem and stem.lower() in n.lower()][:3]
    hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    return (f"recipe {name!r} is neither a file nor a built-in recipe{hint} (built-in recipes: "
            f"{', '.join(builtin)}; `nlp-cv-tricks recipes` describes them)")


def load_recipe(path: Union[str, os.PathLike], overrides: Optional[list[str]] = None) -> Recipe:
    """Read a YAML recipe (a file, or a built-in recipe's name: :func:`resolve_recipe`), apply overrides, and
    return a validated :class:`Recipe`."""
    path = resolve_recipe(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections (data, model, train, tricks, output)")
    data = apply_overrides(data, overrides or [])
    try:
        r = recipe_from_dict(data, source=str(path))
    except RecipeError as e:
        # a bad value that came from the command line is the command line's fault, not the file's
        msg, prefix = str(e), f"{path}: "
        for item in reversed(overrides or []):
            key = item.partition("=")[0].rstrip("+").strip()
            if msg.startswith(prefix + key) and msg[len(prefix + key):][:1] in (":", "=", " ", "["):
                raise RecipeError(f"command line ({item}): " + msg[len(prefix):]) from None
        raise
    # relative data paths are resolved when the data are read (nlp_cv_tricks.data.root): the recipe keeps them
    # as written, so a saved recipe and a model card show no local paths
    return r


def save_recipe(r: Recipe, path: Union[str, os.PathLike]) -> None:
    atomic_write_text(path, yaml.safe_dump(recipe_to_dict(r), sort_keys=False, allow_unicode=True))
