"""Logging set-up of the command line: one format, third-party libraries kept at warnings."""

from __future__ import annotations

import logging


def setup_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        datefmt="%H:%M:%S")
    for noisy in ("transformers", "datasets", "accelerate", "huggingface_hub", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from .import_hooks import when_imported

    def quiet(transformers) -> None:
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()  # per-file load/save bars; the trainer has its own

    when_imported("transformers", quiet)  # when a command imports it (a FastText run never does)
