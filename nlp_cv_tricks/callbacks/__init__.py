"""Observe-only plug-ins (:class:`~nlp_cv_tricks.engine.events.Callback`): they log, evaluate, report or warn and
never change the step. Recipe keys (listed under ``tricks:`` like tricks): ``grad_norm_logging``; the diagnostics
add ``imbalance_watch``, ``train_eval`` and ``layer_report``."""
