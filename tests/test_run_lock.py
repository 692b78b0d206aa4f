"""A run directory is locked while it trains (a second training, resume or overwrite is refused naming the holder;
eval/predict/report still read it); overwrite removes only a run's outputs; a failed write is one sentence that
says what is intact and how to resume; Ctrl-C is one line with the resume command."""

import errno
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nlp_cv_tricks.cli import main
from nlp_cv_tricks.engine.run_lock import LOCK_NAME, RunLock, RunLockedError, live_holder

from conftest import ROOT, full_history_open, sigint_default_in_child

PY = sys.executable
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "NLP_CV_TRICKS_PROGRESS": "off"}


def _common(tiny_bert, toy_data, out, *extra):
    return ["train", str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}",
            f"data.dev_file={toy_data['dev']}", f"model.name={tiny_bert}", "train.batch_size=8",
            "train.learning_rate=1e-3", "data.max_length=16", "output.report_to=none", "train.progress_bar=false",
            f"output.dir={out}", "train.eval_steps=null", "data.label_names=[negative,positive]",
            "output.report=false", *extra]


def _snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that holds the lock of ``folder`` (as a running training does) until killed."""
    code = ("import sys, time; from nlp_cv_tricks.engine.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([PY, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture()
def run(tiny_bert, toy_data, tmp_path):
    """A finished run with checkpoints at steps 1 and 2 and best/ from step 2."""
    out = tmp_path / "run"
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=2", "train.save_steps=1")) == 0
    return out


# ---- the lock ------------------------------------------------------------------------------------------------

def test_a_live_run_is_neither_trained_again_resumed_nor_overwritten(tiny_bert, toy_data, run, capsys, caplog):
    holder = _holder(run)
    try:
        before = _snapshot(run)
        capsys.readouterr()
        for extra in ([], ["output.overwrite=true"], ["train.resume_from=latest", "train.max_steps=3"]):
            assert main(_common(tiny_bert, toy_data, run, "train.max_steps=2", *extra)) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1, err
            assert f"PID {holder.pid} on host {socket.gethostname()}" in err and "since " in err, err
            assert "in use" in err and "nothing was changed" in err
            assert _snapshot(run) == before  # nothing deleted or written
        # readers still read it, with a note that a run is writing there
        caplog.clear()
        assert main(["eval", str(run), "--data", str(toy_data["dev"])]) == 0
        assert main(["predict", str(run / "best"), "--data", str(toy_data["dev"]),
                     "--out", str(run.parent / "p.jsonl")]) == 0
        assert main(["report", str(run), "--out", str(run.parent / "report")]) == 0
        notes = [r.getMessage() for r in caplog.records if "still going" in r.getMessage()]
        assert len(notes) == 3 and all(f"PID {holder.pid}" in n for n in notes)
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock file stays, but no live process holds it; the next run names it and goes on
    assert (run / LOCK_NAME).is_file() and live_holder(run) is None
    caplog.clear()
    assert main(_common(tiny_bert, toy_data, run, "train.resume_from=latest", "train.max_steps=3")) == 0
    stale = [r.getMessage() for r in caplog.records if "stale lock" in r.getMessage()]
    assert stale and f"PID {holder.pid}" in stale[0] and "no longer running" in stale[0]
    assert not (run / LOCK_NAME).exists()  # released at the end of the run


def test_lock_is_held_during_fit_and_released_on_failure(tiny_bert, toy_data, tmp_path, monkeypatch):
    from nlp_cv_tricks.engine import trainer as trainer_mod

    out = tmp_path / "run"
    seen = []

    def boom(self, loop, batch, _orig=trainer_mod.Trainer._micro_batch):
        seen.append(live_holder(out))
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer_mod.Trainer, "_micro_batch", boom)
    with pytest.raises(RuntimeError, match="boom"):
        from conftest import tiny_recipe
        from nlp_cv_tricks.runner import build_trainer

        build_trainer(tiny_recipe(tiny_bert, toy_data, out, "train.max_steps=1")).fit()
    assert seen and seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname()
    assert not (out / LOCK_NAME).exists()
    # a run that fails before writing anything leaves no folder behind
    with pytest.raises(FileNotFoundError):
        build_trainer(tiny_recipe(tiny_bert, toy_data, tmp_path / "new", "train.resume_from=latest")).fit()
    assert not (tmp_path / "new").exists()


def test_lock_file_and_holder(tmp_path):
    d = tmp_path / "d"
    with RunLock(d, "ablation"):
        info = json.loads((d / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid() and info["what"] == "ablation" and live_holder(d)["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=f"PID {os.getpid()}"):
            RunLock(d).acquire(retries=0)
    assert not d.exists()  # created by the lock, empty: removed again
    assert live_holder(d) is None


def test_ablate_lr_sweep_and_mining_folders_are_locked(tiny_bert, toy_data, tmp_path):
    from conftest import tiny_recipe
    from nlp_cv_tricks.ablate import ablate, lr_sweep
    from nlp_cv_tricks.config import save_recipe
    from nlp_cv_tricks.hardcases.mine import mine

    recipe = tiny_recipe(tiny_bert, toy_data, tmp_path / "r", "train.max_steps=1")
    save_recipe(recipe, tmp_path / "r.yaml")
    out = tmp_path / "grid"
    holder = _holder(out)
    try:
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            ablate(tmp_path / "r.yaml", ["tricks=+fgm"], seeds=1, out_dir=out, in_process=True, verbose=False)
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            lr_sweep(tmp_path / "r.yaml", out_dir=out, in_process=True, verbose=False)
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            mine(recipe, out, folds=2)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()


# ---- overwrite removes only what a run wrote ------------------------------------------------------------------

def test_overwrite_refuses_a_hand_made_recipe_with_metrics(tiny_bert, toy_data, tmp_path, capsys):
    """A user's own folder with a 7-section recipe.yaml (as every shipped recipe has) and a metrics.json is not
    a run of an earlier version: refused, nothing deleted."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "recipe.yaml").write_text((ROOT / "recipes/quickstart.yaml").read_text())
    (proj / "metrics.json").write_text('{"accuracy": 0.9}\n')
    before = _snapshot(proj)
    assert main(_common(tiny_bert, toy_data, proj, "train.max_steps=1", "output.overwrite=true")) == 2
    err = capsys.readouterr().err
    assert "holds no run of this package" in err and "nothing was removed" in err
    assert _snapshot(proj) == before


# ---- a failed write is one sentence -----------------------------------------------------------------------------

def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err and lines, err
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1, err
    return next(ln for ln in lines if ln.startswith("error:"))


def test_checkpoint_beyond_the_file_size_limit(tiny_bert, toy_data, run):
    """``ulimit -f``: the checkpoint's safetensors file is too large (SafetensorError, not an OSError); the
    message says what, where, that best/ and the previous checkpoint are intact, and the resume command."""
    size = (run / "checkpoints" / "step_2" / "model.safetensors").stat().st_size
    limit = size // 2
    assert all(p.stat().st_size < limit for p in run.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml",
                                                                                             ".jsonl"))
    before = {k: v for k, v in _snapshot(run).items() if k.startswith(("best/", "checkpoints/step_2/"))}
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1])); "
            "from nlp_cv_tricks.cli import main; sys.exit(main(sys.argv[1:]))")
    args = _common(tiny_bert, toy_data, run, "train.save_steps=1", "train.resume_from=latest", "train.max_steps=3")
    proc = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert f"could not write the checkpoint {run / 'checkpoints' / 'step_3'}" in line, line
    assert "larger than this system allows" in line
    assert f"the previous best/ (step 2) and the checkpoint {run / 'checkpoints' / 'step_2'} are intact" in line
    assert f"train.resume_from=latest output.dir={run}" in line and "resume with: nlp-cv-tricks train" in line
    assert not (run / "checkpoints" / "step_3").exists()  # the half-written one is gone
    after = _snapshot(run)
    assert all(after[k] == v for k, v in before.items())
    # the resume command of the message works once there is room
    cmd = shlex.split(line.split("resume with: ", 1)[1])
    assert cmd[:2] == ["nlp-cv-tricks", "train"]
    assert main(cmd[1:]) == 0
    assert (run / "checkpoints" / "step_3" / "trainer_state.json").is_file()


def _fail_writes(monkeypatch, name: str, code: int = errno.ENOSPC):
    """Writes through the package's atomic writer to a file called ``name`` fail with ``code``."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*a, **kw):
        if str(kw.get("prefix", "")).startswith(f".{name}."):
            raise OSError(code, os.strerror(code))
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_best_model_history_and_metrics_write_failures(tiny_bert, toy_data, run, monkeypatch, capsys):
    from safetensors import SafetensorError

    from nlp_cv_tricks.engine import trainer as trainer_mod

    resume = _common(tiny_bert, toy_data, run, "train.resume_from=latest", "train.max_steps=3",
                     "train.save_steps=1")
    best_before = _snapshot(run / "best")
    # best/: the new weights do not fit (every evaluation is a new best here)
    monkeypatch.setattr(trainer_mod.Trainer, "evaluate",
                        lambda self, *a, **k: {"eval/accuracy": 0.9 + self.global_step / 100, "eval/loss": 0.1})
    real_save = trainer_mod.Trainer.save_model

    def save_model(self, directory, metrics=None):
        if Path(directory).name == "best":
            import transformers

            def full(*a, **k):
                raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                                      "\"No space left on device\" }) (os error 28)")

            monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", full)
        return real_save(self, directory, metrics)

    monkeypatch.setattr(trainer_mod.Trainer, "save_model", save_model)
    capsys.readouterr()
    assert main(resume) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"could not write the model (step 3) {run / 'best'}: the disk is full" in line, line
    assert "the previous best/ (step 2)" in line and "intact" in line and "train.resume_from=latest" in line
    assert _snapshot(run / "best") == best_before and not (run / "best.tmp").exists()
    monkeypatch.undo()

    # history.jsonl: the appended line does not fit; no cut-off line is left
    hist_before = (run / "history.jsonl").read_bytes()
    import nlp_cv_tricks.utils.io as io_mod  # where history lines are appended (append_json_line)

    monkeypatch.setattr(io_mod, "open", full_history_open(), raising=False)
    assert main(resume + ["train.logging_steps=1", "train.max_steps=5"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"could not write the training history {run / 'history.jsonl'}" in line, line
    assert "larger than this system allows" in line and "intact" in line and "train.resume_from=latest" in line
    assert (run / "history.jsonl").read_bytes().startswith(hist_before[:10])
    assert all(json.loads(ln) for ln in (run / "history.jsonl").read_text().splitlines())
    monkeypatch.undo()

    # metrics.json at the end of the run
    _fail_writes(monkeypatch, "metrics.json")
    assert main(resume) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"could not write {run / 'metrics.json'}: the disk is full" in line, line
    assert f"the previous best/ (step 2) and the checkpoint {run / 'checkpoints' / 'step_3'} are intact" in line


def test_eval_predict_and_report_write_failures(tiny_bert, toy_data, run, tmp_path, monkeypatch,
                                                          capsys):
    dev = str(toy_data["dev"])
    (tmp_path / "m.json").write_text("old\n")
    for name, cmd in [("m.json", ["eval", str(run), "--data", dev, "--out", str(tmp_path / "m.json"),
                                  "--overwrite"]),
                      ("p.jsonl", ["predict", str(run), "--data", dev, "--out", str(tmp_path / "p.jsonl")]),
                      ("report.html", ["report", str(run), "--out", str(tmp_path / "rep")])]:
        _fail_writes(monkeypatch, name, errno.EACCES if name == "p.jsonl" else errno.ENOSPC)
        assert main(cmd) == 2, name
        line = _one_line(capsys.readouterr().err)
        assert f"could not write {tmp_path / name if name != 'report.html' else tmp_path / 'rep' / name}" in line
        assert "what was there before is intact" in line and "run the command again" in line
        monkeypatch.undo()
    assert (tmp_path / "m.json").read_text() == "old\n" and not (tmp_path / "p.jsonl").exists()


# ---- Ctrl-C ------------------------------------------------------------------------------------------------

def test_ctrl_c_during_training_is_one_line_with_the_resume_command(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    args = _common(tiny_bert, toy_data, out, "train.save_steps=5", "train.max_steps=100000", "train.logging_steps=5")
    proc = subprocess.Popen([PY, "-c", "import sys; from nlp_cv_tricks.cli import main; sys.exit(main(sys.argv[1:]))",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT,
                            preexec_fn=sigint_default_in_child)
    try:
        deadline = time.time() + 300
        # the first checkpoint (step 5): older ones are pruned (save_total_limit), so any step_N counts
        while not any((out / "checkpoints").glob("step_*/trainer_state.json")):
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"no checkpoint within 300 s (exit code {proc.poll()}): "
                                     f"{proc.communicate(timeout=30)[1][-2000:]}")
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(lines) == 1, err
    line = lines[0]
    step = int(line.split("at step ")[1].split()[0])
    assert step >= 5 and f"last checkpoint {out / 'checkpoints' / f'step_{step}'} (saved now)" in line, line
    assert (out / "checkpoints" / f"step_{step}" / "trainer_state.json").is_file()
    assert not (out / LOCK_NAME).exists()
    cmd = shlex.split(line.split("resume with: ", 1)[1])
    assert cmd[-2:] == ["train.resume_from=latest", f"output.dir={out}"] and "train.max_steps=100000" in cmd
    assert main(cmd[1:] + [f"train.max_steps={step + 2}"]) == 0  # the printed command resumes


@pytest.mark.parametrize("presses", [1, 2, 0])
def test_second_ctrl_c_stops_at_once(tiny_bert, toy_data, tmp_path, monkeypatch, capsys, presses, sigint_default):
    """Ctrl-C at step 3 (checkpoints every 2 steps): once, a checkpoint is saved at step 3; twice, the run stops
    at once and the checkpoint of step 2 is the one to resume from. (0: once, without train.save_steps: it stops
    at once, and says there is nothing to resume.)"""
    from nlp_cv_tricks.engine import trainer as trainer_mod

    real = trainer_mod.Trainer._after_optimizer_step

    def step(self, loop):
        if self.global_step == 2:  # the third optimizer step is being counted
            for _ in range(presses or 1):
                signal.raise_signal(signal.SIGINT)
        return real(self, loop)

    monkeypatch.setattr(trainer_mod.Trainer, "_after_optimizer_step", step)
    out = tmp_path / "run"
    save = [] if presses == 0 else ["train.save_steps=2"]
    assert main(_common(tiny_bert, toy_data, out, *save, "train.max_steps=10")) == 130
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(line) == 1 and "Traceback" not in err, err
    if presses == 0:
        assert "at step 2 of 10; no checkpoint (set train.save_steps=N" in line[0], line
        cmd = shlex.split(line[0].split("start again with: ", 1)[1])
        assert cmd[:2] == ["nlp-cv-tricks", "train"] and cmd[-2:] == [f"output.dir={out}", "output.overwrite=true"]
    elif presses == 1:
        assert f"at step 3 of 10; last checkpoint {out / 'checkpoints' / 'step_3'} (saved now)" in line[0], line
    else:
        assert f"at step 2 of 10; last checkpoint {out / 'checkpoints' / 'step_2'};" in line[0], line
        assert not (out / "checkpoints" / "step_3").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
