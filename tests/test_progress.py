"""Progress output a person can read in a log file: plain lines instead of carriage-return bar updates when the
output is not a terminal; ``--quiet`` / ``--progress`` / ``NLP_CV_TRICKS_PROGRESS`` choose the form."""

import io
import os
import re
import subprocess
import sys

import pytest

from nlp_cv_tricks.utils.progress import ENV_VAR, Progress, progress, resolve_mode

from conftest import ROOT


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def env_mode(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    return lambda mode: monkeypatch.setenv(ENV_VAR, mode)


def test_auto_is_a_bar_on_a_terminal_and_lines_elsewhere(env_mode):
    assert resolve_mode(_Tty()) == "bar"
    assert resolve_mode(io.StringIO()) == "log"
    env_mode("off")
    assert resolve_mode(_Tty()) == "off"
    env_mode("LOG")
    assert resolve_mode(_Tty()) == "log"
    env_mode("verbose")
    with pytest.raises(ValueError, match=r"NLP_CV_TRICKS_PROGRESS='verbose': choose one of auto, bar, log, off"):
        resolve_mode()


def test_log_mode_writes_a_line_every_ten_percent_and_a_last_one(env_mode):
    out = io.StringIO()
    bar = Progress(total=50, desc="train", unit="step", stream=out, every_seconds=3600)
    for i in range(50):
        bar.update(1)
        if i == 20:
            bar.set_postfix(loss="0.1234")
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 10  # 5, 10, ..., 50 steps; the end needs no extra line
    assert re.fullmatch(r"\d\d:\d\d:\d\d train: 5/50 steps \(10%\), \d+s elapsed, ~\d+s left", lines[0])
    assert "loss=0.1234" in lines[4] and lines[-1].endswith("- done")
    # a loop that stops early says so, once
    out = io.StringIO()
    with Progress(total=100, desc="x", stream=out, every_seconds=3600) as bar:
        bar.update(3)
    assert out.getvalue().splitlines()[-1].split(": ", 1)[1].startswith("3/100 its (3%)")
    assert out.getvalue().count("\n") == 1 and "stopped" in out.getvalue()


def test_log_mode_also_writes_after_every_seconds(env_mode, monkeypatch):
    clock = iter(range(0, 10_000, 7))  # each call to monotonic() advances 7 s
    monkeypatch.setattr("nlp_cv_tricks.utils.progress.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = Progress(total=10_000, desc="predict", unit="batch", stream=out, every_seconds=20)
    for _ in range(12):
        bar.update(1)
    assert 3 <= len(out.getvalue().splitlines()) <= 5  # not on every update, not only at 10%


def test_bar_and_off(env_mode):
    tty = _Tty()
    for _ in progress(range(20), desc="eval", stream=tty, mode="bar"):
        pass
    assert "\r" in tty.getvalue()  # tqdm's in-place redraws
    silent = io.StringIO()
    env_mode("off")
    for _ in progress(range(20), desc="eval", stream=silent):
        pass
    assert silent.getvalue() == ""
    assert Progress(total=3, stream=silent, enabled=False, mode="bar").mode == "off"  # other processes


def test_cli_reads_quiet_and_progress_anywhere(env_mode):
    from nlp_cv_tricks.cli import _progress_options

    assert _progress_options(["train", "r.yaml", "--progress", "log", "a=1"]) == ["train", "r.yaml", "a=1"]
    assert os.environ[ENV_VAR] == "log"
    assert _progress_options(["--quiet", "eval", "run"]) == ["eval", "run"]
    assert os.environ[ENV_VAR] == "off"
    assert _progress_options(["eval", "--progress=bar", "run"]) == ["eval", "run"]
    assert os.environ[ENV_VAR] == "bar"
    with pytest.raises(SystemExit, match="--progress 'loud': choose one of auto, bar, log, off"):
        _progress_options(["eval", "--progress", "loud"])


def test_a_three_epoch_run_logged_to_a_file_has_plain_lines_only(tiny_bert, toy_data, tmp_path):
    """The done-when of the issue: a 3-epoch run whose output goes to a file has no carriage-return fragments
    and does have periodic progress lines; eval and predict on the saved run report too."""
    log = tmp_path / "train.log"
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    run = tmp_path / "run"
    base = [sys.executable, "-m", "nlp_cv_tricks.cli"]
    with log.open("w") as f:
        rc = subprocess.run(base + [
            "train", str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}",
            f"data.dev_file={toy_data['dev']}", f"model.name={tiny_bert}", "train.epochs=3", "train.batch_size=8",
            "train.eval_steps=null", "data.max_length=16", "output.report_to=none", f"output.dir={run}"],
            stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=600).returncode
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "\r" not in text  # neither ours nor the bars of datasets/transformers
    steps = [int(m.group(1)) for m in re.finditer(r"train: (\d+)/72 steps \(\d+%\)", text)]
    assert len(steps) >= 9 and steps == sorted(steps) and steps[-1] == 72  # 192 rows / 8 = 24 steps x 3 epochs
    with log.open("w") as f:
        rc = subprocess.run(base + ["eval", str(run), "--data", str(toy_data["dev"]), "--batch-size", "8"],
                            stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=600).returncode
    text = log.read_text()
    assert rc == 0 and "\r" not in text
    assert re.search(r"predict: 8/8 batches \(100%\)", text)
    with log.open("w") as f:  # --quiet: no progress lines at all
        rc = subprocess.run(base + ["predict", str(run), "--data", str(toy_data["dev"]), "--out",
                                    str(tmp_path / "p.jsonl"), "--quiet"],
                            stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=600).returncode
    assert rc == 0 and "predict:" not in log.read_text() and "wrote 64 predictions" in log.read_text()


def test_ablation_and_fold_mining_report_progress(monkeypatch, capsys, tmp_path, tiny_bert, toy_data, env_mode):
    """Both loops over runs/folds write a progress line per unit of work when the output is not a terminal (the
    training inside each is stubbed: only the reporting is under test here)."""
    import importlib

    from nlp_cv_tricks import ablate as ab

    mn = importlib.import_module("nlp_cv_tricks.hardcases.mine")  # the module (the package exports mine())

    from conftest import tiny_recipe

    env_mode("log")

    def fake_run(recipe, variant, seed, run_dir, overrides, **kw):
        return ab.RunResult(variant.name, seed, 0.5, 0.5, "eval/accuracy", True, 0.1, 0.1, None, None, str(run_dir),
                            list(overrides))

    monkeypatch.setattr("nlp_cv_tricks.experiments.grid.run_one", fake_run)  # what run_grid calls
    ab.ablate(str(ROOT / "recipes/quickstart.yaml"), ["tricks=+fgm"], seeds=[1, 2], out_dir=tmp_path / "abl")
    err = capsys.readouterr().err
    assert [int(m) for m in re.findall(r"ablate: (\d)/4 runs", err)] == [1, 2, 3, 4] and "\r" not in err

    done = []
    monkeypatch.setattr(mn, "run_fold", lambda recipe, out, f, fold_of, keep: done.append(f))
    monkeypatch.setattr(mn, "merge_folds", lambda *a, **kw: None)
    mn.mine(tiny_recipe(tiny_bert, toy_data, tmp_path / "run"), tmp_path / "mine", folds=3)
    err = capsys.readouterr().err
    assert done == [0, 1, 2]
    assert [int(m) for m in re.findall(r"hardcases mine: (\d)/3 folds", err)] == [1, 2, 3] and "\r" not in err
