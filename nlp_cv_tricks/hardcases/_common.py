"""Shared helpers of the hard-case tools: atomic writes, the example-id task wrapper, example descriptions."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Recipe
from ..utils.io import (atomic_write_bytes, atomic_write_json, atomic_write_jsonl,  # noqa: F401  (used across hardcases)
                        atomic_write_text, json_default, sha256_file)
from ..engine.task import Task

ID_COLUMN = "idx"


def atomic_write_csv(path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v, default=json_default) if isinstance(v, (list, dict)) else v)
                    for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def atomic_save_npz(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def with_train_file(recipe: Recipe, train_file: Optional[str]) -> Recipe:
    """A copy of the recipe reading its training data from ``train_file`` (recipes are never edited in place)."""
    r = copy.deepcopy(recipe)
    if train_file is not None:
        r.data.train_file = str(train_file)
    return r


class IdTask(Task):
    """Wraps the recipe's task: strips the example-id column from model inputs (the batches keep it, so the
    ``training_dynamics`` callback reads each example's id) and weights the default loss per example.

    Only single-label classification tasks fit (one training row per example, ``logits`` of shape [B, C])."""

    def __init__(self, inner: Task, weights: Optional[np.ndarray] = None):
        self.inner = inner
        self.label_keys = tuple(inner.label_keys)
        self.label_names = getattr(inner, "label_names", None)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    @staticmethod
    def strip(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if k != ID_COLUMN}

    def labels_of(self, batch):
        return self.inner.labels_of(batch)

    def model_inputs(self, batch):
        return self.inner.model_inputs(self.strip(batch))

    def forward(self, model, batch):
        return self.inner.forward(model, self.strip(batch))

    def logits_of(self, outputs):
        return self.inner.logits_of(outputs)

    def default_loss(self, outputs, batch):
        if self.weights is None or ID_COLUMN not in batch:
            return self.inner.default_loss(outputs, self.strip(batch))
        logits = self.logits_of(outputs).float()
        labels = self.labels_of(batch).view(-1)
        w = self.weights.to(logits.device)[batch[ID_COLUMN].view(-1).long()]
        per = F.cross_entropy(logits.view(-1, logits.size(-1)), labels, reduction="none")
        return (per * w).sum() / labels.numel()

    def eval_outputs(self, outputs, batch):
        return self.inner.eval_outputs(outputs, self.strip(batch))

    def compute_metrics(self, gathered, context=None):
        return self.inner.compute_metrics(gathered, context)


def build_components(recipe: Recipe, accelerator) -> dict:
    """The recipe's model, tokenizer, datasets and task (fresh weights every call), with an ``idx`` column
    (row position in the training file) on the training set."""
    from ..tasks import build_task_components

    return with_example_ids(recipe, build_task_components(recipe, accelerator))


def with_example_ids(recipe: Recipe, comps: dict) -> dict:
    """The task's components with an ``idx`` column (row position in the training file) on the training set
    and a collator that keeps it."""
    comps = dict(comps)
    train = comps["train_dataset"]
    cols = getattr(train, "column_names", None)
    if cols is None or "labels" not in cols:
        raise ValueError(f"hardcases: task {recipe.task!r} gives no per-example 'labels' column in its training "
                         "dataset; mining needs single-label classification with one row per example")
    if ID_COLUMN in cols:
        train = train.remove_columns([ID_COLUMN])
    comps["train_dataset"] = train.add_column(ID_COLUMN, list(range(len(train))))
    if comps.get("collate_fn") is not None:  # task collators (e.g. images) keep only the keys they know
        comps["collate_fn"] = IdCollator(comps["collate_fn"])
    return comps


class IdCollator:
    """Collate with the task's own collator, then put the example ids back as a tensor."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples: list[dict]) -> dict:
        if not examples or ID_COLUMN not in examples[0]:
            return self.inner(examples)
        ids = torch.as_tensor([int(e[ID_COLUMN]) for e in examples], dtype=torch.long)
        batch = self.inner([{k: v for k, v in e.items() if k != ID_COLUMN} for e in examples])
        batch[ID_COLUMN] = ids
        return batch


def label_names_of(comps: dict) -> list[str]:
    names = getattr(comps["task"], "label_names", None)
    if names:
        return [str(n) for n in names]
    model = comps["model"]
    return [str(model.config.id2label[i]) for i in range(len(model.config.id2label))]


def describe_examples(recipe: Recipe, n: int) -> tuple[str, list[str]]:
    """What an annotator sees for each of the first ``n`` training rows: ``("text", texts)`` for text data,
    ``("image", paths)`` for image recipes (file paths of image folders, "" for pixel sources) or when the
    file has an image-path column, else ``("text", [""] * n)``."""
    from ..data.text import load_split
    from ..tasks import task_modality
    from .images import ImageSource, is_image_recipe

    kind = task_modality(recipe.task)  # what one example is, when the file does not say
    if is_image_recipe(recipe) and recipe.data.train_file:
        # image paths of file sources; "" for pixel sources (the export writes those images as PNG files)
        refs = ImageSource(recipe).train_refs()
        return "image", refs[:n] + [""] * max(0, n - len(refs))
    if not recipe.data.train_file or not os.path.isfile(recipe.data.train_file):
        return kind, [""] * n
    try:
        ds, _ = load_split(recipe.data.train_file, recipe.data)
    except ValueError:  # a file format only the task's own loader reads
        return kind, [""] * n
    cols = ds.column_names
    if kind == "text" and recipe.data.text_column in cols:
        texts = ds[recipe.data.text_column][:n]
        if recipe.data.text_pair_column and recipe.data.text_pair_column in cols:
            pairs = ds[recipe.data.text_pair_column][:n]
            texts = [f"{a} [SEP] {b}" for a, b in zip(texts, pairs)]
        return "text", [str(t) for t in texts]
    for c in cols:
        if any(key in c.lower() for key in ("image_path", "path", "file", "image")):
            return "image", [str(v) for v in ds[c][:n]]
    return kind, [""] * n


