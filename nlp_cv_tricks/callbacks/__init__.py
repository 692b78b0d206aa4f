"""Observe-only plug-ins (:class:`~nlp_cv_tricks.engine.events.Callback`): they log, evaluate, report or warn and
never change the step. Recipe key ``callbacks:`` (the table: :mod:`.registry`): ``grad_norm_logging``
(:mod:`.grad_norm`), ``imbalance_watch`` (:mod:`.imbalance_watch`), ``train_eval`` (:mod:`.train_eval`),
``layer_report`` (:mod:`.layer_report`), ``training_dynamics`` (:mod:`.training_dynamics`); each module holds the
analysis (a pure function) and the callback. An observer listed under ``tricks:`` still runs, with a deprecation
note."""
