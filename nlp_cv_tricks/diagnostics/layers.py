"""Layer statistics (re-exported; their home is :mod:`nlp_cv_tricks.callbacks.layer_report`)."""

from ..callbacks.layer_report import *  # noqa: F401,F403
from ..callbacks.layer_report import __all__  # noqa: F401
