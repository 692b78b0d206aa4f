"""The garbage collector's settings for a process the package owns (the command line, a grid's run worker); never
applied on import, so a program that uses the package as a library keeps its own.

A training process holds millions of long-lived objects (torch, transformers, datasets, the data). At CPython's
default threshold (a generation-0 collection every 700 net allocations) the collector walks them again and again
while they are created: 9 full collections in a FastText training of THUCNews, about 0.4 s of the imports and
0.9 s of the whole command. Every 10,000 allocations keeps cyclic garbage as bounded (a young collection still
runs, just less often) at a fraction of the cost. At exit the interpreter's final collection would walk the same
objects once more (1.6 s of CPU after a FastText training): they are frozen first (the process ends, nothing is
lost)."""

from __future__ import annotations

import atexit
import gc

__all__ = ["GEN0_THRESHOLD", "tune_for_a_command"]

GEN0_THRESHOLD = 10_000
_tuned = False


def tune_for_a_command() -> None:
    """Collect the youngest generation every :data:`GEN0_THRESHOLD` allocations at most (the older generations'
    thresholds unchanged) and skip the final collection at exit. Idempotent."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, gen0), gen1, gen2)
    atexit.register(gc.freeze)
