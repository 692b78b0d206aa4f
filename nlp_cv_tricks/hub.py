"""Sharing trained models on the Hugging Face Hub: a model card built with ``huggingface_hub.ModelCard`` from the
facts of the run, and an upload in one commit.

The card describes the model it ships; what it says of the model and its inputs comes from the model's task
(:meth:`nlp_cv_tricks.engine.task.Task.card_model` and the other ``card_*`` methods): the base checkpoint or "trained from scratch", the epochs and optimizer steps actually done
(``training_summary.json``, written with every saved model), the input size (``max_length``, chunking, the image
size), the data by file name (or path relative to the recipe) -- never an absolute local path -- and ``model-index``
eval results. Image models are tagged ``library_name: timm``, the others ``transformers``; the package's own
architectures carry their modeling code (``auto_map``) and load with ``trust_remote_code=True``.

Tokens come from ``huggingface_hub``'s own lookup (``HF_TOKEN``, ``hf auth login``) and are never printed, logged
or written by this module."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Optional

import yaml

from .inference import resolve_model_dir
from .tasks import TASK_TYPES, task_type_of_model_dir
from .utils.publish import public_path as _public_path

__all__ = ["ModelFacts", "model_facts", "build_model_card", "model_card", "files_to_upload", "push"]

# written by the trainer but not part of a shareable model
_EXCLUDE_SUFFIXES = (".tmp", ".old")
_EXCLUDE_NAMES = {".DS_Store"}

# the headline metrics that go into model-index (the card's table shows them, or every scalar when none)
_MAIN_METRICS = ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "auc", "exact_match", "f1", "loss")

# ---------------------------------------------------------------------------------------------------------------
# the facts a card is built from
# ---------------------------------------------------------------------------------------------------------------
def _sanitized(obj: Any) -> Any:
    """The recipe as it may be published: every value that is an absolute local path becomes its file name."""
    if isinstance(obj, dict):
        return {k: _sanitized(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_sanitized(v) for v in obj]
    if isinstance(obj, str) and (PurePath(obj).is_absolute() or obj.startswith("~")):
        return _public_path(obj)
    return obj


def _card_recipe(recipe: dict, task_cls) -> dict:
    """The recipe shown in the card: without unset (None) values and without the keys that mean nothing for the
    task (for images, the text-only keys)."""
    out = {}
    for section, value in recipe.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None and v != {}
                     and task_cls.card_recipe_keeps(section, k, value)}
        if value is not None:
            out[section] = value
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


@dataclass
class ModelFacts:
    """What a card says about a saved model, read from its directory (and its run directory when it has one)."""

    task: str
    library: str                      # "transformers" or "timm"
    architecture: str                 # model_type / timm architecture
    own_code: bool                    # the package's architecture, saved with its modeling code (auto_map)
    base_model: Optional[str]         # a Hub id, for the card's base_model metadata
    origin: str                       # one sentence: fine-tuned from ... / trained from scratch ...
    from_scratch: bool
    labels: list = field(default_factory=list)
    inputs: list = field(default_factory=list)       # how inputs are prepared (task-specific lines)
    data: dict = field(default_factory=dict)         # role -> public file name / Hub dataset
    hub_dataset: Optional[str] = None
    training: dict = field(default_factory=dict)     # step, epoch, steps_per_epoch, planned_steps, ... (+ run_*)
    metrics: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)       # sanitized
    vectors: Optional[dict] = None


def _task_class(name: str):
    """The Task class of a task name; a task without one is described as text classification is."""
    if name in TASK_TYPES:
        return TASK_TYPES.get(name)
    from .tasks.text_classification import TextClassificationTask

    return TextClassificationTask


def _task_words(name: str) -> str:
    return TASK_TYPES.get(name).description if name in TASK_TYPES else name


def _training_facts(model_dir: Path, metrics: dict) -> dict:
    """Steps and epochs of the saved weights (``training_summary.json``), and how far the run went on after them
    (the run directory's ``metrics.json``). Models saved before the summary existed: the evaluation's step and,
    from the run's ``history.jsonl``, the epoch at that step."""
    facts = {k: v for k, v in _read_json(model_dir / "training_summary.json").items() if v is not None}
    if "step" not in facts and metrics.get("step") is not None:
        facts["step"] = metrics["step"]
    run = model_dir.parent
    history = run / "history.jsonl"
    if "epoch" not in facts and "step" in facts and history.is_file():
        for line in history.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("step") == facts["step"] and rec.get("epoch") is not None:
                facts["epoch"] = rec["epoch"]
    summary = _read_json(run / "metrics.json")
    if summary and Path(str(summary.get("model_dir", ""))).name == model_dir.name:
        facts["run_steps"] = summary.get("global_step")
        facts["stopped_early"] = bool(summary.get("stopped_early"))
        if summary.get("best_step") is not None and model_dir.name == "best":
            facts["selected_by"] = summary.get("metric")
    return facts


def _labels(config: dict) -> list:
    if config.get("label_names"):
        return [str(n) for n in config["label_names"]]
    id2label = config.get("id2label") or {}
    return [str(id2label[k]) for k in sorted(id2label, key=int)]


def model_facts(model_dir: os.PathLike) -> ModelFacts:
    """Read the facts of a saved model directory (``best/`` or ``final/`` of a run, or a copy of one)."""
    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    recipe = {}
    if (model_dir / "recipe.yaml").is_file():
        recipe = yaml.safe_load((model_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
    metrics = _read_json(model_dir / "eval_metrics.json")
    task = str(recipe["task"]) if recipe.get("task") else task_type_of_model_dir(model_dir).name
    data = recipe.get("data") or {}
    m = _task_class(task).card_model(config, recipe)  # what the model is and how its inputs are prepared

    files = {role: _public_path(data.get(key)) for role, key in (("train", "train_file"), ("dev", "dev_file"),
                                                                   ("test", "test_file"))}
    files = {k: v for k, v in files.items() if v}
    hub_dataset = data.get("hub_name") if data.get("format") == "hub" else None
    if not files.get("dev") and data.get("dev_fraction") and files.get("train"):
        files["dev"] = f"a seeded {data['dev_fraction']:.0%} stratified split of {files['train']}"
    return ModelFacts(task=task, library=m.library, architecture=m.architecture, own_code=m.own_code,
                      base_model=m.base_model, origin=m.origin, from_scratch=m.from_scratch, labels=_labels(config),
                      inputs=m.inputs, data=files, hub_dataset=hub_dataset,
                      training=_training_facts(model_dir, metrics), metrics=metrics, recipe=_sanitized(recipe),
                      vectors=m.vectors)


# ---------------------------------------------------------------------------------------------------------------
# the card
# ---------------------------------------------------------------------------------------------------------------
def _trick_names(tricks: list) -> list[str]:
    return [t if isinstance(t, str) else next(iter(t)) for t in tricks or []]


def _main_metrics(metrics: dict) -> dict:
    scalar = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and k != "step" and not k.startswith("eval/support")}
    main = {k: v for k, v in scalar.items() if k.split("/")[-1] in _MAIN_METRICS and k.count("/") <= 1}
    return main or scalar


def _fmt_num(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _training_lines(f: ModelFacts, train: dict) -> list[str]:
    t = f.training
    lines = []
    if t.get("step") is not None:
        what = f"{t['step']} optimizer steps"
        if t.get("epoch") is not None:
            what = f"{float(t['epoch']):.2f} epochs ({what}"
            what += f", {t['steps_per_epoch']} per epoch)" if t.get("steps_per_epoch") else ")"
        lines.append(f"- trained for {what}"
                     + (f" on {t['train_examples']:,} training examples" if t.get("train_examples") else ""))
        if t.get("selected_by") and t.get("run_steps") is not None:
            lines.append(f"- these weights are the checkpoint with the best `{t['selected_by']}`, at step {t['step']}"
                         f" of the {t['run_steps']} steps the run made"
                         + (" (stopped early)" if t.get("stopped_early") else ""))
        elif t.get("planned_steps") and t["planned_steps"] != t["step"] and t.get("run_steps") is None:
            lines.append(f"- the run was planned for {t['planned_steps']} steps")
    if train.get("max_steps"):
        lines.append(f"- recipe setting: max_steps {train['max_steps']} (instead of a number of epochs)")
    elif train.get("epochs") is not None:
        lines.append(f"- recipe setting: epochs {train['epochs']}")
    batch = train.get("batch_size")
    if batch:
        accum, procs = t.get("gradient_accumulation_steps") or train.get("gradient_accumulation_steps") or 1, \
            t.get("num_processes") or 1
        lines.append(f"- batch size {batch}" + (f" x {accum} accumulation steps" if accum > 1 else "")
                     + (f" x {procs} processes" if procs > 1 else ""))
    return lines


def _card_model(f: ModelFacts):
    from .engine.task import CardModel

    return CardModel(library=f.library, architecture=f.architecture, own_code=f.own_code, base_model=f.base_model,
                     origin=f.origin, from_scratch=f.from_scratch, inputs=list(f.inputs), vectors=f.vectors)


def _limitations(f: ModelFacts, max_length) -> list[str]:
    out = ["- Scores were measured on one dev set; they do not transfer automatically to other data."]
    out += _task_class(f.task).card_limitations(_card_model(f), max_length)
    if f.vectors:
        out.append("- The model inherits the biases of its training data and of its pretrained word vectors.")
    elif f.from_scratch:
        out.append("- The model inherits the biases of its training data.")
    else:
        out.append("- The model inherits the biases of its training data and of its base model.")
    return out


def build_model_card(model_dir: os.PathLike, repo_id: str) -> "ModelCard":  # noqa: F821
    """The card of a saved model as a ``huggingface_hub.ModelCard`` (metadata from ``ModelCardData`` with
    ``model-index`` eval results; the text from the run's facts, see :func:`model_facts`)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    f = model_facts(model_dir)
    task_cls = _task_class(f.task)
    pipeline_tag = task_cls.pipeline_tag if f.task in TASK_TYPES else None
    recipe = f.recipe
    train, data = recipe.get("train") or {}, recipe.get("data") or {}
    tricks = _trick_names(recipe.get("tricks"))
    name = repo_id.split("/")[-1]
    main = _main_metrics(f.metrics)
    dataset_name = f.hub_dataset or f.data.get("dev") or "dev data"
    split = "validation"
    evals = [EvalResult(task_type=pipeline_tag or f.task, task_name=_task_words(f.task),
                        dataset_type=f.hub_dataset or "local", dataset_name=str(dataset_name), dataset_split=split,
                        metric_type=k.split("/")[-1], metric_name=k, metric_value=round(float(v), 4))
             for k, v in main.items()]
    tags = ["nlp-cv-tricks", f.task] + ([f.architecture.replace("nct-", "")] if f.own_code else []) \
        + (["custom_code"] if f.own_code else []) + (["timm"] if f.library == "timm" else []) + tricks
    card_data = ModelCardData(
        library_name=f.library, pipeline_tag=pipeline_tag, tags=list(dict.fromkeys(tags)),
        base_model=f.base_model, datasets=[f.hub_dataset] if f.hub_dataset else None,
        metrics=sorted({k.split("/")[-1] for k in main}) or None,
        model_name=name if evals else None, eval_results=evals or None)

    what = _task_words(f.task)
    lines = [f"# {name}", "",
             f"{'An' if what[0] in 'aeiou' else 'A'} {what} model trained with "
             f"[nlp-cv-tricks](https://pypi.org/project/nlp-cv-tricks/): {f.origin}.", ""]
    from .tasks._card import BASELINE_NAMES

    family = BASELINE_NAMES.get(f.architecture)
    lines += ["## Model", "", f"- task: {f.task}",
              f"- architecture: `{f.architecture}`" + (f", {family}" if family else "") + f" ({f.library})"]
    if f.base_model:
        lines.append(f"- base model: [`{f.base_model}`](https://huggingface.co/{f.base_model})")
    elif f.from_scratch:
        lines.append("- initial weights: random (trained from scratch)")
    if f.labels:
        lines.append(f"- labels ({len(f.labels)}): {', '.join(f'`{n}`' for n in f.labels)}")
    lines += ["", "## Inputs", ""] + [f"- {i}" for i in f.inputs] + [""]
    lines += ["## Data", ""]
    if f.hub_dataset:
        lines.append(f"- Hub dataset: [`{f.hub_dataset}`](https://huggingface.co/datasets/{f.hub_dataset})"
                     + (f" (config `{data['hub_config']}`)" if data.get("hub_config") else ""))
    for role in ("train", "dev", "test"):
        if f.data.get(role):
            lines.append(f"- {role}: `{f.data[role]}`")
    if task_cls.card_shows_columns():
        cols = [f"{k}: `{data[k]}`" for k in ("text_column", "text_pair_column", "label_column") if data.get(k)]
        if cols and data.get("format") not in ("kim2014", "thucnews"):
            lines.append("- columns: " + ", ".join(cols))
    if data.get("format") and data.get("format") != "auto":
        lines.append(f"- format: `{data['format']}`")
    lines += ["", "## Training", ""] + _training_lines(f, train)
    keys = ["optimizer", "learning_rate", "weight_decay", "lr_scheduler", "warmup_ratio", "max_grad_norm",
            "mixed_precision", "seed", "metric"]
    lines += [f"- {k}: `{train[k]}`" for k in keys if train.get(k) is not None]
    lines += ["- tricks: " + (", ".join(f"`{t}`" for t in tricks) if tricks else "none"), ""]
    lines += ["## Metrics", ""]
    if main:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt_num(v)} |" for k, v in main.items()]
        if f.metrics.get("step") is not None:
            lines += ["", f"Measured on the dev data ({dataset_name}) at optimizer step {f.metrics['step']}."]
    else:
        lines.append("No evaluation was recorded for this model.")
    lines += ["", "## How to use", ""] + task_cls.card_usage(repo_id, _card_model(f)) + [""]
    lines += ["## Intended use", "",
              f"{what.capitalize()} on "
              + ("images" if task_cls.modality == "image" else "texts") + " like the training data described "
              "above. Check the metrics on your own data before relying on it.", ""]
    lines += ["## Limitations", ""] + _limitations(f, data.get("max_length")) + [""]
    if recipe:
        lines += ["## Training recipe", "", "The training recipe (in full in `recipe.yaml` in this repository; "
                  "unset keys left out, local paths shown by file name):", "", "```yaml",
                  yaml.safe_dump(_card_recipe(recipe, task_cls), sort_keys=False, allow_unicode=True).rstrip(),
                  "```", ""]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines))


def model_card(model_dir: os.PathLike, repo_id: str) -> str:
    """The README.md text of :func:`build_model_card`."""
    return str(build_model_card(model_dir, repo_id))


# ---------------------------------------------------------------------------------------------------------------
# upload
# ---------------------------------------------------------------------------------------------------------------
def files_to_upload(model_dir: os.PathLike) -> list[str]:
    """Relative paths of the files a push uploads (the model card README.md included)."""
    model_dir = Path(model_dir)
    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*")
                   if p.is_file() and p.name not in _EXCLUDE_NAMES and not p.name.endswith(_EXCLUDE_SUFFIXES))
    if "README.md" not in files:
        files.append("README.md")
    return sorted(files)


def _upload_bytes(model_dir: Path, card: Optional[str]) -> dict[str, bytes]:
    """Files whose uploaded content is generated rather than read as is: the card, and the recipe with local
    absolute paths reduced to file names."""
    out: dict[str, bytes] = {}
    if card is not None:
        out["README.md"] = card.encode("utf-8")
    recipe = model_dir / "recipe.yaml"
    if recipe.is_file():
        raw = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
        clean = _sanitized(raw)
        if clean != raw:
            out["recipe.yaml"] = yaml.safe_dump(clean, sort_keys=False, allow_unicode=True).encode("utf-8")
    return out


def push(run_or_model_dir: str, repo_id: str, private: bool = False, dry_run: bool = False,
         commit_message: Optional[str] = None, token: Optional[str] = None) -> dict:
    """Upload a model directory with a generated model card, in one commit. ``dry_run`` only lists what would
    be uploaded.

    The card (and a recipe without local paths) is generated in memory, never written into the user's
    directory; an existing README.md in the model directory is uploaded as it is."""
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(repo_id)  # HFValidationError (a ValueError) names what is wrong with it
    model_dir = resolve_model_dir(run_or_model_dir)
    files = files_to_upload(model_dir)
    card = None if (model_dir / "README.md").exists() else model_card(model_dir, repo_id)
    generated = _upload_bytes(model_dir, card)
    sizes = {f: len(generated[f]) if f in generated else (model_dir / f).stat().st_size for f in files}
    result = {"repo_id": repo_id, "model_dir": str(model_dir), "private": private, "files": files,
              "sizes": sizes, "generated": sorted(generated), "dry_run": dry_run}
    if dry_run:
        result["model_card"] = card
        return result
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=generated[f] if f in generated else str(model_dir / f))
           for f in files]
    commit = api.create_commit(repo_id=repo_id, operations=ops, repo_type="model",
                               commit_message=commit_message or "Upload model trained with nlp-cv-tricks")
    result["url"] = str(url)
    result["commit"] = getattr(commit, "commit_url", str(commit))
    return result
