"""Batch size with and without rescaling the learning rate, through ``nlp-cv-tricks ablate``'s own runner.

``ablate --vary`` changes one key per variant; this needs two (batch size and learning rate) for the rescaled
arm, so it builds the variants itself and runs them with :func:`nlp_cv_tricks.ablate.run_one` (resumable: a
finished run is reused) and tabulates them with ablate's ``summarize`` / ``markdown_table`` (paired bootstrap
against the recipe's batch size). Variants: for every ``--batch-sizes`` value ``b``, ``train.batch_size=b`` at
the base rate (``const``) and at ``lr * (b / base_batch)`` (``linear``) or ``lr * sqrt(b / base_batch)``
(``sqrt``).

    python scripts/bench_tips_batch.py recipes/sms_spam_fasttext.yaml --lr 0.01 --base-batch 64 \
        --batch-sizes 16,256 --scale linear --seeds 5 --out runs/tips/sms_bs [key=value ...]

Writes ``ablation.md`` / ``ablation.json`` to ``--out`` as ``ablate`` does.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp_cv_tricks.ablate import (Variant, _slug, _write_report, markdown_table, run_one,  # noqa: E402
                                  summarize)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--lr", type=float, required=True, help="the base learning rate (at --base-batch)")
    ap.add_argument("--base-batch", type=int, required=True, help="the recipe's batch size")
    ap.add_argument("--batch-sizes", required=True, help="comma-separated batch sizes to compare")
    ap.add_argument("--scale", choices=("linear", "sqrt"), default="linear")
    ap.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    common = list(args.overrides) + ["output.save_best=false", "output.report_to=none",
                                     f"train.learning_rate={args.lr!r}", f"train.batch_size={args.base_batch}"]
    variants = [Variant("baseline", [])]
    for b in (int(x) for x in args.batch_sizes.split(",")):
        ratio = b / args.base_batch
        lr = args.lr * (ratio if args.scale == "linear" else math.sqrt(ratio))
        variants.append(Variant(f"batch {b}, lr {args.lr:g}", [f"train.batch_size={b}"]))
        variants.append(Variant(f"batch {b}, lr {lr:g} ({args.scale})",
                                [f"train.batch_size={b}", f"train.learning_rate={lr!r}"]))
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        for v in variants:
            r = run_one(args.recipe, v, seed, out / "runs" / _slug(v) / f"seed{seed}", common, in_process=True)
            runs.append(r)
            print(f"{v.name} seed={seed}: {r.metric_name}={r.metric} "
                  f"({'reused' if r.reused else r.error or f'{r.seconds:.1f}s'})", flush=True)
    metric = next((r.metric_name for r in runs if r.error is None), "metric")
    summaries = summarize(runs, [v.name for v in variants])
    md = markdown_table(summaries, metric + " (best)")
    print(md)
    _write_report(out, f"Batch size of {args.recipe} at lr {args.lr:g} (batch {args.base_batch}), constant vs "
                       f"{args.scale} rescaling, seeds {seeds}", md, summaries, runs,
                  {"variants": [v.__dict__ for v in variants], "common_overrides": common})
    return 0


if __name__ == "__main__":
    sys.exit(main())
