"""The imbalance watch (re-exported; its home is :mod:`nlp_cv_tricks.callbacks.imbalance_watch`)."""

from ..callbacks.imbalance_watch import *  # noqa: F401,F403
from ..callbacks.imbalance_watch import __all__  # noqa: F401
