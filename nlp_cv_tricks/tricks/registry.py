"""Where plug-in authors register tricks: the table itself is the engine's (:mod:`nlp_cv_tricks.engine.plugins`)."""

from ..engine.plugins import (BUILTIN_TRICKS, ENTRY_POINT_GROUP, _REGISTRY, _entry_points, _load,  # noqa: F401
                              available_tricks, build_trick, build_tricks, register_trick)
