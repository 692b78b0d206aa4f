"""Look, don't read: a self-contained HTML report with figures for what the package writes.

``nlp-cv-tricks report PATH [PATH ...]`` (or :func:`write_report`) reads

* a training run (``history.jsonl``, ``metrics.json``, ``best/eval_metrics.json``): loss, dev metrics and
  learning rate against step and epoch with the best point marked; the confusion matrix and per-class
  precision/recall/F1 of the selected model on the dev set; per-layer gradient norms when logged; the doctor's
  verdict with the supporting stretch of the curves shaded, its reasons and remedies; the layer-report and
  embedding figures found in the run;
* an ablation (``ablation.json``): a forest plot of Δ vs the baseline with 95% intervals and per-seed points,
  time per run; a learning-rate sweep: the metric against the learning rate on a log axis;
* a ``hardcases mine`` directory (``scores.jsonl``): the data-cartography map, the error-score histogram and,
  given the true labels, the budget curve;
* several run directories: their curves overlaid.

It writes ``report.html`` (figures embedded as PNG, inline stylesheet, opens from disk without a network) and
each figure as ``report_files/<name>.png``. The trainer writes the report of each run at its end
(``output.report: true``, the default; a failure there is a warning, never a failed run). Figures come from
matplotlib, imported only here (``pip install "nlp-cv-tricks[diagnostics]"``); every figure is a function of
plain data (history rows, metric dicts), in one module per family: :mod:`.run_figures`, :mod:`.doctor_figures`,
:mod:`.ablation_figures`, :mod:`.hardcases_figures`; :mod:`.page` writes the page, :mod:`.build` reads the
directories. Long histories are downsampled to about 2,000 points per curve (each bucket keeps its lowest and
highest point), so a 100k-step run renders in seconds.
"""

from .build import KINDS, detect_kind, write_report
from .errors import ReportError
from .page import FILES_DIR, REPORT_FILE

__all__ = ["write_report", "detect_kind", "ReportError", "KINDS", "REPORT_FILE", "FILES_DIR",
           "report_after_training", "write_run_report", "REPORT_LIBRARIES"]


# what the run report draws and tests with (matplotlib, scipy.special for the doctor's trend test)
REPORT_LIBRARIES = ("matplotlib.pyplot", "scipy.special", "nlp_cv_tricks.report.run_figures",
                    "nlp_cv_tricks.report.doctor_figures", "nlp_cv_tricks.diagnostics.doctor")


def report_after_training(run_dir) -> str:
    """The report of a run that just finished (called by the trainer on the main process); returns the page's
    path. The trainer catches any error and logs it as a warning."""
    import logging

    res = write_report(run_dir, log=logging.getLogger(__name__).debug)
    logging.getLogger(__name__).info("report: %s (%.1f s)", res["html"], res["seconds"])
    return res["html"]


def write_run_report(record_output, output_dir) -> None:
    """``report.html`` and ``report_files/`` at the end of a run, recorded first in its manifest through
    ``record_output(rel, kind)``; any failure is a warning, never a failed run."""
    import logging

    try:
        record_output("report.html", "file")
        record_output("report_files", "tree")
        report_after_training(output_dir)
    except Exception as e:
        logging.getLogger(__name__).warning("report.html not written: %s", e)

