"""Sharing trained models on the Hugging Face Hub: a generated model card and an upload through
``huggingface_hub``. Tokens come from ``huggingface_hub``'s own lookup (``HF_TOKEN``, ``hf auth login``) and are
never printed, logged or written by this module."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import yaml

from .inference import resolve_model_dir

__all__ = ["model_card", "files_to_upload", "push"]

# written by the trainer but not part of a shareable model
_EXCLUDE_SUFFIXES = (".tmp", ".old")
_EXCLUDE_NAMES = {".DS_Store"}


def _load(model_dir: Path) -> tuple[dict, dict, dict]:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    recipe = {}
    if (model_dir / "recipe.yaml").is_file():
        recipe = yaml.safe_load((model_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
    metrics = {}
    if (model_dir / "eval_metrics.json").is_file():
        metrics = json.loads((model_dir / "eval_metrics.json").read_text(encoding="utf-8"))
    return config, recipe, metrics


def _trick_names(tricks: list) -> list[str]:
    names = []
    for t in tricks or []:
        names.append(t if isinstance(t, str) else next(iter(t)))
    return names


# the Hub ids behind the package's offline aliases (for the card's base_model)
_ALIAS_HUB_IDS = {"minilm-l6": "sentence-transformers/all-MiniLM-L6-v2",
                  "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def model_card(model_dir: os.PathLike, repo_id: str) -> str:
    """A README.md with YAML metadata (library, pipeline tag, metrics) and the sections users look for:
    task, data, metrics, recipe, tricks, intended use, limitations, and how to load."""
    model_dir = Path(model_dir)
    config, recipe, metrics = _load(model_dir)
    data = recipe.get("data", {})
    model = recipe.get("model", {})
    train = recipe.get("train", {})
    tricks = _trick_names(recipe.get("tricks", []))
    labels = [config.get("id2label", {})[k] for k in sorted(config.get("id2label", {}), key=int)]
    scalar = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not k.startswith(("eval/support",))}
    main = {k: v for k, v in scalar.items() if k.split("/")[-1] in {"accuracy", "f1_macro", "f1_micro", "auc", "loss", "exact_match", "f1"}
            and k.count("/") <= 1}
    task = recipe.get("task", "text-classification")
    meta = {
        "library_name": "transformers",
        "pipeline_tag": task if task in {"text-classification", "question-answering", "image-classification"} else None,
        "tags": ["nlp-cv-tricks"] + tricks,
    }
    base = model.get("name")
    base = _ALIAS_HUB_IDS.get(str(base), base) if base else base
    if base and not os.path.isabs(str(base)) and "/" in str(base) and not os.path.exists(str(base)):
        meta["base_model"] = base
    if main:
        meta["model-index"] = [{
            "name": repo_id.split("/")[-1],
            "results": [{
                "task": {"type": task},
                "dataset": {"name": str(data.get("dev_file") or data.get("hub_name") or "dev"), "type": "custom"},
                "metrics": [{"type": k.split("/")[-1], "value": round(float(v), 4)} for k, v in main.items()],
            }],
        }]
    meta = {k: v for k, v in meta.items() if v is not None}
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "", f"# {repo_id.split('/')[-1]}", ""]
    own = str(config.get("model_type", "")).startswith("nct-")
    vectors = config.get("pretrained_vectors") or {}
    if own:  # the package's baselines are trained from scratch (optionally from pretrained word vectors)
        lines += [f"Trained with nlp-cv-tricks (`pip install nlp-cv-tricks`) for **{task}**: architecture "
                  f"`{config.get('model_type')}`, trained from scratch"
                  + (f", word vectors initialised from `{os.path.basename(str(vectors.get('path', '')))}`"
                     f" (token coverage {vectors.get('token_coverage')})" if vectors else "") + ".", ""]
    else:
        lines += [f"Fine-tuned with nlp-cv-tricks (`pip install nlp-cv-tricks`) for **{task}**"
                  + (f" from `{base}`." if base else "."), ""]
    lines += ["## Data", ""]
    for key in ("train_file", "dev_file", "hub_name", "format", "text_column", "text_pair_column", "label_column", "max_length"):
        if data.get(key) not in (None, ""):
            lines.append(f"- {key}: `{data[key]}`")
    if labels:
        lines.append(f"- labels ({len(labels)}): {', '.join(f'`{n}`' for n in labels)}")
    lines += ["", "## Metrics", ""]
    if scalar:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in main.items() or scalar.items()]
        if metrics.get("step") is not None:
            lines += ["", f"Measured on the dev data at optimizer step {metrics['step']} (the selected checkpoint)."]
    else:
        lines.append("No evaluation was recorded for this model.")
    lines += ["", "## Training recipe", ""]
    keys = ["epochs", "max_steps", "batch_size", "gradient_accumulation_steps", "optimizer", "learning_rate",
            "weight_decay", "lr_scheduler", "warmup_ratio", "max_grad_norm", "mixed_precision", "seed", "metric"]
    lines += [f"- {k}: `{train[k]}`" for k in keys if train.get(k) is not None]
    lines += ["", "Tricks: " + (", ".join(f"`{t}`" for t in tricks) if tricks else "none") + ".", ""]
    lines += ["The full resolved recipe is in `recipe.yaml`.", ""]
    auto = {"question-answering": "AutoModelForQuestionAnswering",
            "image-classification": "AutoModelForImageClassification"}.get(task, "AutoModelForSequenceClassification")
    if task == "image-classification":
        lines += ["## How to use", "", "```python", "import timm",
                  f'model = timm.create_model("hf-hub:{repo_id}", pretrained=True)  # or, with transformers:',
                  f"from transformers import {auto}",
                  f'model = {auto}.from_pretrained("{repo_id}")', "```", ""]
    else:
        lines += ["## How to use", "", "```python",
                  f"from transformers import {auto}, AutoTokenizer",
                  f'model = {auto}.from_pretrained("{repo_id}")',
                  f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
                  "```", ""]
    if str(config.get("model_type", "")).startswith("nct-"):
        lines += [f"This architecture (`{config['model_type']}`) is defined by nlp-cv-tricks: `import nlp_cv_tricks` "
                  "before loading.", ""]
    lines += ["## Intended use", "",
              f"{task.replace('-', ' ').capitalize()} on text like the training data described above. "
              "Check the metrics on your own data before relying on it.", "",
              "## Limitations", "",
              "- Scores were measured on one dev set; they do not transfer automatically to other domains.",
              f"- Inputs longer than {data.get('max_length', 'the training length')} tokens were truncated in training.",
              ("- The model inherits the biases of its training data"
               + (" and of its pretrained word vectors." if own and vectors else "." if own else
                  " and of its base model.")), ""]
    return "\n".join(lines)


def files_to_upload(model_dir: os.PathLike) -> list[str]:
    """Relative paths of the files a push uploads (the model card README.md included)."""
    model_dir = Path(model_dir)
    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*")
                   if p.is_file() and p.name not in _EXCLUDE_NAMES and not p.name.endswith(_EXCLUDE_SUFFIXES))
    if "README.md" not in files:
        files.append("README.md")
    return sorted(files)


def push(run_or_model_dir: str, repo_id: str, private: bool = False, dry_run: bool = False,
         commit_message: Optional[str] = None, token: Optional[str] = None) -> dict:
    """Upload a model directory with a generated model card. ``dry_run`` only lists what would be uploaded.

    The card is written to a temporary copy, never into the user's directory; an existing README.md in the
    model directory is uploaded as it is."""
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(repo_id)  # HFValidationError (a ValueError) names what is wrong with it
    model_dir = resolve_model_dir(run_or_model_dir)
    files = files_to_upload(model_dir)
    sizes = {f: (model_dir / f).stat().st_size if (model_dir / f).exists() else None for f in files}
    card = None if (model_dir / "README.md").exists() else model_card(model_dir, repo_id)
    result = {"repo_id": repo_id, "model_dir": str(model_dir), "private": private, "files": files,
              "sizes": sizes, "dry_run": dry_run}
    if dry_run:
        result["model_card"] = card
        return result
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as tmp:
        if card is not None:
            Path(tmp, "README.md").write_text(card, encoding="utf-8")
            api.upload_file(path_or_fileobj=str(Path(tmp, "README.md")), path_in_repo="README.md", repo_id=repo_id,
                            commit_message="Add model card")
        commit = api.upload_folder(folder_path=str(model_dir), repo_id=repo_id,
                                   commit_message=commit_message or "Upload model trained with nlp-cv-tricks",
                                   ignore_patterns=[f"*{s}" for s in _EXCLUDE_SUFFIXES] + list(_EXCLUDE_NAMES))
    result["url"] = str(url)
    result["commit"] = getattr(commit, "commit_url", str(commit))
    return result
