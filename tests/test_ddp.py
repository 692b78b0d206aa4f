"""Real multi-process training: `accelerate launch --multi_gpu --num_processes 2` runs DDP over gloo on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from test_trainer import assert_same_weights, fit


def launch_two_processes(recipe_path: Path, port: int) -> None:
    """``accelerate launch --multi_gpu --num_processes 2 scripts/train.py recipe`` (DDP over gloo on CPU)."""
    launcher = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
         str(ROOT / "scripts" / "train.py"), str(recipe_path)],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ddp_two_processes_equal_single_process(tiny_bert, toy_data, tmp_path):
    common = ["train.epochs=1", "output.save_best=false", "train.eval_each_epoch=true"]
    # one process, global batch 8
    fit(tiny_bert, toy_data, tmp_path / "single", "train.batch_size=8", *common)
    # two processes, 4 each: the same global batch
    from conftest import tiny_recipe
    from nlp_cv_tricks.config import save_recipe

    recipe = tiny_recipe(tiny_bert, toy_data, tmp_path / "ddp", "train.batch_size=4", *common)
    save_recipe(recipe, tmp_path / "ddp.yaml")
    launch_two_processes(tmp_path / "ddp.yaml", port=29531)
    summary = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert summary["num_processes"] == 2 and "MULTI_CPU" in summary["distributed_type"]
    assert_same_weights(tmp_path / "single/final", tmp_path / "ddp/final", atol=2e-5)
    # every example was evaluated exactly once across the two processes (gather_for_metrics drops duplicates)
    evals = [json.loads(l) for l in (tmp_path / "ddp/history.jsonl").read_text().splitlines() if "eval/n" in l]
    assert evals[-1]["eval/n"] == 64


def test_ddp_fasttext_sparse_sgd_equals_single_process(tiny_bert, toy_data, tmp_path):
    """FastText's sparse bag gradients (built by its own backward) all-reduced by DDP and applied by
    SparseRowSGD's compiled row update: two processes of 4 end where one process of 8 does."""
    from conftest import tiny_recipe
    from nlp_cv_tricks.config import save_recipe

    common = ["model.name=fasttext", "model.kwargs.embedding_dim=8", "model.kwargs.word_ngrams=2",
              "model.kwargs.bucket=101", "model.kwargs.tokenizer.level=word", "train.optimizer=sgd",
              "train.momentum=0", "train.weight_decay=0", "train.learning_rate=4.0", "train.max_grad_norm=null",
              "train.epochs=2", "output.save_best=false"]
    _, res = fit(tiny_bert, toy_data, tmp_path / "single", "train.batch_size=8", *common)
    recipe = tiny_recipe(tiny_bert, toy_data, tmp_path / "ddp", "train.batch_size=4", *common)
    save_recipe(recipe, tmp_path / "ddp.yaml")
    launch_two_processes(tmp_path / "ddp.yaml", port=29533)
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["num_processes"] == 2
    assert_same_weights(tmp_path / "single/final", tmp_path / "ddp/final", atol=2e-5)
    # and training moved the model (two untrained models would also be "equal")
    losses = [json.loads(ln)["train/loss"] for ln in (tmp_path / "single/history.jsonl").read_text().splitlines()
              if "train/loss" in ln]
    assert losses[-1] < losses[0] - 0.05, losses
