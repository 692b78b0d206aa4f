#!/usr/bin/env python
"""Two MRC runs scored on the same questions: EM/F1 of each and their paired difference, with a 95% bootstrap
interval over questions.

Reads the ``predictions.json`` (question id -> answer text) that training writes under
``RUN/eval_predictions/step_N/`` and ``nlp-cv-tricks predict`` writes under ``--out``, and a SQuAD v1.1 file with
the gold answers. Each question is scored with the official v1.1 EM/F1 (``nlp_cv_tricks.metrics.squad``); the
interval resamples questions (``scipy.stats.bootstrap``, paired, percentile, 10,000 resamples, fixed seed), so it
says how much the difference could move with other questions from the same source, not with another training
seed. The EM wins and losses are tested with an exact binomial (McNemar) test.

    .venv/bin/python scripts/bench_mrc_paired.py --gold ../shared/data/xquad/xquad.en.json \
        --base runs/mrc_squad_recipe/train/eval_predictions/step_560/predictions.json \
        --other runs/mrc_squad_recipe_biattention/train/eval_predictions/step_560/predictions.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def per_question(gold: dict[str, list[str]], predictions: dict[str, str]):
    """Arrays of per-question EM (0/1) and F1 (0..1) in the order of ``gold``; a missing prediction scores 0."""
    import numpy as np

    from nlp_cv_tricks.metrics.squad import exact_match_score, f1_score

    em, f1 = [], []
    for qid, truths in gold.items():
        pred = str(predictions.get(qid, ""))
        em.append(max(float(exact_match_score(pred, t)) for t in truths) if qid in predictions else 0.0)
        f1.append(max(f1_score(pred, t) for t in truths) if qid in predictions else 0.0)
    return np.array(em), np.array(f1)


def _load_predictions(path: str) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path}: cannot read predictions ({err}); pass a predictions.json (question id -> answer)")
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object question id -> answer text, got {type(data).__name__}")
    return data


def compare(gold: dict[str, list[str]], base: dict[str, str], other: dict[str, str]) -> dict:
    from scipy import stats

    b_em, b_f1 = per_question(gold, base)
    o_em, o_f1 = per_question(gold, other)
    out = {"questions": len(gold), "missing_base": sum(q not in base for q in gold),
           "missing_other": sum(q not in other for q in gold)}
    for name, b, o in (("exact_match", b_em, o_em), ("f1", b_f1, o_f1)):
        ci = stats.bootstrap((o, b), lambda x, y, axis=-1: 100 * (x - y).mean(axis), paired=True, vectorized=True,
                             n_resamples=10_000, method="percentile", random_state=0).confidence_interval
        out[name] = {"base": 100 * b.mean(), "other": 100 * o.mean(), "delta": 100 * (o - b).mean(),
                     "ci95": [float(ci.low), float(ci.high)]}
    wins, losses = int(((o_em == 1) & (b_em == 0)).sum()), int(((o_em == 0) & (b_em == 1)).sum())
    out["exact_match"] |= {"other_right_base_wrong": wins, "base_right_other_wrong": losses,
                           "mcnemar_p": float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gold", required=True, help="SQuAD v1.1 JSON with the gold answers")
    p.add_argument("--base", required=True, help="predictions.json of the reference run")
    p.add_argument("--other", required=True, help="predictions.json of the run compared with it")
    p.add_argument("--out", help="also write the result as JSON here")
    args = p.parse_args(argv)
    from nlp_cv_tricks.metrics.squad import gold_answers_from_squad

    gold = gold_answers_from_squad(json.loads(Path(args.gold).read_text(encoding="utf-8")), source=args.gold)
    res = compare(gold, _load_predictions(args.base), _load_predictions(args.other))
    print(f"{res['questions']} questions (missing predictions: base {res['missing_base']}, "
          f"other {res['missing_other']})")
    print("| metric | base | other | other − base [95% CI over questions] |")
    print("|---|---:|---:|---:|")
    for name in ("exact_match", "f1"):
        r = res[name]
        print(f"| {name} | {r['base']:.1f} | {r['other']:.1f} | {r['delta']:+.1f} "
              f"[{r['ci95'][0]:+.1f}, {r['ci95'][1]:+.1f}] |")
    e = res["exact_match"]
    print(f"EM: other right where base wrong {e['other_right_base_wrong']}, the reverse {e['base_right_other_wrong']};"
          f" McNemar exact p = {e['mcnemar_p']:.3f}")
    if args.out:
        tmp = Path(args.out + ".tmp")
        tmp.write_text(json.dumps(res, indent=1) + "\n")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
