"""Where a saved model is: a model directory, or a run directory's ``best/`` (else ``final/``)."""

from __future__ import annotations

from pathlib import Path


def resolve_model_dir(path: str) -> Path:
    """A run directory resolves to its ``best/`` (or ``final/``) model; a model directory is used as is."""
    p = Path(path)
    if (p / "config.json").is_file():
        return p
    for sub in ("best", "final"):
        if (p / sub / "config.json").is_file():
            return p / sub
    raise FileNotFoundError(why_not_a_model_dir(path))


def why_not_a_model_dir(path: str) -> str:
    """Why ``path`` holds no model to load, and what to give instead: it does not exist, it is a file, a training
    checkpoint (the state ``train.resume_from`` reads, not a saved model), the checkpoints folder, a run that has
    not saved a model yet, or a folder of something else."""
    p = Path(path)
    run_markers = ("history.jsonl", "recipe.yaml", ".nlp_cv_tricks_run.json")
    if not p.exists():
        return f"{path}: no such directory; give a saved model directory (with config.json) or a run directory"
    if p.is_file():
        return (f"{path} is a file; give the model directory that holds it (with config.json), or a run directory "
                "(its best/ model is used)")
    if (p / "trainer_state.json").is_file() or p.parent.name == "checkpoints":
        run = p.parent.parent
        has_model = any((run / sub / "config.json").is_file() for sub in ("best", "final"))
        where = (f"evaluate the run's saved model with `nlp-cv-tricks eval {run}` (its best/ or final/)" if has_model
                 else f"the run {run} has no saved model (best/ or final/) yet")
        return (f"{path} is a training checkpoint (model and optimizer state for resuming with train.resume_from), "
                f"not a saved model: eval/predict read a model directory (config.json); {where} (the dev metrics of "
                f"every evaluated step are in {run / 'history.jsonl'})")
    if p.name == "checkpoints" and any(p.glob("step_*")):
        return (f"{path} is a run's checkpoints folder (training state for resuming), not a saved model; give the run "
                f"directory {p.parent} (its best/ model is used) or a model directory with config.json")
    if any((p / m).exists() for m in run_markers) or (p / "checkpoints").is_dir():
        ckpts = sorted((p / "checkpoints").glob("step_*")) if (p / "checkpoints").is_dir() else []
        hint = (f"; its latest checkpoint resumes with `nlp-cv-tricks train {p / 'recipe.yaml'} "
                f"train.resume_from=latest output.dir={p}`, which saves the model at the end" if ckpts else "")
        return (f"{path} is a run directory without a saved model (no best/ nor final/: the run is still going, or "
                f"was stopped before its end){hint}")
    return f"{path}: not a model directory (no config.json) nor a run directory with best/ or final/"
