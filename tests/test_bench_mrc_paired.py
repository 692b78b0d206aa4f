"""scripts/bench_mrc_paired.py: per-question scores agree with the official v1.1 totals, and the paired counts."""

import importlib.util
from pathlib import Path

import pytest

from nlp_cv_tricks.metrics.squad import squad_v1_evaluate

_SPEC = importlib.util.spec_from_file_location(
    "bench_mrc_paired", Path(__file__).resolve().parents[1] / "scripts" / "bench_mrc_paired.py")
paired = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(paired)

GOLD = {"q1": ["Denver Broncos"], "q2": ["308", "three hundred eight"], "q3": ["Kawann Short"], "q4": ["four"]}
BASE = {"q1": "the Denver Broncos", "q2": "136", "q3": "Short"}          # q4 missing
OTHER = {"q1": "Broncos", "q2": "three hundred eight", "q3": "Kony Ealy", "q4": "four"}


def test_scores_match_official_totals_and_count_wins():
    res = paired.compare(GOLD, BASE, OTHER)
    for preds, side in ((BASE, "base"), (OTHER, "other")):
        official = squad_v1_evaluate(GOLD, preds)
        assert res["exact_match"][side] == pytest.approx(official["exact_match"])
        assert res["f1"][side] == pytest.approx(official["f1"])
    assert res["missing_base"] == 1 and res["missing_other"] == 0
    # EM: base right on q1 only; other right on q2 and q4
    assert res["exact_match"]["other_right_base_wrong"] == 2
    assert res["exact_match"]["base_right_other_wrong"] == 1
    assert res["exact_match"]["delta"] == pytest.approx(25.0)
    lo, hi = res["exact_match"]["ci95"]
    assert lo <= 25.0 <= hi


def test_unreadable_predictions_name_the_file(tmp_path):
    bad = tmp_path / "predictions.json"
    bad.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="predictions.json: expected a JSON object"):
        paired._load_predictions(str(bad))
