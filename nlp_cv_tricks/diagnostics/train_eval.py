"""Train-set evaluation during training (re-exported; its home is :mod:`nlp_cv_tricks.callbacks.train_eval`)."""

from ..callbacks.train_eval import *  # noqa: F401,F403
from ..callbacks.train_eval import __all__  # noqa: F401
