"""What several verbs parse alike: recipe overrides anywhere on the line, and where the runs of a grid go."""

from __future__ import annotations

import argparse
import os
import re
from typing import Optional

__all__ = ["parse_args_with_overrides", "add_executor_args", "executor_from_args"]

_OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.\w+)*\+?=")


def parse_args_with_overrides(parser: argparse.ArgumentParser, argv: Optional[list[str]] = None):
    """``parser.parse_args`` that takes recipe overrides (``key=value``) anywhere on the line: after options too
    (``hardcases mine R --out d train.epochs=1``), and not as values of a list option (``import --files F
    train.seed=1``: ``train.seed=1`` is an override unless a file of that name exists)."""
    args, extra = parser.parse_known_args(argv)
    if not hasattr(args, "overrides"):
        return parser.parse_args(argv) if extra else args
    moved = []
    for name in ("files", "annotations"):
        values = getattr(args, name, None)
        if isinstance(values, list):
            keep = [v for v in values if not (_OVERRIDE.match(v) and not os.path.exists(v))]
            moved += [v for v in values if v not in keep]
            setattr(args, name, keep)
            if name == "files" and not keep:
                parser.error("--files needs at least one annotation file (key=value words are recipe overrides)")
    if extra and not all(_OVERRIDE.match(x) for x in extra):
        parser.parse_args(argv)  # argparse's own error for what is not an override
    args.overrides = list(args.overrides or []) + moved + list(extra)
    return args


def add_executor_args(p) -> None:
    """The executor options of a grid command (argparse)."""
    g = p.add_argument_group("where the runs go")
    from ..utils.executors import EXECUTORS

    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: on this machine (default); ray: one Ray task per run (pip install "
                        "\"nlp-cv-tricks[ray]\"); on a cluster --out, the data and the project must be on a "
                        "shared filesystem")
    g.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="Ray cluster to use (auto: the one `ray start` runs on this machine); default: a local "
                        "Ray started for this grid")
    g.add_argument("--cpus-per-run", type=float, default=1, help="CPUs a Ray run asks for (and its torch threads; "
                                                                  "default 1)")
    g.add_argument("--gpus-per-run", type=float, default=0, help="GPUs a Ray run asks for (default 0; fractions "
                                                                  "share a GPU)")
    g.add_argument("--retries", type=int, default=0, help="try a failed run again this many times (default 0)")


def executor_from_args(a, workers: int = 1, fresh_process: bool = True):
    """The executor the options of :func:`add_executor_args` name."""
    from ..utils.executors import make_executor

    return make_executor(a.executor, workers=workers, retries=a.retries, address=a.ray_address,
                         cpus=a.cpus_per_run, gpus=a.gpus_per_run, fresh_process=fresh_process)
