"""The report's errors: each message names the path and what to do."""

from __future__ import annotations

__all__ = ["ReportError", "MissingDependencyError"]


class ReportError(ValueError):
    """A path the report cannot read (not a run, ablation or mining directory; a malformed file in it)."""


class MissingDependencyError(ReportError, ImportError):
    """An optional library the figures need is not installed; the message names the pip extra."""
