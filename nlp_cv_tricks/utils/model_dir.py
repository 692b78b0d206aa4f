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
    raise FileNotFoundError(f"{path}: not a model directory (no config.json) nor a run directory with best/ or final/")
