"""The ablation harness: variant parsing, statistics, a real (tiny) ablation in process and through the worker
subprocess, resumability, the learning-rate halving sweep and the command line."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from nlp_cv_tricks import ablate as ab
from nlp_cv_tricks.ablate import (AblateError, RunResult, Variant, apply_trick_ops, build_variants, markdown_table,
                                  paired_stats, parse_vary, split_top_level, summarize)

torch.set_num_threads(1)
RECIPE = ROOT / "recipes" / "quickstart.yaml"


def _overrides(tiny_bert, toy_data, *extra):
    return [f"data.train_file={toy_data['train']}", f"data.dev_file={toy_data['dev']}", "data.format=kim2014",
            "data.label_names=[negative,positive]", "data.max_length=16", f"model.name={tiny_bert}",
            "train.epochs=1", "train.batch_size=16", "train.learning_rate=3e-3", "train.eval_batch_size=64",
            "train.warmup_ratio=0.0", "train.logging_steps=4", "tricks=[]", "callbacks=[]", "train.lr_scheduler=linear",
            "train.max_grad_norm=1.0", *extra]


def test_split_and_trick_operations():
    assert split_top_level("+fgm,+focal_loss{gamma: 1, alpha: [1, 2]},-x") == [
        "+fgm", "+focal_loss{gamma: 1, alpha: [1, 2]}", "-x"]
    with pytest.raises(AblateError, match="unbalanced"):
        split_top_level("+fgm{a: 1")
    base = ["grad_norm_logging", {"label_smoothing": {"epsilon": 0.1}}]
    assert apply_trick_ops(base, "+fgm") == base + ["fgm"]
    assert apply_trick_ops(base, "+fgm+rdrop{alpha: 0.5}") == base + ["fgm", {"rdrop": {"alpha": 0.5}}]
    assert apply_trick_ops(base, "-label_smoothing") == ["grad_norm_logging"]
    # re-adding a trick replaces its options instead of listing it twice
    assert apply_trick_ops(base, "+label_smoothing{epsilon: 0.2}") == ["grad_norm_logging",
                                                                       {"label_smoothing": {"epsilon": 0.2}}]
    with pytest.raises(AblateError, match="unknown trick 'fmg'; did you mean 'fgm'"):
        apply_trick_ops(base, "+fmg")
    with pytest.raises(AblateError, match="has no trick 'rdrop' to remove"):
        apply_trick_ops(base, "-rdrop")
    with pytest.raises(AblateError, match="expected \\+name"):
        apply_trick_ops(base, "fgm")


def test_parse_vary_and_grid(tiny_bert, toy_data):
    vs = parse_vary("train.learning_rate=0.01,0.005", [])
    assert [(v.name, v.overrides) for v in vs] == [("train.learning_rate=0.01", ["train.learning_rate=0.01"]),
                                                    ("train.learning_rate=0.005", ["train.learning_rate=0.005"])]
    (v,) = parse_vary("tricks=+fgm{epsilon: 0.3}", ["grad_norm_logging"])
    assert json.loads(v.overrides[0].split("=", 1)[1]) == ["grad_norm_logging", {"fgm": {"epsilon": 0.3}}]
    with pytest.raises(AblateError, match="KEY=V1,V2"):
        parse_vary("tricks", [])
    ovr = _overrides(tiny_bert, toy_data)
    one = build_variants(RECIPE, ["tricks=+fgm,+rdrop", "train.batch_size=8,32"], ovr)
    assert [v.name for v in one] == ["baseline", "tricks=+fgm", "tricks=+rdrop", "train.batch_size=8",
                                     "train.batch_size=32"]
    grid = build_variants(RECIPE, ["tricks=+fgm,+rdrop", "train.batch_size=8,32"], ovr, grid=True)
    assert len(grid) == 5 and grid[1].name == "tricks=+fgm train.batch_size=8"
    assert grid[1].overrides == ["train.batch_size=8", 'tricks=["fgm"]']
    with pytest.raises(AblateError, match="listed twice"):
        build_variants(RECIPE, ["tricks=+fgm", "tricks=+fgm"], ovr)


def test_paired_statistics():
    d, lo, hi, p = paired_stats([0.82, 0.84, 0.86], [0.80, 0.80, 0.81])
    assert math.isclose(d, (0.02 + 0.04 + 0.05) / 3)
    assert 0.02 - 1e-9 <= lo <= d <= hi <= 0.05 + 1e-9
    from scipy import stats

    assert math.isclose(p, stats.ttest_rel([0.82, 0.84, 0.86], [0.80, 0.80, 0.81]).pvalue)
    d, lo, hi, p = paired_stats([0.9], [0.8])
    assert math.isclose(d, 0.1) and math.isnan(lo) and math.isnan(p)
    runs = [RunResult(v, s, m, m, "eval/accuracy", True, 1.0, 1.0, 100.0, None, "", [])
            for v, s, m in [("baseline", 1, 0.8), ("baseline", 2, 0.7), ("x", 1, 0.9), ("x", 2, 0.75),
                            ("x", 3, 0.99)]]
    runs.append(RunResult("x", 4, None, None, "?", True, 1.0, None, None, None, "", [], error="boom"))
    base, x = summarize(runs, ["baseline", "x"])
    assert base.n == 2 and math.isclose(base.mean, 0.75) and base.delta is None
    # seed 3 has no baseline: the difference is paired on seeds 1 and 2 only
    assert x.n == 3 and x.failed == 1 and math.isclose(x.delta, 0.075)
    md = markdown_table([base, x], "eval/accuracy")
    assert "| x | 0.8800 ± 0.1212 | +0.0750 | [+0.0500, +0.1000] |" in md and "3 (1 failed)" in md


def test_ablate_in_process_is_resumable(tiny_bert, toy_data, tmp_path):
    ovr = _overrides(tiny_bert, toy_data)
    res = ab.ablate(RECIPE, ["tricks=+fgm", "train.gradient_accumulation_steps=2"], seeds=2, overrides=ovr,
                    out_dir=tmp_path / "abl", in_process=True, verbose=False)
    assert [s.name for s in res.summaries] == ["baseline", "tricks=+fgm", "train.gradient_accumulation_steps=2"]
    assert all(s.n == 2 and s.failed == 0 for s in res.summaries)
    assert res.metric_name == "eval/accuracy" and {r.seed for r in res.runs} == {42, 43}
    for s in res.summaries:
        vals = [r.metric for r in res.runs if r.variant == s.name]
        assert 0.0 <= s.mean <= 1.0 and s.seconds > 0 and math.isclose(s.mean, sum(vals) / 2)
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "tricks=+fgm" in table and "Δ vs baseline" in table
    saved = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert len(saved["runs"]) == 6
    again = ab.ablate(RECIPE, ["tricks=+fgm", "train.gradient_accumulation_steps=2"], seeds=2, overrides=ovr,
                      out_dir=tmp_path / "abl", in_process=True, verbose=False)
    assert all(r.reused for r in again.runs)
    assert [r.metric for r in again.runs] == [r.metric for r in res.runs]
    # another seed list reuses the finished seeds and runs only the new one
    third = ab.ablate(RECIPE, ["tricks=+fgm"], seeds=[43, 44], overrides=ovr, out_dir=tmp_path / "abl",
                      in_process=True, verbose=False)
    assert [(r.variant, r.seed, r.reused) for r in third.runs] == [
        ("baseline", 43, True), ("tricks=+fgm", 43, True), ("baseline", 44, False), ("tricks=+fgm", 44, False)]


def test_run_one_in_a_subprocess(tiny_bert, toy_data, tmp_path):
    ovr = _overrides(tiny_bert, toy_data, "output.save_best=false", "output.report_to=none")
    r = ab.run_one(RECIPE, Variant("tricks=+rdrop", ['tricks=["rdrop"]']), 7, tmp_path / "run", ovr)
    assert r.error is None, r.error
    assert r.metric_name == "eval/accuracy" and 0.0 <= r.metric <= 1.0 and r.peak_mem_mb > 50
    assert json.loads((tmp_path / "run" / "ablate_result.json").read_text())["seed"] == 7
    assert (tmp_path / "run" / "train" / "metrics.json").is_file()
    bad = ab.run_one(RECIPE, Variant("broken", ["train.learning_rte=1"]), 7, tmp_path / "bad", ovr,
                     in_process=True)
    assert bad.error is not None and "learning_rte" in bad.error


def test_lr_sweep_stops_when_the_metric_stops_improving(monkeypatch, tmp_path, tiny_bert, toy_data):
    score = {0.01: 0.70, 0.005: 0.80, 0.0025: 0.85, 0.00125: 0.84, 0.000625: 0.9, 0.0003125: 0.5,
             0.00015625: 0.5, 0.000078125: 0.99}
    calls = []

    def fake_run(recipe, variant, seed, run_dir, overrides=(), in_process=False, launcher=None, force=False):
        lr = float(variant.overrides[0].split("=")[1])
        calls.append(lr)
        return RunResult(variant.name, seed, score[lr] + 0.01 * seed, None, "eval/accuracy", True, 1.0, 1.0, None,
                         None, str(run_dir), list(overrides))

    monkeypatch.setattr("nlp_cv_tricks.experiments.grid.run_one", fake_run)  # what run_grid calls
    res = ab.lr_sweep(RECIPE, seeds=[0, 1], overrides=_overrides(tiny_bert, toy_data), out_dir=tmp_path / "sw",
                      verbose=False)
    assert sorted(set(calls), reverse=True) == [0.01, 0.005, 0.0025, 0.00125]  # stopped after the first drop
    saved = json.loads((tmp_path / "sw" / "ablation.json").read_text())
    assert saved["best_lr"] == 0.0025 and "Best learning rate: 0.0025" in res.markdown
    calls.clear()
    ab.lr_sweep(RECIPE, seeds=[0], patience=2, overrides=_overrides(tiny_bert, toy_data), out_dir=tmp_path / "s2",
                verbose=False)
    # patience 2 gets past the single drop at 0.00125, then stops after two learning rates without improvement
    assert calls == [0.01, 0.005, 0.0025, 0.00125, 0.000625, 0.0003125, 0.00015625]


def test_command_line(tiny_bert, toy_data, tmp_path, capsys, monkeypatch):
    parser = argparse.ArgumentParser()
    from nlp_cv_tricks.cli import ablate as ab_cli

    ab_cli.add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ablate", str(RECIPE), "--vary", "tricks=+fgm", "train.epochs=1", "--seeds", "2",
                              "--in-process", "data.max_length=8"])
    assert args.func is ab_cli._cmd_ablate and args.recipe == str(RECIPE)
    inner = ab_cli.ablate_parser().parse_intermixed_args(args.rest)
    assert inner.vary == ["tricks=+fgm"] and inner.seeds == 2 and inner.in_process
    assert inner.overrides == ["train.epochs=1", "data.max_length=8"]
    seen = {}
    monkeypatch.setattr(ab, "ablate", lambda *a, **k: seen.setdefault("args", a) and ab.AblationResult(
        "| table |\n", [], [], str(tmp_path), "eval/accuracy"))
    assert args.func(args) == 0
    assert seen["args"][1] == ["tricks=+fgm"] and seen["args"][3] == ["train.epochs=1", "data.max_length=8"]
    assert "| table |" in capsys.readouterr().out
    args = parser.parse_args(["lr-sweep", str(RECIPE), "--start", "0.02", "--patience", "2"])
    inner = ab_cli.lr_sweep_parser().parse_intermixed_args(args.rest)
    assert inner.start == 0.02 and inner.patience == 2 and inner.seeds == 1
    assert ab_cli.main(["ablate", str(RECIPE), "--seeds", "1"]) == 2  # no --vary: a clear error, exit code 2
    assert "give at least one --vary" in capsys.readouterr().err


def test_recipe_variants_compare_whole_setups(toy_data, tmp_path):
    """--vary recipe=...: another recipe file as a variant, the common overrides (the data) applied to both."""
    import yaml

    common_train = {"epochs": 4, "batch_size": 16, "eval_batch_size": 64, "warmup_ratio": 0.0, "logging_steps": 8}
    cnn = {"name": "cnn", "task": "text-classification",
           "model": {"name": "textcnn", "kwargs": {"embedding_dim": 16, "num_filters": 8, "level": "word"}},
           "train": {**common_train, "optimizer": "adam", "learning_rate": 1e-2}, "tricks": []}
    ft = {"name": "ft", "task": "text-classification",
          "model": {"name": "fasttext", "kwargs": {"embedding_dim": 16, "word_ngrams": 2, "bucket": 1000,
                                                   "level": "word"}},
          "train": {**common_train, "optimizer": "auto", "learning_rate": 0.5}, "tricks": ["grad_norm_logging"]}
    paths = {}
    for name, r in (("cnn", cnn), ("ft", ft)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(r))
    data = [f"data.train_file={toy_data['train']}", f"data.dev_file={toy_data['dev']}", "data.format=kim2014",
            "data.label_names=[negative,positive]", "data.max_length=16"]
    variants = build_variants(paths["cnn"], [f"recipe={paths['ft']}"], data)
    assert [(v.name, v.recipe) for v in variants] == [("baseline", None), ("recipe=ft", str(paths["ft"]))]
    with pytest.raises(AblateError, match="missing.yaml.* does not exist"):
        build_variants(paths["cnn"], [f"recipe={tmp_path / 'missing.yaml'}"], data)
    res = ab.ablate(paths["cnn"], [f"recipe={paths['ft']}"], seeds=[0], overrides=data, out_dir=tmp_path / "abl",
                    in_process=True, verbose=False)
    assert [s.name for s in res.summaries] == ["baseline", "recipe=ft"]
    assert all(s.failed == 0 and s.mean > 0.7 for s in res.summaries), res.markdown  # chance is ~0.5
    trained = {r.variant: yaml.safe_load((Path(r.run_dir) / "train" / "recipe.yaml").read_text())
               for r in res.runs}
    assert trained["baseline"]["model"]["name"] == "textcnn" and trained["recipe=ft"]["model"]["name"] == "fasttext"
    assert trained["recipe=ft"]["data"]["train_file"] == str(toy_data["train"])
    again = ab.ablate(paths["cnn"], [f"recipe={paths['ft']}"], seeds=[0], overrides=data, out_dir=tmp_path / "abl",
                      in_process=True, verbose=False)
    assert all(r.reused for r in again.runs)


def test_an_edited_recipe_is_trained_again(tiny_bert, toy_data, tmp_path):
    """Finished runs are reused only while the recipe file is unchanged (its sha256 is kept with the result)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.read_text())
    ovr = _overrides(tiny_bert, toy_data, "train.epochs=1", "output.save_best=false", "output.report_to=none")
    v = Variant("baseline", [])
    first = ab.run_one(recipe, v, 1, tmp_path / "run", ovr, in_process=True)
    assert first.error is None and first.recipe_sha256 and not first.reused
    assert ab.run_one(recipe, v, 1, tmp_path / "run", ovr, in_process=True).reused
    recipe.write_text(recipe.read_text() + "\n# edited\n")
    again = ab.run_one(recipe, v, 1, tmp_path / "run", ovr, in_process=True)
    assert not again.reused and again.recipe_sha256 != first.recipe_sha256


def test_lr_sweep_refuses_settings_that_try_nothing(tmp_path):
    with pytest.raises(ab.AblateError, match="--start 1e-08 is below --min-lr 1e-07"):
        ab.lr_sweep(RECIPE, start=1e-8, out_dir=tmp_path / "x", verbose=False)
    with pytest.raises(ab.AblateError, match="--patience must be >= 1"):
        ab.lr_sweep(RECIPE, patience=0, out_dir=tmp_path / "x", verbose=False)


def test_one_seed_table_shows_no_spread_and_no_interval():
    from nlp_cv_tricks.ablate import RunResult, markdown_table, summarize

    runs = [RunResult(variant=v, seed=42, metric=m, last_metric=m, metric_name="eval/accuracy", greater_is_better=True,
                      seconds=1.0, train_seconds=1.0, peak_mem_mb=None, gpu_peak_mem_mb=None, run_dir=".", overrides=[])
            for v, m in (("base", 0.88), ("x", 0.87))]
    summaries = summarize(runs, ["base", "x"], "best")
    assert summaries[0].std is None and summaries[1].std is None
    md = markdown_table(summaries, "eval/accuracy")
    assert "| base | 0.8800 (1 seed) |" in md and "| x | 0.8700 (1 seed) | -0.0100 | – |" in md
    assert "± 0.0000" not in md and "One seed: no spread and no interval" in md


def test_failed_seeds_leave_the_paired_count_of_the_finished_ones():
    from nlp_cv_tricks.ablate import RunResult, markdown_table, summarize

    def run(v, seed, m, error=None):
        return RunResult(variant=v, seed=seed, metric=m, last_metric=m, metric_name="eval/accuracy",
                         greater_is_better=True, seconds=1.0, train_seconds=1.0, peak_mem_mb=None,
                         gpu_peak_mem_mb=None, run_dir=".", overrides=[], error=error)

    runs = [run("base", s, 0.80 + 0.01 * s) for s in range(3)]
    runs += [run("x", 0, 0.81), run("x", 1, 0.83), run("x", 2, None, error="diverged")]
    md = markdown_table(summarize(runs, ["base", "x"], "best"), "eval/accuracy")
    assert "| 2 (1 failed) |" in md and "With 2 paired seeds" in md, md
