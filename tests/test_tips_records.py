"""The tip measurements' tables are derived from their committed records: rebuilding each table from the run
histories in ``benchmarks/tips/`` must give the committed table byte for byte (a figure cannot drift from its
record), and the statistics behind them are the paired t-interval and detectable difference they claim."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIPS = ROOT / "benchmarks" / "tips"


def _script(name):
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _runs(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# folder -> epochs compared in its epochs.md (the --epochs argument it was printed with)
EPOCH_TABLES = {"trec_norm": [1, 2], "sms_norm": [1, 2], "trec_init": [1, 2], "sms_init": [1, 2],
                "trec_lr_vs_recipe": [1, 2], "sms_lr_halving": [1, 5, 10], "trec_wd": [1], "sms_bs": [1, 3],
                "thuc_bs": [1]}


@pytest.mark.parametrize("folder", sorted(EPOCH_TABLES))
def test_epoch_tables_match_their_records(folder):
    mod = _script("bench_tips_epochs")
    runs = _runs(TIPS / folder / "histories.jsonl")
    md, rec = mod.tables(runs, runs[0]["metric"], EPOCH_TABLES[folder])
    assert md + "\n" == (TIPS / folder / "epochs.md").read_text(encoding="utf-8")
    assert rec == json.loads((TIPS / folder / "epochs.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("histories,table", [("imbalance_histories.jsonl", "imbalance.md"),
                                             ("sms_wd/histories.jsonl", "sms_wd/imbalance.md")])
def test_imbalance_tables_match_their_records(histories, table):
    mod = _script("bench_tips_imbalance")
    md, _ = mod.tables(_runs(TIPS / histories), "spam")
    assert md + "\n" == (TIPS / table).read_text(encoding="utf-8")


def test_paired_interval_and_detectable_difference():
    """5 paired differences 1..5 (mean 3, sd 1.58): t(0.975, 4) = 2.776, t(0.80, 4) = 0.941."""
    st = _script("bench_tips_imbalance").paired([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert st["delta"] == pytest.approx(3.0)
    assert (st["ci_low"], st["ci_high"]) == pytest.approx((3 - half, 3 + half))
    assert st["mde80"] == pytest.approx((2.7764451 + 0.9409646) * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
