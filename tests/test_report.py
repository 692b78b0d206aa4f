"""The report page: a tiny run's report written by the trainer (each figure decoded and its size checked, the
captions and tables), a run without dev evaluation, ablations, sweeps, a mining directory, runs overlaid, bad
paths, a missing matplotlib, and the downsampling that keeps long histories fast."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_recipe, write_kim, toy_sentences
from nlp_cv_tricks.cli import main
from nlp_cv_tricks.report import ReportError, detect_kind, write_report
from nlp_cv_tricks.report._mpl import DPI, downsample
from nlp_cv_tricks.report.page import Figure, Page, Section, png_size, write_page

torch.set_num_threads(1)

_FIG = re.compile(r'<figure id="fig-([\w.-]+)"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)" width="(\d+)" '
                  r'height="(\d+)" alt="([^"]*)"><figcaption><b>([^<]*)</b> ([^<]*) <span')


def figures(html: str) -> dict:
    """``{name: (decoded PNG bytes, (width, height) declared in the page, title, caption)}``."""
    out = {}
    for name, b64, w, h, alt, title, caption in _FIG.findall(html):
        out[name] = (base64.b64decode(b64), (int(w), int(h)), title, caption)
    return out


def table(html: str, title: str) -> list[list[str]]:
    """The body rows of the table under ``<h3>title</h3>`` as lists of cell texts."""
    m = re.search(re.escape(f"<h3>{title}</h3>") + r"<table>.*?<tbody>(.*?)</tbody>", html, re.S)
    assert m, f"no table {title!r}"
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", m.group(1))]


def assert_figure(figs: dict, name: str, inches: tuple[float, float], files: Path) -> None:
    png, declared, title, caption = figs[name]
    size = png_size(png)
    assert size == declared == (round(inches[0] * DPI), round(inches[1] * DPI)), (name, size, declared)
    from PIL import Image
    import io

    with Image.open(io.BytesIO(png)) as im:  # a real, decodable image of that size, not just a header
        im.load()
        assert im.size == size and im.getextrema() != ((255, 255), (255, 255), (255, 255), (255, 255))
    assert (files / f"{name}.png").read_bytes() == png  # the same figure as a separate file
    assert len(caption) > 60 and title


# ---- a real tiny run: the trainer writes the report at the end -------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tiny_bert, toy_data, tmp_path_factory):
    from nlp_cv_tricks.runner import build_trainer

    out = tmp_path_factory.mktemp("report") / "run"
    recipe = tiny_recipe(tiny_bert, toy_data, out, "output.report=true", "train.eval_steps=12", "train.epochs=2",
                         "tricks=[{grad_norm_logging: {every: 4}}]")
    build_trainer(recipe, output_dir=str(out)).fit()
    return out


def test_training_run_writes_its_report_with_every_figure(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    figs = figures(html)
    assert set(figs) == {"curves", "confusion_matrix", "per_class", "grad_norms", "doctor"}
    files = run_dir / "report_files"
    assert_figure(figs, "curves", (11.5, 3.9), files)
    assert_figure(figs, "confusion_matrix", (5.6, 4.6), files)  # two classes: the smallest matrix
    assert_figure(figs, "per_class", (6.5, 3.9), files)
    assert_figure(figs, "grad_norms", (11.5, 3.9), files)
    assert_figure(figs, "doctor", (11.5, 3.6), files)
    assert sorted(p.name for p in files.glob("*.png")) == sorted(f"{n}.png" for n in figs)
    # captions say how to read each figure
    assert "dev loss rising while train loss falls means overfitting" in figs["curves"][3]
    assert "Rows are the true labels" in figs["confusion_matrix"][3]
    assert figs["doctor"][2].startswith("Fit regime: ")
    # self-contained: nothing fetched, nothing run
    assert "<script" not in html and "<link" not in html and not re.search(r'src="(?!data:)', html)
    # tables: the summary, the best model's per-class scores (supports add up to the dev set), the doctor
    metrics = json.loads((run_dir / "metrics.json").read_text())
    run = dict((r[0], r[1]) for r in table(html, "Run"))
    assert run["steps trained"] == str(metrics["global_step"]) and run["best step"] == str(metrics["best_step"])
    per_class = table(html, "Per-class scores")
    assert [r[0] for r in per_class] == ["negative", "positive"]
    assert sum(int(r[4].replace(",", "")) for r in per_class) == 64
    best = json.loads((run_dir / "best" / "eval_metrics.json").read_text())
    assert float(per_class[1][3]) == pytest.approx(best["eval/f1/positive"], abs=5e-4)
    assert f"best model, step {metrics['best_step']}" in html
    from nlp_cv_tricks.diagnostics import diagnose_run

    diag = diagnose_run(run_dir)
    assert f"Fit regime: {diag.regime}" in html and len(table(html, "Why")) == len(diag.reasons)
    assert "no dev evaluation" not in html


def test_report_is_rewritten_and_only_its_own_stale_figures_go(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report_files" / "mine.txt").write_text("a user's file")
    history = [json.loads(x) for x in (copy / "history.jsonl").read_text().splitlines()]
    (copy / "history.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items()
                                                            if not k.startswith("train/grad_norm/")}) + "\n"
                                                for r in history))
    res = main(["report", str(copy)])
    assert res == 0
    assert not (copy / "report_files" / "grad_norms.png").exists()  # ours, no longer drawn: removed
    assert (copy / "report_files" / "mine.txt").read_text() == "a user's file"  # not ours: kept
    assert "grad_norms" not in figures((copy / "report.html").read_text())


def test_layer_report_and_embedding_figures_are_embedded(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    src = (copy / "report_files" / "per_class.png").read_bytes()
    (copy / "layer_reports").mkdir()
    for s in (10, 20, 5):
        (copy / "layer_reports" / f"step_{s}.png").write_bytes(src)
    (copy / "embeddings.png").write_bytes(src)
    (copy / "broken.png").write_bytes(b"not a png")
    write_report(copy)
    figs = figures((copy / "report.html").read_text())
    assert {"layer_step_10", "layer_step_20", "file_embeddings"} <= set(figs) and "layer_step_5" not in figs
    assert "file_broken" not in figs and figs["file_embeddings"][0] == src


# ---- a run without dev evaluation; matplotlib missing ----------------------------------------------------

def test_run_without_dev_evaluation_and_without_matplotlib(tiny_bert, toy_data, tmp_path, monkeypatch, caplog,
                                                           capsys):
    from nlp_cv_tricks.runner import build_trainer

    out = tmp_path / "nodev"
    recipe = tiny_recipe(tiny_bert, toy_data, out, "output.report=true", "data.dev_file=null", "train.epochs=1")
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with caplog.at_level(logging.WARNING):
        res = build_trainer(recipe, output_dir=str(out)).fit()  # the run does not fail ...
    assert Path(res.model_dir).name == "final" and (out / "metrics.json").is_file()
    assert not (out / "report.html").exists()  # ... it says why there is no report
    assert any('report.html not written' in r.message and 'pip install "nlp-cv-tricks[diagnostics]"' in r.message
               for r in caplog.records)
    from nlp_cv_tricks.utils.optional import MissingExtraError

    with pytest.raises(MissingExtraError, match=r'pip install "nlp-cv-tricks\[diagnostics\]"'):
        write_report(out)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2  # one error line naming the extra, as for every command
    assert 'pip install "nlp-cv-tricks[diagnostics]"' in capsys.readouterr().err
    monkeypatch.undo()
    write_report(out)
    html = (out / "report.html").read_text()
    assert "This run has no dev evaluation" in html
    assert set(figures(html)) == {"curves", "doctor"}
    assert "Dev set" not in html


# ---- ablations and sweeps (from the ablation harness's own summaries) ---------------------------------------

def _ablation_dir(tmp_path, sweep=False):
    from nlp_cv_tricks.ablate import RunResult, _write_report, markdown_table, summarize

    names = (["train.learning_rate=0.01", "train.learning_rate=0.005", "train.learning_rate=0.0025"] if sweep
             else ["baseline", "tricks=+fgm", "tricks=+rdrop"])
    effect = {names[0]: 0.0, names[1]: 0.03, names[2]: -0.01}
    runs = []
    for seed in (1, 2, 3):
        for n in names:
            runs.append(RunResult(n, seed, 0.80 + effect[n] + 0.004 * seed, 0.79, "eval/accuracy", True,
                                  10.0 + 5 * (n != names[0]), 8.0, 900.0, None, str(tmp_path / n / str(seed)), []))
    runs.append(RunResult(names[2], 4, None, None, "?", True, 1.0, None, None, None, "x", [], error="boom"))
    summaries = summarize(runs, names)
    out = tmp_path / ("sweep" if sweep else "abl")
    out.mkdir()
    _write_report(out, "Ablation of r.yaml", markdown_table(summaries, "eval/accuracy"), summaries, runs,
                  {"best_lr": 0.005, "best_metric": 0.838} if sweep else {"variants": []})
    return out, summaries


def test_ablation_report_forest_plot_time_and_table(tmp_path):
    out, summaries = _ablation_dir(tmp_path)
    assert detect_kind(out) == "ablation"
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    figs = figures(html)
    assert set(figs) == {"forest", "time"}
    assert_figure(figs, "forest", (10.5, max(2.6, 0.55 * 2 + 1.6)), out / "report_files")
    assert_figure(figs, "time", (10.5, max(2.2, 0.4 * 3 + 1.2)), out / "report_files")
    rows = table(html, "Variants")
    assert [r[0] for r in rows] == ["baseline", "tricks=+fgm", "tricks=+rdrop"]
    assert rows[1][2] == f"{summaries[1].delta:+.4f}" == "+0.0300"
    assert "1 run(s) failed" in html and "boom" in html


def test_lr_sweep_report(tmp_path):
    out, _ = _ablation_dir(tmp_path, sweep=True)
    assert detect_kind(out) == "lr-sweep"
    write_report(out)
    html = (out / "report.html").read_text()
    figs = figures(html)
    assert set(figs) == {"lr_sweep", "time"}
    assert_figure(figs, "lr_sweep", (9.5, 4.0), out / "report_files")
    assert "best learning rate: 0.005" in html and "log axis" in figs["lr_sweep"][3]


def test_per_seed_values_follow_the_summary_report_mode():
    from nlp_cv_tricks.report.ablation_figures import learning_rate_of, per_seed_values

    runs = [{"variant": "baseline", "seed": 1, "metric": 0.9, "last_metric": 0.8},
            {"variant": "baseline", "seed": 2, "metric": 0.7, "last_metric": 0.6}]
    assert per_seed_values([{"name": "baseline", "values": [0.8, 0.6]}], runs) == {"baseline": {1: 0.8, 2: 0.6}}
    assert per_seed_values([{"name": "baseline", "values": [0.7, 0.9]}], runs) == {"baseline": {1: 0.9, 2: 0.7}}
    assert learning_rate_of("train.learning_rate=2.5e-05") == 2.5e-05 and learning_rate_of("tricks=+fgm") is None


# ---- a hardcases mine directory (real merge of fold results, no training) ------------------------------------

@pytest.fixture()
def mine_dir(tiny_bert, tmp_path):
    from nlp_cv_tricks.hardcases.mine import make_folds, merge_folds
    from nlp_cv_tricks.hardcases._common import atomic_save_npz

    n, flip = 60, set(range(2, 60, 10))
    clean = toy_sentences(n, 3)
    noisy = [(1 - y if i in flip else y, t) for i, (y, t) in enumerate(clean)]
    data = {"train": write_kim(tmp_path / "train.txt", noisy), "dev": write_kim(tmp_path / "dev.txt", clean[:8])}
    recipe = tiny_recipe(tiny_bert, data, tmp_path / "run")
    labels = np.array([y for y, _ in noisy])
    folds = make_folds(labels, 3, 0)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "folds.json").write_text(json.dumps({"k": 3, "seed": 0, "fold": folds.tolist(), "labels": labels.tolist(),
                                                "label_names": ["negative", "positive"]}))
    rng = np.random.default_rng(0)
    truth = np.array([y for y, _ in clean])
    p_true = np.clip(0.9 + 0.05 * rng.standard_normal(n), 0.5, 0.99)  # the held-out models know the truth
    probs = np.where(truth[:, None] == np.arange(2)[None], p_true[:, None], 1 - p_true[:, None])
    for k in range(3):
        held, fit = np.flatnonzero(folds == k), np.flatnonzero(folds != k)
        conf = np.where(labels[fit] == truth[fit], 0.85, 0.2) + 0.02 * rng.standard_normal(len(fit))
        atomic_save_npz(out / "folds" / f"fold_{k}" / "result.npz", held=held, probs=probs[held], fit_idx=fit,
                        dyn_confidence=conf, dyn_variability=rng.uniform(0.01, 0.2, len(fit)),
                        dyn_correctness=(conf > 0.5).astype(float), dyn_aum=conf - 0.5,
                        dyn_epochs_seen=np.full(len(fit), 3))
    merge_folds(recipe, out)
    (tmp_path / "truth.txt").write_text("".join(["negative\n", "positive\n"][y] for y in truth))
    return out, tmp_path / "truth.txt", flip


def test_mining_report_cartography_histogram_budget_curve(mine_dir):
    out, truth, flip = mine_dir
    assert detect_kind(out) == "mining"
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert set(figures(html)) == {"cartography", "error_histogram"}
    assert "--true-labels FILE" in html  # no truth: the page says how to get the budget curve
    assert main(["report", str(out), "--true-labels", str(truth)]) == 0
    html = (out / "report.html").read_text()
    figs = figures(html)
    assert set(figs) == {"cartography", "error_histogram", "budget_curve"}
    for name, inches in (("cartography", (8.0, 6.0)), ("error_histogram", (8.0, 3.8)), ("budget_curve", (8.0, 4.6))):
        assert_figure(figs, name, inches, out / "report_files")
    assert f"({len(flip)} of 60 given labels are wrong)" in figs["budget_curve"][3]
    found = table(html, "Found at budget")
    assert found[1][:3] == ["10%", "6", "6"]  # the six flipped labels are the six most likely errors
    top = table(html, "Top 20 by error rank")
    assert {int(r[1]) for r in top[:6]} == flip


def test_true_labels_errors_name_the_file_and_entry(mine_dir, tmp_path, capsys):
    out, truth, _ = mine_dir
    bad = tmp_path / "bad.txt"
    bad.write_text("negative\n" * 59 + "neutral\n")
    assert main(["report", str(out), "--true-labels", str(bad)]) == 2
    assert "bad.txt: entry 60: 'neutral' is neither a label name (negative, positive)" in capsys.readouterr().err
    bad.write_text("0\n1\n")
    assert main(["report", str(out), "--true-labels", str(bad)]) == 2
    assert "2 labels for the 60 mined training rows" in capsys.readouterr().err


# ---- several runs overlaid; bad paths ----------------------------------------------------------------------

def test_several_runs_overlaid(run_dir, tmp_path, capsys):
    import shutil

    other = tmp_path / "b" / "run"
    shutil.copytree(run_dir, other)
    assert main(["report", str(run_dir), str(other)]) == 2
    assert "--out DIR" in capsys.readouterr().err
    assert main(["report", str(run_dir), str(other), "--out", str(tmp_path / "cmp")]) == 0
    html = (tmp_path / "cmp" / "report.html").read_text()
    figs = figures(html)
    assert set(figs) == {"overlay"}
    assert_figure(figs, "overlay", (11.5, 4.2), tmp_path / "cmp" / "report_files")
    rows = table(html, "Runs")
    assert len(rows) == 2 and rows[0][0] != rows[1][0] and rows[1][0].endswith("b/run")


def test_bad_paths_give_clear_errors(run_dir, tmp_path, capsys):
    def err(*argv):
        assert main(["report", *map(str, argv)]) == 2
        return capsys.readouterr().err

    assert "no such directory; give a run directory (with history.jsonl)" in err(tmp_path / "nope")
    assert "is a file; give the directory that holds it" in err(run_dir / "metrics.json")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    assert "not a directory the report can read (it holds notes.txt)" in err(tmp_path / "stuff")
    abl, _ = _ablation_dir(tmp_path)
    assert "only run directories can be overlaid (this one holds: ablation)" in err(run_dir, abl, "--out",
                                                                                      tmp_path / "o")
    assert "--true-labels is for a `hardcases mine` directory" in err(run_dir, "--true-labels", run_dir / "x.txt")
    (abl / "ablation.json").write_text("{not json")
    assert "ablation.json: not valid JSON (line 1" in err(abl)
    (abl / "ablation.json").write_text('{"summaries": 3}')
    assert "no 'summaries' list" in err(abl)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.jsonl").write_text('{"step": 1, "train/loss": 0.5}\n{"step": "x"}\n')
    assert "history.jsonl:2: expected an integer 'step'" in err(tmp_path / "run")
    f = tmp_path / "file"
    f.write_text("x")
    assert "--out" in err(run_dir, "--out", f) and f.read_text() == "x"
    assert "--max-points must be at least 10" in err(run_dir, "--max-points", 3)


# ---- the doctor's verdict on the page; long histories ---------------------------------------------------------

def test_not_converged_run_report_shows_the_verdict_and_the_lr_sweep(tmp_path):
    import yaml

    from test_diagnostics import _still_rising

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _still_rising(
        [0.839, 0.873, 0.884], [0.37, 0.31, 0.29])))
    (run / "recipe.yaml").write_text(yaml.safe_dump({"train": {"epochs": 1, "learning_rate": 5e-5}}))
    write_report(run)
    html = (run / "report.html").read_text()
    assert "Fit regime: not_converged" in html and "still improving at the end: train longer" in html
    remedies = table(html, "Remedies, in order")
    assert [r[0] for r in remedies[:2]] == ["train.epochs=2", "train.learning_rate=0.0001"]
    assert "nlp-cv-tricks lr-sweep RECIPE --start 0.0002" in remedies[1][2]
    assert "metrics.json is missing" in html  # no summary of a finished run: said, not failed


def test_regime_segment_shades_the_evidence():
    from nlp_cv_tricks.report.doctor_figures import regime_segment

    h = [{"step": s, "train/loss": 1.0} for s in range(10, 101, 10)] + [
        {"step": s, "eval/accuracy": 0.5} for s in (30, 60, 90)]
    ev = {"primary_metric": "eval/accuracy"}
    assert regime_segment(h, {"regime": "not_converged", "evidence": ev}) == (60, 90)
    assert regime_segment(h, {"regime": "overfitting", "onset_step": 30, "evidence": ev}) == (30, 100)
    assert regime_segment(h, {"regime": "not_converging", "onset_step": 10, "evidence": ev}) == (10, 100)
    assert regime_segment(h, {"regime": "healthy", "onset_step": None, "evidence": ev}) is None


def test_downsample_keeps_the_envelope_of_a_long_history():
    rng = np.random.default_rng(0)
    x = np.arange(1, 100_001)
    y = np.exp(-x / 30_000) + 0.05 * rng.standard_normal(len(x))
    y[54_321] = 9.0  # a spike
    y[77] = np.nan  # a non-finite value is left out
    xs, ys = downsample(x, y, 2000)
    assert len(xs) <= 2002 and np.all(np.diff(xs) > 0)
    assert 54_322 in xs and ys.max() == 9.0 and np.nanmin(y) == ys.min()
    assert xs[0] == 1 and xs[-1] == 100_000 and np.isfinite(ys).all()
    short = np.arange(10.0)
    assert np.array_equal(downsample(short, short)[1], short)


def test_long_history_renders_downsampled(tmp_path):
    run = tmp_path / "long"
    run.mkdir()
    rows = []
    for s in range(1, 20_001):
        rows.append({"step": s, "epoch": s / 5000, "train/loss": 1 / (1 + s / 2000), "train/lr": 1e-4})
        if s % 2000 == 0:
            rows.append({"step": s, "epoch": s / 5000, "eval/loss": 0.5, "eval/accuracy": 0.8 + s / 1e6})
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = write_report(run, max_points=500)
    assert res["kind"] == "run" and set(figures((run / "report.html").read_text())) == {"curves", "doctor"}


def test_page_writer_escapes_and_refuses_repeated_names(tmp_path):
    from nlp_cv_tricks.report.page import Note, Table

    png = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (3).to_bytes(4, "big") + (2).to_bytes(4, "big")
           + b"\x08\x02\x00\x00\x00")
    fig = Figure("a", "<b>t</b>", "caption & more " * 5, png)
    page = Page("T <x>", "src", "test", [Section("S", [fig, Table("tab", ["h"], [("<i>",)]), Note("n & m", "warn")])])
    res = write_page(page, tmp_path)
    html = Path(res["html"]).read_text()
    assert "&lt;b&gt;t&lt;/b&gt;" in html and "<td>&lt;i&gt;</td>" in html and 'class="note warn">n &amp; m' in html
    assert 'width="3" height="2"' in html
    page.sections[0].items.append(fig)
    with pytest.raises(ValueError, match="figure names repeat"):
        write_page(page, tmp_path)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a")
    assert isinstance(ReportError("x"), ValueError)


def test_run_without_a_best_model_reports_the_final_one(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.move(str(copy / "best"), str(copy / "final"))  # output.save_best=false keeps the final model only
    write_report(copy)
    html = (copy / "report.html").read_text()
    assert "no best/ model was kept (output.save_best=false)" in html
    assert {"confusion_matrix", "per_class"} <= set(figures(html))
    assert f"final model, step {json.loads((copy / 'final' / 'eval_metrics.json').read_text())['step']}" in html


def test_mining_folds_write_no_run_report(tiny_bert, tmp_path):
    from nlp_cv_tricks.hardcases import mine
    from nlp_cv_tricks.models.text_baselines import register_architectures

    register_architectures()
    data = {"train": write_kim(tmp_path / "train.txt", toy_sentences(48, 1)),
            "dev": write_kim(tmp_path / "dev.txt", toy_sentences(8, 2))}
    recipe = tiny_recipe(tiny_bert, data, tmp_path / "run", "output.report=true", "model.name=fasttext",
                         "model.kwargs={embedding_dim: 8, word_ngrams: 1, bucket: 100, hidden_size: 0, sparse: false, "
                         "tokenizer: {level: word, split: whitespace_split, max_length: 16}}", "train.optimizer=adam",
                         "train.epochs=1", "train.batch_size=16", "train.eval_each_epoch=false")
    assert recipe.output.report
    mine(recipe, tmp_path / "mine", folds=2, fold=0)
    run = tmp_path / "mine" / "folds" / "fold_0" / "run"
    assert (run / "history.jsonl").is_file() and not (run / "report.html").exists()
    assert recipe.output.report  # the caller's recipe is left as it was


def test_doctor_section_names_an_imbalance_finding(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    recs = []
    for e in range(1, 9):  # the minority class gets worse after epoch 3 while the dev loss keeps falling
        recs.append({"step": 10 * e - 5, "epoch": e - 0.5, "train/loss": 0.5 * 0.8 ** e})
        recs.append({"step": 10 * e, "epoch": float(e), "eval/loss": 0.5 - 0.02 * e, "eval/accuracy": 0.92,
                     "eval/f1_macro": 0.80 - 0.04 * max(0, e - 3), "eval/recall/spam": 0.7 - 0.08 * max(0, e - 3),
                     "eval/recall/ham": 0.99, "eval/support/spam": 50, "eval/support/ham": 950})
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    write_report(run)
    html = (run / "report.html").read_text()
    assert "imbalance: the dev loss improved while these fell: step 40: eval/f1_macro 0.8000 → 0.7600" in html
    assert "tricks+=focal_loss" in html


def test_ablation_runs_write_no_run_report(tiny_bert, toy_data, tmp_path):
    from conftest import ROOT
    from nlp_cv_tricks.ablate import Variant, run_one

    ovr = [f"data.train_file={toy_data['train']}", f"data.dev_file={toy_data['dev']}", "data.format=kim2014",
           "data.label_names=[negative,positive]", "data.max_length=16", f"model.name={tiny_bert}", "train.epochs=1",
           "train.batch_size=32", "tricks=[]", "callbacks=[]", "output.report_to=none", "output.report=true"]
    res = run_one(ROOT / "recipes" / "quickstart.yaml", Variant("baseline"), 0, tmp_path / "r", ovr, in_process=True)
    assert res.error is None and (tmp_path / "r" / "train" / "history.jsonl").is_file()
    assert not (tmp_path / "r" / "train" / "report.html").exists()  # the ablation's page shows all runs
