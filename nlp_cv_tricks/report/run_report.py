"""The report of a training run, written when the run ends: the callback the runner adds when ``output.report``
is on (:func:`nlp_cv_tricks.runner.build_trainer`). Figures are a by-product: a missing matplotlib or a drawing
error is a warning, never a failed run."""

from __future__ import annotations

import logging

from ..engine.events import Callback

__all__ = ["RunReport"]

logger = logging.getLogger(__name__)


class RunReport(Callback):
    """Write ``report.html`` and ``report_files/`` into the run directory once the run's files are written (on
    the main process)."""

    name = "run_report"

    def on_run_end(self, state, result) -> None:
        if state.accelerator.is_main_process:
            from . import write_run_report

            write_run_report(state.record_output, state.output_dir)

