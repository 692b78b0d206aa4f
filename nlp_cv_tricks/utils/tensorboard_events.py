"""TensorBoard scalars written from a run's history rows with TensorBoard's own event writer (no torch): what the
compiled FastText loop records where the trainer's Accelerate tracker would (``logs/nlp-cv-tricks``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable

__all__ = ["write_scalars"]

logger = logging.getLogger(__name__)


def write_scalars(logdir: Path, rows: Iterable[dict], hparams: dict) -> bool:
    """One event per numeric value of each row (tag = its key, step = the row's ``step``), and the run's settings
    (``hparams``) as ``hparams.yml`` beside them. False (with a warning) when TensorBoard is not installed."""
    from .optional import available, install_hint

    if not available("tensorboard"):
        logger.warning("tensorboard is not installed; tracking only to history.jsonl (%s, or output.report_to=none)",
                       install_hint("tracking"))
        return False
    import yaml
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from .io import atomic_write_text

    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    now = time.time()
    try:
        for row in rows:
            step = int(row.get("step", 0))
            values = [Summary.Value(tag=k, simple_value=float(v)) for k, v in row.items()
                      if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)]
            if values:
                writer.add_event(Event(wall_time=now, step=step, summary=Summary(value=values)))
    finally:
        writer.close()
    atomic_write_text(logdir / "hparams.yml", yaml.safe_dump(hparams, sort_keys=True, allow_unicode=True))
    return True
