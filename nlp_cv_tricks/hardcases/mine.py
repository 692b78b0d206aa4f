"""Mining hard cases: K-fold out-of-fold (OOF) probabilities through the trainer, training dynamics, rankings.

* **Out-of-fold probabilities.** The training set is split into K stratified folds; for each fold a fresh model
  is trained by :class:`~nlp_cv_tricks.engine.trainer.Trainer` on the other K-1 folds under the recipe (its
  tricks included) and scores the held-out fold, so no example is ever scored by a model that saw it. Cost:
  K trainings on (K-1)/K of the data. Folds can run as separate processes (``jobs``) or one at a time
  (``fold=k``, e.g. one per GPU or per machine) and are merged when all are present; finished folds are reused,
  so an interrupted run resumes.
* **Likely label errors: confident learning** (Northcutt, Jiang & Chuang, "Confident Learning: Estimating
  Uncertainty in Dataset Labels", JAIR 2021) on the OOF probabilities, through ``cleanlab``
  (``find_label_issues`` with prune-by-noise-rate, label quality = self-confidence) when it is installed; without
  it a built-in implementation of the confident joint's off-diagonal (per-class thresholds = mean
  self-confidence) is used and the summary says so. Ranking: flagged examples first, each group by ascending
  OOF probability of the given label.
* **Training dynamics** recorded on the training forwards of every epoch (no extra pass): *confidence*,
  *variability* (std) of the probability of the given label and *correctness* across epochs (Swayamdipta et
  al., "Dataset Cartography", EMNLP 2020), and the *area under the margin* (Pleiss et al., "Identifying
  Mislabeled Data using the Area Under the Margin Ranking", NeurIPS 2020): the mean over epochs of the gold
  logit minus the largest other logit. Each example is in the training part of K-1 folds; its statistics are
  averaged over those folds. Difficulty ranking: ascending confidence (hard-to-learn first); the cartography
  region (easy / ambiguous / hard) is given for each example.

Outputs in ``out_dir``: ``scores.csv`` and ``scores.jsonl`` (one row per example, every score),
``oof_probs.npy``, ``folds.json`` (fold of every example), ``summary.json``, ``folds/fold_k/`` (per-fold
results and training logs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..callbacks.training_dynamics import TrainingDynamics
from ..config import Recipe, load_recipe, save_recipe
from ..engine.run_lock import lock_folder, releases_locks
from ._common import (ID_COLUMN, IdTask, atomic_save_npz, atomic_write_csv, atomic_write_json, atomic_write_jsonl,
                      build_components, describe_examples, label_names_of, with_example_ids)

logger = logging.getLogger(__name__)

__all__ = ["mine", "MineResult", "TrainingDynamics", "rank_label_issues", "confident_learning_issues",
           "make_folds", "run_fold", "merge_folds"]

SCORE_COLUMNS = ["id", "row", "fold", "label", "label_name", "pred", "pred_name", "p_label", "p_pred",
                 "label_quality", "error_score", "is_label_issue", "error_rank", "confidence", "variability",
                 "correctness", "aum", "epochs_seen", "difficulty", "difficulty_rank", "region", "probs"]


# ---- confident learning --------------------------------------------------------------------------------
def confident_learning_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Built-in confident learning (used when cleanlab is absent): per-class threshold t_j = mean p_j over the
    examples labelled j; an example is flagged when its confident class (argmax of p_j over classes with
    p_j >= t_j) exists and differs from its given label, i.e. it lies off the diagonal of the confident joint."""
    labels = np.asarray(labels)
    k = probs.shape[1]
    thresholds = np.array([probs[labels == j, j].mean() if np.any(labels == j) else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -1.0)
    confident = masked.argmax(1)
    has = above.any(1)
    return has & (confident != labels)


def rank_label_issues(labels: Sequence[int], probs: np.ndarray, use_cleanlab: Optional[bool] = None) -> dict:
    """Label quality (OOF probability of the given label), confident-learning issue flags and the error ranking
    (flagged first, then by ascending label quality). Returns arrays and ``method``."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    from ..utils.optional import available, require

    have = available("cleanlab")
    if use_cleanlab is None:
        use_cleanlab = have
    method = "builtin confident learning (" + ("cleanlab not installed" if not have else "use_cleanlab=False") + ")"
    if use_cleanlab and not have:
        require("cleanlab", purpose="use_cleanlab=True")
    quality = probs[np.arange(len(labels)), labels]
    if use_cleanlab and len(np.unique(labels)) == probs.shape[1]:
        cleanlab = require("cleanlab")
        from cleanlab.filter import find_label_issues

        issues = np.asarray(find_label_issues(labels, probs, filter_by="prune_by_noise_rate"), dtype=bool)
        method = f"cleanlab {cleanlab.__version__} find_label_issues(prune_by_noise_rate), self_confidence"
    else:
        issues = confident_learning_issues(labels, probs)
    order = np.lexsort((quality, ~issues))  # issues first, then lowest quality
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(1, len(labels) + 1)
    return {"label_quality": quality, "error_score": 1.0 - quality, "is_label_issue": issues,
            "error_rank": rank, "method": method}


# ---- folds ---------------------------------------------------------------------------------------------
def make_folds(labels: Sequence[int], k: int, seed: int) -> np.ndarray:
    """Fold index of every example: stratified K-fold when every class has at least K examples, else K-fold."""
    from ..utils.optional import require

    require("sklearn", extra="hardcases", purpose="hardcases mining (K-fold splits)")
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray(labels)
    if k < 2:
        raise ValueError(f"folds must be at least 2, got {k}")
    if len(labels) < k:
        raise ValueError(f"{len(labels)} examples cannot be split into {k} folds")
    counts = np.bincount(labels)
    splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if counts[counts > 0].min() >= k
                else KFold(k, shuffle=True, random_state=seed))
    fold = np.full(len(labels), -1, dtype=np.int64)
    for f, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold[held] = f
    return fold


def _fold_dir(out_dir: Path, k: int) -> Path:
    return out_dir / "folds" / f"fold_{k}"


def _predict(trainer, dataset) -> tuple[np.ndarray, np.ndarray]:
    acc = trainer.accelerator
    dl = acc.prepare(torch.utils.data.DataLoader(dataset, batch_size=trainer.cfg.eval_batch_size, shuffle=False,
                                                 collate_fn=trainer.eval_collate_fn))
    model = trainer.model
    model.eval()
    all_idx, all_probs = [], []
    with torch.no_grad():
        for batch in dl:
            if ID_COLUMN not in batch:
                raise ValueError(f"the collator of task {trainer.recipe.task!r} drops the {ID_COLUMN!r} column; "
                                 "hard-case mining needs it to pass through")
            logits = trainer.task.logits_of(trainer.task.forward(model, batch)).float()
            idx, logits = acc.gather_for_metrics((batch[ID_COLUMN], logits))
            all_idx.append(idx.cpu().numpy())
            all_probs.append(logits.softmax(-1).cpu().numpy())
    return np.concatenate(all_idx), np.concatenate(all_probs)


def run_fold(recipe: Recipe, out_dir, k: int, folds: np.ndarray, keep_models: bool = False) -> Path:
    """Train on every fold but ``k``, score fold ``k``; writes ``folds/fold_k/result.npz`` (atomically).
    A fold whose result exists is not run again."""
    from ..runner import build_trainer

    # a fold is an intermediate run: the mining's own page (nlp-cv-tricks report OUT_DIR) is the one to read
    recipe = dataclasses.replace(recipe, output=dataclasses.replace(recipe.output, report=False))
    out_dir = Path(out_dir)
    fdir = _fold_dir(out_dir, k)
    result = fdir / "result.npz"
    if result.is_file():
        return result
    run_dir = fdir / "run"
    if run_dir.exists():  # a fold interrupted earlier starts over
        shutil.rmtree(run_dir)
    held = np.flatnonzero(folds == k)
    fit_idx = np.flatnonzero(folds != k)
    dynamics = TrainingDynamics(id_column=ID_COLUMN)
    seen: dict = {}

    def other_folds(comps: dict, plugins: list) -> dict:  # train on the other folds; the ids stay in the batches
        comps = with_example_ids(recipe, comps)
        train = seen["train"] = comps["train_dataset"]
        if len(train) != len(folds):
            raise ValueError(f"fold assignment has {len(folds)} examples but the training set has {len(train)}; "
                             f"delete {out_dir / 'folds.json'} after changing the data")
        return {**comps, "train_dataset": train.select(fit_idx.tolist()), "task": IdTask(comps["task"])}

    trainer = build_trainer(recipe, output_dir=str(run_dir), plugins=[dynamics], seed=recipe.train.seed + k,
                            adapt=other_folds)
    accelerator, train = trainer.accelerator, seen["train"]
    fit = trainer.fit()
    idx, probs = _predict(trainer, train.select(held.tolist()))
    order = np.argsort(idx)
    idx, probs = idx[order], probs[order]
    if not np.array_equal(idx, held):
        raise RuntimeError(f"fold {k}: predicted ids do not match the held-out fold")
    dyn = dynamics.summary(fit_idx.tolist())
    if accelerator.is_main_process:
        atomic_save_npz(result, held=held, probs=probs, fit_idx=fit_idx,
                        **{f"dyn_{n}": v for n, v in dyn.items()})
        atomic_write_json(fdir / "fit.json", {"fold": k, "global_step": fit.global_step,
                                              "train_seconds": round(fit.train_seconds, 2),
                                              "n_train": int(len(fit_idx)), "n_heldout": int(len(held)),
                                              "dev_metrics": {m: v for m, v in fit.metrics.items()
                                                              if isinstance(v, (int, float))}})
        if not keep_models:
            for sub in ("best", "final", "checkpoints"):
                shutil.rmtree(run_dir / sub, ignore_errors=True)
    accelerator.wait_for_everyone()
    del trainer
    return result


def _labels_and_names(recipe: Recipe) -> tuple[np.ndarray, list[str]]:
    from ..tasks import TASK_TYPES

    known = TASK_TYPES.get(recipe.task).training_labels(recipe) if recipe.task in TASK_TYPES else None
    if known is not None:  # read from the data, without building the model
        return np.asarray(known[0]), list(known[1])
    from .images import ImageSource, is_image_recipe

    if is_image_recipe(recipe):  # the loader the task builder calls, without building the model
        src = ImageSource(recipe)
        return src.train_labels(), src.label_names
    # other classification tasks: build them once (CPU, no training) for the labels
    from ..engine.trainer import make_accelerator

    acc = make_accelerator(recipe, "/tmp/nct-hardcases-labels")
    comps = build_components(recipe, acc)
    return np.asarray(comps["train_dataset"]["labels"]), label_names_of(comps)


@dataclass
class MineResult:
    out_dir: str
    scores: list[dict]
    oof_probs: np.ndarray
    folds: np.ndarray
    summary: dict


def merge_folds(recipe: Recipe, out_dir, ids: Optional[Sequence[int]] = None,
                use_cleanlab: Optional[bool] = None) -> MineResult:
    """Combine the fold results: check that every example got exactly one OOF prediction, rank, write scores."""
    out_dir = Path(out_dir)
    meta = json.loads((out_dir / "folds.json").read_text())
    folds = np.asarray(meta["fold"])
    labels = np.asarray(meta["labels"])
    names = meta["label_names"]
    n, k = len(folds), meta["k"]
    ids = list(range(n)) if ids is None else list(ids)
    if len(ids) != n:
        raise ValueError(f"{len(ids)} example ids for {n} training examples")
    probs = np.full((n, len(names)), np.nan)
    seen = np.zeros(n, dtype=np.int64)
    dyn_sum = {m: np.zeros(n) for m in ("confidence", "variability", "correctness", "aum")}
    dyn_w = np.zeros(n)
    epochs_seen = np.zeros(n, dtype=np.int64)
    for f in range(k):
        path = _fold_dir(out_dir, f) / "result.npz"
        if not path.is_file():
            raise FileNotFoundError(f"fold {f} has no result ({path}); run `hardcases mine ... --fold {f}`")
        z = np.load(path)
        held = z["held"]
        if np.any(folds[held] != f):
            raise RuntimeError(f"fold {f}: scored examples that are not in its held-out part")
        probs[held] = z["probs"]
        seen[held] += 1
        fit_idx = z["fit_idx"]
        w = z["dyn_epochs_seen"].astype(float)
        ok = w > 0
        for m in dyn_sum:
            dyn_sum[m][fit_idx[ok]] += z[f"dyn_{m}"][ok] * w[ok]
        dyn_w[fit_idx[ok]] += w[ok]
        epochs_seen[fit_idx] += z["dyn_epochs_seen"]
    if not np.all(seen == 1):
        bad = np.flatnonzero(seen != 1)[:10].tolist()
        raise RuntimeError(f"examples without exactly one out-of-fold prediction: rows {bad}")
    with np.errstate(invalid="ignore", divide="ignore"):
        dyn = {m: np.where(dyn_w > 0, s / np.maximum(dyn_w, 1e-12), np.nan) for m, s in dyn_sum.items()}
    ranked = rank_label_issues(labels, probs, use_cleanlab)
    pred = probs.argmax(1)
    conf = np.nan_to_num(dyn["confidence"], nan=0.5)
    difficulty = 1.0 - conf
    d_order = np.argsort(-difficulty, kind="stable")
    d_rank = np.empty(n, dtype=np.int64)
    d_rank[d_order] = np.arange(1, n + 1)
    # cartography regions: thresholds relative to the data (top third of variability = ambiguous)
    var = np.nan_to_num(dyn["variability"], nan=0.0)
    v_hi = np.quantile(var, 2 / 3) if n else 0.0
    region = np.where(var >= v_hi, "ambiguous", np.where(conf >= 0.5, "easy", "hard"))
    kind, desc = describe_examples(recipe, n) if recipe.data.train_file else ("text", [""] * n)
    scores = []
    for j in range(n):
        scores.append({
            "id": ids[j], "row": j, "fold": int(folds[j]), "label": int(labels[j]), "label_name": names[labels[j]],
            "pred": int(pred[j]), "pred_name": names[pred[j]], "p_label": float(probs[j, labels[j]]),
            "p_pred": float(probs[j, pred[j]]), "label_quality": float(ranked["label_quality"][j]),
            "error_score": float(ranked["error_score"][j]), "is_label_issue": bool(ranked["is_label_issue"][j]),
            "error_rank": int(ranked["error_rank"][j]),
            **{m: (None if np.isnan(dyn[m][j]) else float(dyn[m][j])) for m in dyn},
            "epochs_seen": int(epochs_seen[j]), "difficulty": float(difficulty[j]),
            "difficulty_rank": int(d_rank[j]), "region": str(region[j]),
            "probs": [float(p) for p in probs[j]], kind: desc[j] if j < len(desc) else "",
        })
    summary = {"n": n, "folds": k, "label_names": names, "method": ranked["method"],
               "n_label_issues": int(ranked["is_label_issue"].sum()),
               "oof_accuracy": float((pred == labels).mean()), "example_kind": kind,
               "train_file": recipe.data.train_file, "seed": meta["seed"]}
    np.save(out_dir / "oof_probs.npy.tmp.npy", probs)
    os.replace(out_dir / "oof_probs.npy.tmp.npy", out_dir / "oof_probs.npy")
    atomic_write_csv(out_dir / "scores.csv", scores, SCORE_COLUMNS + [kind])
    atomic_write_jsonl(out_dir / "scores.jsonl", scores)
    atomic_write_json(out_dir / "summary.json", summary)
    return MineResult(str(out_dir), scores, probs, folds, summary)


@releases_locks
def mine(recipe: Recipe, out_dir, folds: int = 5, seed: Optional[int] = None, ids: Optional[Sequence[int]] = None,
         fold: Optional[int] = None, jobs: int = 1, keep_models: bool = False,
         use_cleanlab: Optional[bool] = None, executor=None) -> Optional[MineResult]:
    """Run K-fold mining on the recipe's training set and write every example's scores to ``out_dir``.

    ``ids``: the stable example ids of the training rows (default: row numbers); ``fold``: run only that fold
    (returns None; merge later with another call without ``fold``); ``jobs`` > 1 runs folds as separate
    processes (``python -m nlp_cv_tricks.cli.hardcases mine --fold k``), each on whatever device Accelerate
    gives it (set ``CUDA_VISIBLE_DEVICES`` per job through ``NCT_HARDCASES_DEVICES=0,1,...``).

    ``executor`` (:mod:`nlp_cv_tricks.utils.executors`): None runs the folds here (``jobs`` at a time); a Ray
    executor runs each fold as a Ray task that calls :func:`run_fold` on a worker, which writes the fold's result
    under ``out_dir`` (a filesystem the workers share). A fold that fails (after the executor's retries) is
    reported with its error while the others finish; then the mining stops before the merge, naming the folds to
    run again (finished folds are reused)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fold is None:  # the mining that runs the folds holds the folder (a --fold job works inside it)
        lock_folder(out_dir, "hard-case mining")
    seed = recipe.train.seed if seed is None else seed
    meta_path = out_dir / "folds.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["k"] != folds or meta["seed"] != seed:
            raise ValueError(f"{meta_path} was made with folds={meta['k']}, seed={meta['seed']}; use another out_dir")
        _check_same_mining(recipe, out_dir, meta)
    else:
        labels, names = _labels_and_names(recipe)
        meta = {"k": folds, "seed": seed, "fold": make_folds(labels, folds, seed).tolist(),
                "labels": labels.tolist(), "label_names": names}
        atomic_write_json(meta_path, meta)
        save_recipe(recipe, out_dir / "recipe.yaml")
    fold_of = np.asarray(meta["fold"])
    if fold is not None:
        if not 0 <= fold < folds:
            raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
        run_fold(recipe, out_dir, fold, fold_of, keep_models)
        return None
    todo = [f for f in range(folds) if not (_fold_dir(out_dir, f) / "result.npz").is_file()]
    if todo:
        _run_folds(recipe, out_dir, todo, folds, fold_of, seed, jobs, keep_models, executor)
    return merge_folds(recipe, out_dir, ids, use_cleanlab)


class FoldsFailed(RuntimeError):
    """Some folds of a mining failed (each reported with its error); the others are saved and reused."""


def _run_folds(recipe: Recipe, out_dir: Path, todo: list[int], k: int, fold_of: np.ndarray, seed: int, jobs: int,
               keep_models: bool, executor) -> None:
    """The missing folds through an executor: Ray tasks calling :func:`run_fold`; locally :func:`run_fold` one
    after another, or ``jobs`` fold processes at a time."""
    from ..utils.executors import Job, LocalExecutor
    from ..utils.progress import progress

    ex = executor if executor is not None else LocalExecutor(jobs)
    if ex.remote:
        work = [Job(f"fold {f}", run_fold, (recipe, out_dir, f, fold_of, keep_models),
                    paths={"the mining's output directory": str(out_dir)}) for f in todo]
    elif getattr(ex, "workers", 1) > 1:
        devices = [d for d in os.environ.get("NCT_HARDCASES_DEVICES", "").split(",") if d.strip()]
        work = [Job(f"fold {f}", _fold_process, (out_dir, f, k, seed, keep_models,
                                                 devices[slot % len(devices)] if devices else None))
                for slot, f in enumerate(todo)]
    else:
        work = [Job(f"fold {f}", run_fold, (recipe, out_dir, f, fold_of, keep_models)) for f in todo]
    failed = []
    with progress(total=k, initial=k - len(todo), desc="hardcases mine", unit="fold", every_seconds=0) as bar:
        def done(o) -> None:
            bar.update(1)
            if not o.ok:
                where = f" on {o.host}" if o.host and ex.remote else ""
                logger.error("%s failed%s: %s", o.job.key, where, o.error)
                failed.append((int(o.job.key.split()[-1]), o.error))

        ex.run(work, done, resume_hint=f"run the same command again (finished folds are under {out_dir / 'folds'})")
    if failed:
        lines = "; ".join(f"fold {f}: {e}" for f, e in sorted(failed))
        raise FoldsFailed(f"{len(failed)} fold(s) failed ({lines}); the other folds are saved under "
                           f"{out_dir / 'folds'}: run the same command again to run only the missing folds")


def _check_same_mining(recipe: Recipe, out_dir: Path, meta: dict) -> None:
    """Finished folds in ``out_dir`` are reused only for the same training data (labels, row for row) and the same
    recipe (every section but ``output``); anything else is another mining and must go elsewhere."""
    import yaml

    from ..config import recipe_to_dict

    labels, _ = _labels_and_names(recipe)
    if labels.tolist() != meta.get("labels"):
        old = meta.get("labels") or []
        diff = sum(a != b for a, b in zip(labels.tolist(), old)) + abs(len(old) - len(labels))
        raise ValueError(f"{out_dir} holds a mining of other training data ({len(old)} rows there, {len(labels)} "
                         f"now; {diff} labels differ); use another --out")
    saved = out_dir / "recipe.yaml"
    if saved.is_file():
        before = {k: v for k, v in (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}).items() if k != "output"}
        now = {k: v for k, v in yaml.safe_load(yaml.safe_dump(recipe_to_dict(recipe))).items() if k != "output"}
        if before != now:
            keys = []
            for sec in sorted(set(before) | set(now)):
                a, b = before.get(sec), now.get(sec)
                if isinstance(a, dict) and isinstance(b, dict):
                    keys += [f"{sec}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
                elif a != b:
                    keys.append(sec)
            raise ValueError(f"{out_dir} holds a mining made with another recipe (differs in {', '.join(keys[:8])}); "
                             "use another --out")


def _fold_process(out_dir: Path, f: int, k: int, seed: int, keep_models: bool, device: Optional[str]) -> None:
    """Fold ``f`` in a process of its own (``mine --jobs N``): ``python -m nlp_cv_tricks.cli.hardcases mine
    ... --fold f``, its output in ``folds/fold_f.log``; raises when it fails."""
    env = dict(os.environ)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    _fold_dir(out_dir, f).parent.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "folds" / f"fold_{f}.log"
    cmd = [sys.executable, "-m", "nlp_cv_tricks.cli.hardcases", "mine", str(out_dir / "recipe.yaml"),
           "--out", str(out_dir), "--folds", str(k), "--seed", str(seed), "--fold", str(f)]
    if keep_models:
        cmd.append("--keep-models")
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"fold process exited with code {rc}; see {log_path}")


def load_scores(mine_dir) -> list[dict]:
    path = Path(mine_dir) / "scores.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `hardcases mine` first")
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def load_mine_recipe(mine_dir) -> Recipe:
    return load_recipe(Path(mine_dir) / "recipe.yaml")
