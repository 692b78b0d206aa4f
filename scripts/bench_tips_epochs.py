"""Per-epoch view of an ``nlp-cv-tricks ablate`` folder: each variant's dev metric after every epoch, and the
paired difference to the baseline at chosen epochs and at the best evaluation (convergence speed and final).

Reads ``ablation.json`` and every run's ``train/history.jsonl`` (one evaluation per epoch). Differences are
paired by seed, with a 95% t-interval over seeds and the smallest difference a two-sided 5% paired t-test
would detect with 80% power from the spread of the paired differences (MDE), as in
``scripts/bench_tips_imbalance.py``.

    python scripts/bench_tips_epochs.py DIR [DIR ...] [--metric eval/accuracy] [--epochs 1,2] \
        [--json OUT.json] [--histories OUT.jsonl] | [--from-histories OUT.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tips_imbalance import fmt, paired  # noqa: E402


def read_runs(folder: Path, metric: str) -> list[dict]:
    abl = json.loads((folder / "ablation.json").read_text(encoding="utf-8"))
    out = []
    for r in abl["runs"]:
        if r.get("error"):
            continue
        hist = folder.joinpath(*Path(r["run_dir"]).parts[-3:]) / "train" / "history.jsonl"
        evals = [json.loads(l) for l in hist.read_text(encoding="utf-8").splitlines() if l.strip()]
        evals = [{"epoch": e.get("epoch"), "step": e["step"], metric: e[metric], "eval/loss": e.get("eval/loss")}
                 for e in evals if metric in e]
        out.append({"folder": folder.name, "variant": r["variant"], "seed": r["seed"], "metric": metric,
                    "evals": evals})
    return out


def tables(runs: list[dict], metric: str, epochs: list[int]) -> tuple[str, dict]:
    md, rec = [], {}
    for folder in sorted({r["folder"] for r in runs}):
        rs = [r for r in runs if r["folder"] == folder]
        variants = list(dict.fromkeys(r["variant"] for r in rs))
        by = {v: {r["seed"]: r for r in rs if r["variant"] == v} for v in variants}
        base = by[variants[0]]
        n_ep = min(len(r["evals"]) for r in rs)
        frec = {"metric": metric, "variants": {}}
        md.append(f"\n**{folder}**: `{metric}` after each epoch, mean ± sd over seeds.\n")
        md.append("| variant | seeds | " + " | ".join(f"epoch {i + 1}" for i in range(n_ep)) + " | best |")
        md.append("|---|---|" + "---|" * (n_ep + 1))
        for v in variants:
            seeds = sorted(by[v])
            curves = np.array([[by[v][s]["evals"][i][metric] for i in range(n_ep)] for s in seeds])
            best = np.array([max(e[metric] for e in by[v][s]["evals"]) for s in seeds])
            frec["variants"][v] = {"seeds": seeds, "curves": curves.tolist(), "best": best.tolist()}
            cells = [f"{curves[:, i].mean():.4f} ± {curves[:, i].std(ddof=1):.4f}" for i in range(n_ep)]
            md.append(f"| {v} | {len(seeds)} | " + " | ".join(cells) + f" | {best.mean():.4f} ± "
                      f"{best.std(ddof=1):.4f} |")
        md.append(f"\n**{folder}**: paired Δ vs `{variants[0]}` [95% t-interval] (MDE).\n")
        cols = [f"epoch {e}" for e in epochs] + ["best"]
        md.append("| variant | " + " | ".join(cols) + " |")
        md.append("|---|" + "---|" * len(cols))
        for v in variants[1:]:
            seeds = sorted(set(by[v]) & set(base))
            cells, prec = [], {}
            for c in cols:
                if c == "best":
                    a = [max(e[metric] for e in by[v][s]["evals"]) for s in seeds]
                    b = [max(e[metric] for e in base[s]["evals"]) for s in seeds]
                else:
                    i = int(c.split()[1]) - 1
                    a = [by[v][s]["evals"][i][metric] for s in seeds]
                    b = [base[s]["evals"][i][metric] for s in seeds]
                st = paired(a, b)
                prec[c] = st
                cells.append(f"{fmt(st['delta'], '.4f', True)} [{fmt(st.get('ci_low'), '.4f', True)}, "
                             f"{fmt(st.get('ci_high'), '.4f', True)}] ({fmt(st.get('mde80'), '.4f')})")
            frec["variants"][v]["paired"] = prec
            md.append(f"| {v} | " + " | ".join(cells) + " |")
        rec[folder] = frec
    return "\n".join(md) + "\n", rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--metric", default="eval/accuracy", help="history key (default eval/accuracy)")
    ap.add_argument("--epochs", default="1", help="comma-separated epochs to compare (default 1)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--histories", default=None, help="write the runs' evaluation rows here (JSONL)")
    ap.add_argument("--from-histories", default=None, help="read the runs from such a JSONL instead")
    args = ap.parse_args(argv)
    if args.from_histories:
        runs = [json.loads(l) for l in Path(args.from_histories).read_text(encoding="utf-8").splitlines() if l]
    else:
        if not args.folders:
            ap.error("give ablation folders or --from-histories")
        runs = [r for f in args.folders for r in read_runs(Path(f), args.metric)]
    if args.histories:
        Path(args.histories).write_text("".join(json.dumps(r) + "\n" for r in runs), encoding="utf-8")
    md, rec = tables(runs, args.metric, [int(e) for e in args.epochs.split(",")])
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(rec, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
