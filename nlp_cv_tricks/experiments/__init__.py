"""Experiments over many runs: the vary language (:mod:`.variants`), running a grid (:mod:`.grid`), statistics
(:mod:`.stats`) and the output tables (:mod:`.tables`); the ``ablate`` and ``lr-sweep`` drivers are
:mod:`nlp_cv_tricks.ablate`."""
