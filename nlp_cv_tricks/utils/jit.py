"""Optional numba compilation of the package's hand-written loops (the sparse-row optimizer updates in
:mod:`nlp_cv_tricks.engine.optim`). numba is the optional ``fast`` extra; without it (or with a numba built for another
numpy) every caller keeps its torch path."""

from __future__ import annotations

import logging
from typing import Callable, Optional

logger = logging.getLogger(__name__)

_NUMBA = None  # the numba module, or False when it cannot be imported


def numba_module():
    global _NUMBA
    if _NUMBA is None:
        from .optional import require

        try:
            numba = require("numba")
        except Exception as e:  # not installed, or built for another numpy
            _NUMBA = False
            logger.info("numba is not usable (%s): the torch paths are used "
                        "(pip install 'nlp-cv-tricks[fast]' for the compiled CPU loops)", e)
        else:
            _NUMBA = numba
    return _NUMBA


def njit(fn: Callable, **options) -> Optional[Callable]:
    """``fn`` compiled by numba (cached on disk where numba can write, else compiled in each process), or None
    without numba. Compilation itself happens at the first call. ``options`` go to ``numba.njit`` (e.g.
    ``fastmath``)."""
    numba = numba_module()
    if not numba:
        return None
    try:
        return numba.njit(cache=True, nogil=True, **options)(fn)
    except RuntimeError:  # no writable cache location
        return numba.njit(nogil=True, **options)(fn)
