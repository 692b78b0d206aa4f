"""Hard-case relabeling loop: mine likely label errors and hard examples, export them for annotation, import the
answers as a new dataset version (originals never modified, versions can be dropped), retrain, repeat.

Modules: :mod:`.mine` (K-fold out-of-fold probabilities through the trainer, training dynamics, rankings),
:mod:`.export` (CSV / JSONL / Label Studio), :mod:`.importer` (validation, conflict rules, versions),
:mod:`.retrain` (retrain on a version with up-weighting or oversampling), :mod:`.loop` (rounds); the commands in :mod:`nlp_cv_tricks.cli.hardcases`.
(Eager imports: the functions ``mine`` and ``retrain`` share their modules' names and must shadow them.)
"""

from .export import export_hard_cases
from .importer import ImportValidationError, VersionStore, import_annotations
from .loop import HardCaseLoop
from .mine import MineResult, TrainingDynamics, mine, rank_label_issues
from .retrain import retrain, train_and_evaluate

__all__ = ["mine", "MineResult", "TrainingDynamics", "rank_label_issues", "export_hard_cases",
           "import_annotations", "ImportValidationError", "VersionStore", "retrain", "train_and_evaluate",
           "HardCaseLoop"]
