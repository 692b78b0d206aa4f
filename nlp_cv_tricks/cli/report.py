"""``nlp-cv-tricks report PATH [PATH ...] [--out DIR] [--true-labels FILE]``."""

from __future__ import annotations

import sys

__all__ = ["add_cli"]


def _cmd_report(args) -> int:
    from ..engine.run_lock import warn_if_live
    from ..utils.optional import MissingExtraError
    from ..report import ReportError, write_report

    for path in args.paths:  # a run still training is read as it is now
        warn_if_live(path, "report")
    try:
        res = write_report(args.paths, out=args.out, true_labels=args.true_labels, max_points=args.max_points,
                           log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (ReportError, MissingExtraError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {res['html']} ({res['kind']} report, {len(res['figures'])} figures, {res['seconds']:.1f} s); "
          f"the figures also as PNG files next to it")
    return 0


def add_cli(subparsers) -> None:
    """Add the ``report`` subcommand (``nlp_cv_tricks.cli.register_cli(add_cli)``)."""
    p = subparsers.add_parser(
        "report", help="write report.html with figures for a run, ablation, lr-sweep or hardcases mine directory",
        description="Write one self-contained report.html (figures embedded, opens from disk) and the figures as "
                    "PNG files (report_files/) for a training run, an ablation or lr-sweep directory, a `hardcases "
                    "mine` directory, or several run directories overlaid (then --out is required).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="run, ablation, lr-sweep or hardcases mine directory; "
                                                            "several run directories to overlay them")
    p.add_argument("--out", default=None, help="directory for report.html and report_files/ (default: PATH itself)")
    p.add_argument("--true-labels", default=None, metavar="FILE",
                   help="mining directories: the true label of every training row (.npy, .json list, or one per "
                        "line; ids or names) for the budget curve")
    p.add_argument("--max-points", type=int, default=2000, help="points per drawn curve; longer histories are "
                                                               "downsampled (default 2000)")
    p.set_defaults(func=_cmd_report)
