"""The report's errors: each message names the path and what to do."""

from __future__ import annotations

__all__ = ["ReportError"]


class ReportError(ValueError):
    """A path the report cannot read (not a run, ablation or mining directory; a malformed file in it). A missing
    matplotlib is :class:`nlp_cv_tricks.utils.optional.MissingExtraError`, as everywhere in the package."""
