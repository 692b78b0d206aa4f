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

# names -> the module that defines them; imported on first use (PEP 562), so the run report can read the doctor
# without loading torch through the callbacks
_HOMES = {
    "DiagnosticsError": "._io", "load_history": "._io",
    "Diagnosis": ".doctor", "Remedy": ".doctor", "Thresholds": ".doctor", "diagnose": ".doctor",
    "diagnose_run": ".doctor", "format_diagnosis": ".doctor", "prescribe": ".doctor",
    "ImbalanceWatch": "..callbacks.imbalance_watch", "imbalance_signal": "..callbacks.imbalance_watch",
    "minority_labels": "..callbacks.imbalance_watch",
    "LayerReportTrick": "..callbacks.layer_report", "activation_stats": "..callbacks.layer_report",
    "gradient_norms": "..callbacks.layer_report", "layer_report": "..callbacks.layer_report",
    "parameter_stats": "..callbacks.layer_report", "save_layer_report": "..callbacks.layer_report",
    "tensor_stats": "..callbacks.layer_report", "TrainEval": "..callbacks.train_eval",
    "pca_tsne": ".plots", "plot_embeddings": ".plots", "sample_per_class": ".plots",
    "POOLINGS": ".probes", "probe_cls": ".probes", "probe_embeddings": ".probes", "pooled_layers": ".probes",
    "LabelledTexts": ".textdata", "read_labelled_texts": ".textdata",
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DiagnosticsError", "load_history", "Diagnosis", "Remedy", "Thresholds", "diagnose", "diagnose_run",
    "format_diagnosis", "prescribe", "ImbalanceWatch", "imbalance_signal", "minority_labels", "LayerReportTrick",
    "activation_stats", "gradient_norms", "layer_report", "parameter_stats", "save_layer_report", "tensor_stats",
    "pca_tsne", "plot_embeddings", "sample_per_class", "POOLINGS", "probe_cls", "probe_embeddings",
    "pooled_layers", "LabelledTexts", "read_labelled_texts", "TrainEval",
]
