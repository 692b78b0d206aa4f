"""Grids on Ray: ``--executor ray`` runs each run of ``ablate`` / ``hardcases mine`` as a Ray task on a local Ray
cluster (started by a fixture, stopped after the module) and gives the same per-seed results as the local executor;
a failing run is retried, reported and left out while the grid completes; a grid interrupted half-way finishes only
its missing runs when run again; bad settings are refused before anything is submitted."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, sigint_default_in_child
from nlp_cv_tricks import ablate as ab
from nlp_cv_tricks.utils.executors import ExecutorError, Job, RayExecutor, make_executor
from nlp_cv_tricks.utils.optional import MissingExtraError

torch.set_num_threads(1)


def _cnn_recipe(path: Path, toy_data: dict, epochs: int = 3) -> Path:
    """A tiny TextCNN recipe on the toy data (a few seconds a run)."""
    r = {"name": "cnn", "task": "text-classification",
         "data": {"train_file": str(toy_data["train"]), "dev_file": str(toy_data["dev"]), "format": "kim2014",
                  "label_names": ["negative", "positive"], "max_length": 16},
         "model": {"name": "textcnn", "kwargs": {"embedding_dim": 16, "num_filters": 8, "level": "word"}},
         "train": {"seed": 0, "epochs": epochs, "batch_size": 16, "eval_batch_size": 64, "warmup_ratio": 0.0,
                   "logging_steps": 8, "optimizer": "adam", "learning_rate": 1e-2},
         "tricks": [], "output": {"report_to": "none", "report": False}}
    path.write_text(yaml.safe_dump(r))
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(argv, capsys) -> tuple[int, str, str]:
    from nlp_cv_tricks.cli import main

    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


# ---- bad input: refused before any run ------------------------------------------------------------------------
def test_without_ray_the_executor_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(MissingExtraError, match=r'--executor ray needs ray.*pip install "nlp-cv-tricks\[ray\]"'):
        make_executor("ray")
    with pytest.raises(ExecutorError, match="--ray-address needs --executor ray"):
        make_executor("local", address="auto")


def test_unreachable_ray_address_fails_within_seconds_naming_it(toy_data, tmp_path, capsys):
    pytest.importorskip("ray")
    recipe = _cnn_recipe(tmp_path / "cnn.yaml", toy_data)
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    rc, _, err = _cli(["ablate", recipe, "--vary", "train.learning_rate=0.1", "--out", tmp_path / "abl",
                       "--executor", "ray", "--ray-address", address], capsys)
    assert rc == 2 and time.perf_counter() - t0 < 30
    assert f"cannot reach a Ray cluster at --ray-address {address}" in err, err
    assert not (tmp_path / "abl").exists()  # nothing started
    with pytest.raises(ExecutorError, match="expected auto, HOST:PORT"):
        make_executor("ray", address="no-port-here")


@pytest.mark.slow
def test_more_gpus_than_the_cluster_has_is_refused_before_submitting(ray_cluster, toy_data, tmp_path, capsys):
    recipe = _cnn_recipe(tmp_path / "cnn.yaml", toy_data)
    rc, _, err = _cli(["ablate", recipe, "--vary", "train.learning_rate=0.1", "--out", tmp_path / "abl",
                       "--executor", "ray", "--gpus-per-run", "1"], capsys)
    assert rc == 2
    assert "--gpus-per-run 1: no node can give a run that many GPUs" in err and "2 CPU(s) and 0 GPU(s)" in err, err
    assert "nothing was submitted" in err and not (tmp_path / "abl").exists()
    rc, _, err = _cli(["hardcases", "mine", recipe, "--out", tmp_path / "mine", "--executor", "ray",
                       "--cpus-per-run", "3"], capsys)
    assert rc == 2 and "--cpus-per-run 3: no node can give a run that many CPUs" in err, err


# ---- the executor itself ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_jobs_retry_report_errors_name_worker_paths_and_use_one_thread(ray_cluster, tmp_path, capsys):
    missing = tmp_path / "not-shared" / "out"
    jobs = [Job("ok", math.sqrt, (4.0,)),
            Job("fails", math.sqrt, (-1.0,)),
            Job("no path", math.sqrt, (1.0,), paths={"the grid's output directory": str(missing)}),
            Job("threads", torch.get_num_threads)]
    seen = []
    ex = RayExecutor(retries=1, fresh_process=False)
    outcomes = ex.run(jobs, seen.append)
    ex.close()
    assert ray_cluster.is_initialized()  # a Ray the caller started is left running
    by = {o.job.key: o for o in outcomes}
    assert len(seen) == 4 and sorted(o.finished for o in seen) == [1, 2, 3, 4]
    assert by["ok"].ok and by["ok"].value == 2.0 and by["ok"].attempts == 1
    assert by["threads"].value == 1  # --cpus-per-run 1: one torch thread per run
    assert by["fails"].error.startswith("ValueError: math domain error") and by["fails"].attempts == 2
    assert f"the grid's output directory {missing} does not exist on worker {socket.gethostname()}" \
        in by["no path"].error and "shared" in by["no path"].error
    assert "fails: attempt 1 of 2 failed" in capsys.readouterr().err


# ---- ablate through Ray -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_ablation_gives_the_local_per_seed_metrics(ray_cluster, toy_data, tmp_path):
    recipe = _cnn_recipe(tmp_path / "cnn.yaml", toy_data)
    vary, seeds = ["train.learning_rate=0.003"], [0, 1]
    local = ab.ablate(recipe, vary, seeds=seeds, out_dir=tmp_path / "local", in_process=True, verbose=False)
    # the default: one fresh worker process per run, as the local per-run subprocess
    remote = ab.ablate(recipe, vary, seeds=seeds, out_dir=tmp_path / "ray", executor="ray", verbose=False)
    key = lambda r: (r.variant, r.seed)  # noqa: E731
    assert sorted(map(key, local.runs)) == sorted(map(key, remote.runs)) and len(local.runs) == 4
    for a, b in zip(sorted(local.runs, key=key), sorted(remote.runs, key=key)):
        assert a.error is None and b.error is None
        assert (a.metric, a.last_metric, a.metric_name) == (b.metric, b.last_metric, b.metric_name), (a, b)
        # the same run directory and record, written by the worker
        rec = json.loads((Path(b.run_dir) / ab.RESULT_FILE).read_text())
        assert rec["metric"] == b.metric and Path(b.run_dir).relative_to(tmp_path / "ray") == \
            Path(a.run_dir).relative_to(tmp_path / "local")
        assert (Path(b.run_dir) / "train" / "final").is_dir()
    assert len({r.metric for r in local.runs}) > 1  # the runs differ: equal metrics are not a constant
    assert [s.values for s in local.summaries] == [s.values for s in remote.summaries]
    assert (tmp_path / "ray" / "ablation.md").is_file()


@pytest.mark.slow
def test_a_failing_run_is_retried_reported_and_the_grid_completes(ray_cluster, toy_data, tmp_path, capsys):
    recipe = _cnn_recipe(tmp_path / "cnn.yaml", toy_data)
    missing = tmp_path / "nowhere" / "dev.txt"
    rc, out, err = _cli(["ablate", recipe, "--vary", f"data.dev_file={missing}", "--seed-list", "0", "--out",
                         tmp_path / "abl", "--executor", "ray", "--in-process", "--retries", "1"], capsys)
    assert rc == 1  # the table is written; a failed run is a non-zero exit, not a crash
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "| baseline | 0." in table and "| 0 (1 failed) |" in table, table
    runs = {r["variant"]: r for r in json.loads((tmp_path / "abl" / "ablation.json").read_text())["runs"]}
    assert runs["baseline"]["error"] is None and runs["baseline"]["metric"] > 0.5
    bad = runs[f"data.dev_file={missing}"]["error"]
    assert "DataNotFoundError" in bad and str(missing) in bad, bad  # the path tried, on that worker
    assert f"(on worker {socket.gethostname()})" in bad and "(after 2 attempts)" in bad
    assert "attempt 1 of 2 failed" in err and "FAILED" in out


@pytest.mark.slow
def test_an_interrupted_grid_runs_only_its_missing_runs_again(ray_cluster, toy_data, tmp_path):
    recipe = _cnn_recipe(tmp_path / "cnn.yaml", toy_data, epochs=40)  # several seconds a run: Ctrl-C lands mid-grid
    out = tmp_path / "abl"
    address = ray_cluster.get_runtime_context().gcs_address
    args = [str(recipe), "--vary", "train.learning_rate=0.003", "--seed-list", "0,1", "--out", str(out),
            "--in-process"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nlp_cv_tricks.cli", "ablate", *args, "--executor", "ray",
                             "--ray-address", address], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default_in_child)
    try:
        deadline = time.time() + 300
        while not list(out.glob(f"runs/*/*/{ab.RESULT_FILE}")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # Ctrl-C after the first finished run
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # the command did not stop on Ctrl-C: end it (the test then fails)
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert "To resume, run the same command again" in stderr and "runs started here finished and are recorded" in stderr
    time.sleep(2)  # a cancelled task writes nothing after this
    done = {p.parent: p.stat().st_mtime_ns for p in out.glob(f"runs/*/*/{ab.RESULT_FILE}")}
    assert 1 <= len(done) < 4, (stdout, stderr)
    again = ab.ablate(recipe, ["train.learning_rate=0.003"], seeds=[0, 1], out_dir=out, in_process=True,
                      executor="ray", verbose=False)
    assert all(r.error is None for r in again.runs) and len(again.runs) == 4
    assert {Path(r.run_dir) for r in again.runs if r.reused} == set(done)  # only the missing runs ran
    assert all(p.joinpath(ab.RESULT_FILE).stat().st_mtime_ns == t for p, t in done.items())


@pytest.mark.slow
def test_ray_lr_sweep_gives_the_local_sweep(ray_cluster, toy_data, tmp_path):
    recipe = _cnn_recipe(tmp_path / "cnn.yaml", toy_data)
    kw = dict(seeds=[0, 1], start=0.02, factor=0.5, patience=1, in_process=True, verbose=False)
    local = ab.lr_sweep(recipe, out_dir=tmp_path / "local", **kw)
    with RayExecutor(fresh_process=False) as ex:  # the seeds of each learning rate at once
        remote = ab.lr_sweep(recipe, out_dir=tmp_path / "ray", executor=ex, **kw)
    assert [(r.variant, r.seed, r.metric) for r in local.runs] == [(r.variant, r.seed, r.metric) for r in remote.runs]
    assert len(local.runs) >= 4 and local.markdown.split("Best learning rate")[1] == \
        remote.markdown.split("Best learning rate")[1]


# ---- hardcases mine through Ray -----------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_hardcases_mining_gives_the_local_out_of_fold_probabilities(ray_cluster, toy_data, tmp_path):
    import numpy as np

    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.hardcases.mine import mine

    recipe = load_recipe(_cnn_recipe(tmp_path / "cnn.yaml", toy_data), ["train.progress_bar=false"])
    local = mine(recipe, tmp_path / "local", folds=2, use_cleanlab=False)
    with RayExecutor(fresh_process=False) as ex:
        remote = mine(recipe, tmp_path / "ray", folds=2, use_cleanlab=False, executor=ex)
    assert np.array_equal(local.folds, remote.folds)
    np.testing.assert_allclose(local.oof_probs, remote.oof_probs, atol=1e-6)
    assert all((tmp_path / "ray" / "folds" / f"fold_{k}" / "result.npz").is_file() for k in range(2))
