"""Diagnose, then prescribe: fit-regime doctor, layer statistics, [CLS] probes and embedding plots.

* :func:`diagnose_run` / ``nlp-cv-tricks diagnose RUN_DIR`` — regime with evidence, thresholds and remedies;
* :class:`ImbalanceWatch` (callback ``imbalance_watch``) — warns when dev loss improves while the minority class
  gets worse; :class:`TrainEval` (callback ``train_eval``) logs train-set metrics next to the dev ones;
* :func:`layer_report` / ``nlp-cv-tricks inspect`` — per-layer parameter, activation and gradient statistics;
  :class:`LayerReportTrick` (callback ``layer_report``) writes them during training;
  (the three observers and the analysis they run live in :mod:`nlp_cv_tricks.callbacks`; re-exported here);
* :func:`probe_cls` / ``nlp-cv-tricks probe-cls`` — linear probes, anisotropy, alignment/uniformity, Spearman;
* :func:`plot_embeddings` / ``nlp-cv-tricks plot-embeddings`` — PCA → t-SNE, coloured by label.

Heavy libraries (scikit-learn, scipy, matplotlib, transformers) are imported only where they are used.
"""

from ._io import DiagnosticsError, load_history
from .doctor import Diagnosis, Remedy, Thresholds, diagnose, diagnose_run, format_diagnosis, prescribe
from ..callbacks.imbalance_watch import ImbalanceWatch, imbalance_signal, minority_labels
from ..callbacks.layer_report import (LayerReportTrick, activation_stats, gradient_norms, layer_report,
                                      parameter_stats, save_layer_report, tensor_stats)
from ..callbacks.train_eval import TrainEval
from .plots import pca_tsne, plot_embeddings, sample_per_class
from .probes import POOLINGS, probe_cls, probe_embeddings, pooled_layers
from .textdata import LabelledTexts, read_labelled_texts

__all__ = [
    "DiagnosticsError", "load_history", "Diagnosis", "Remedy", "Thresholds", "diagnose", "diagnose_run",
    "format_diagnosis", "prescribe", "ImbalanceWatch", "imbalance_signal", "minority_labels", "LayerReportTrick",
    "activation_stats", "gradient_norms", "layer_report", "parameter_stats", "save_layer_report", "tensor_stats",
    "pca_tsne", "plot_embeddings", "sample_per_class", "POOLINGS", "probe_cls", "probe_embeddings",
    "pooled_layers", "LabelledTexts", "read_labelled_texts", "TrainEval",
]
