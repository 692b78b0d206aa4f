"""Retrain on a dataset version and compare with the parent on the same dev set.

Confirmed hard cases (examples an annotator relabelled or confirmed, in this version or its ancestors) can be
emphasised: ``oversample`` repeats them ``factor - 1`` extra times per epoch (works with every loss, costs
more steps); ``weight`` multiplies their cross-entropy by ``factor`` (no extra steps; only with the default
loss, so not together with a trick that replaces the criterion, e.g. label smoothing or focal loss). Expected
effect: corrected labels remove noise-driven errors; emphasis helps when the hard cases are rare patterns,
and can overfit them when ``factor`` is large.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from ..config import Recipe
from ..engine.run_lock import lock_folder, releases_locks
from ._common import IdTask, atomic_write_json, with_example_ids, with_train_file
from .importer import VersionStore

__all__ = ["retrain", "train_and_evaluate", "EMPHASIS"]

EMPHASIS = ("none", "oversample", "weight")


def train_and_evaluate(recipe: Recipe, out_dir, train_file=None, ids=None, hard_ids=(), emphasis: str = "none",
                       factor: float = 2.0, keep_model: bool = True) -> dict:
    """Fit the recipe on ``train_file`` (default: the recipe's) and evaluate the final model on the recipe's
    dev set. Returns numeric dev metrics (``dev/accuracy``, ``dev/f1_macro``, ...) and run facts."""
    from ..runner import build_trainer

    if emphasis not in EMPHASIS:
        raise ValueError(f"emphasis must be one of {EMPHASIS}, got {emphasis!r}")
    if emphasis != "none" and factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    rec = with_train_file(recipe, train_file)
    out_dir = Path(out_dir)
    seen: dict = {}

    def emphasise(comps: dict, plugins: list) -> dict:  # the version's rows, the hard cases emphasised
        comps = with_example_ids(rec, comps)
        if comps.get("eval_dataset") is None:
            raise ValueError("retrain compares on the recipe's dev set; set data.dev_file")
        train = comps["train_dataset"]
        row_ids = list(range(len(train))) if ids is None else list(ids)[: len(train)]
        hard = set(int(i) for i in hard_ids)
        hard_rows = [r for r, i in enumerate(row_ids) if i in hard]
        weights = None
        if emphasis == "oversample" and hard_rows and factor > 1:
            import datasets

            reps = int(round(factor)) - 1
            train = datasets.concatenate_datasets([train] + [train.select(hard_rows)] * reps)
        elif emphasis == "weight" and hard_rows:
            if any(t.replaces_criterion for t in plugins):
                raise ValueError("emphasis='weight' scales the default cross-entropy, but a trick of the recipe "
                                 "replaces the criterion; use emphasis='oversample'")
            weights = np.ones(len(train))
            weights[hard_rows] = factor
        seen.update(dev=comps["eval_dataset"], n_train=len(train), n_hard=len(hard_rows))
        return {**comps, "train_dataset": train, "task": IdTask(comps["task"], weights=weights)}

    # the recipe's tricks and callbacks, and the run's report when output.report
    trainer = build_trainer(rec, output_dir=str(out_dir), adapt=emphasise)
    dev = seen["dev"]
    fit = trainer.fit()
    metrics = {k: v for k, v in trainer.evaluate(dev, prefix="dev").items() if isinstance(v, (int, float))}
    if not keep_model:
        for sub in ("best", "final", "checkpoints"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    return {**metrics, "n_train_rows": seen["n_train"], "n_hard": seen["n_hard"], "emphasis": emphasis,
            "factor": factor, "train_seconds": round(fit.train_seconds, 2), "run_dir": str(out_dir),
            "train_file": rec.data.train_file}


@releases_locks
def retrain(recipe: Recipe, versions_dir, version: Optional[str], out_dir, emphasis: str = "none",
            factor: float = 2.0, before: Optional[dict] = None, keep_models: bool = True) -> dict:
    """Train on ``version`` (and, unless ``before`` metrics are given, on its parent) and report dev metrics
    before/after. Writes ``retrain.json`` in ``out_dir``."""
    store = VersionStore(versions_dir, recipe)
    version = store.latest() if version == "latest" else version
    if version is None:
        raise ValueError(f"no version to retrain on in {versions_dir}")
    parent = store.manifest(version).get("parent")
    out_dir = Path(out_dir)
    lock_folder(out_dir, "hard-case retraining")  # released when this returns or raises
    if before is None:
        before = train_and_evaluate(store.recipe_for(parent), out_dir / "before", keep_model=keep_models)
    hard = [c["id"] for c in store.changes(version, chain=True) if c["action"] in ("relabel", "confirm")]
    after = train_and_evaluate(store.recipe_for(version), out_dir / "after", None, store.ids(version), hard,
                               emphasis, factor, keep_model=keep_models)
    report = {"version": version, "parent": parent or "v0", "before": before, "after": after,
              "delta": {k: after[k] - before[k] for k in after if k.startswith("dev/") and k in before}}
    atomic_write_json(out_dir / "retrain.json", report)
    return report
