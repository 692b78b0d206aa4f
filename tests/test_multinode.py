"""Multi-node training over loopback: two ``accelerate launch --num_machines 2 --machine_rank {0,1}
--main_process_ip 127.0.0.1`` launches (one process per "machine", DDP over gloo on CPU) train the TextCNN recipe on
the quick-start data and end with exactly the weights of a single-node two-process run (examples/launch/)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_trainer import assert_same_weights

ACCELERATE = Path(sys.executable).with_name("accelerate")
# Kim's TextCNN recipe at the quick-start size (the bundled 6,920 SST-2 sentences, one epoch), narrower
COMMON = ["recipes/sst2_textcnn.yaml", "data.train_file=data/sst2/train.txt", "data.dev_file=data/sst2/dev.txt",
          "train.epochs=1", "model.kwargs.embedding_dim=32", "model.kwargs.num_filters=16", "train.batch_size=50",
          "train.optimizer=adam", "train.learning_rate=3e-3", "train.logging_steps=10",
          "output.save_best=false", "output.report=false", "output.report_to=none", "train.progress_bar=false"]
LAUNCH = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--mixed_precision", "no",
          "--dynamo_backend", "no"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _train_cmd(out: Path) -> list[str]:
    return [str(ROOT / "scripts" / "train.py"), *COMMON, f"output.dir={out}"]


@pytest.mark.slow
def test_two_machines_over_loopback_equal_one_machine_with_two_processes(tmp_path):
    single = subprocess.run(LAUNCH + ["--num_machines", "1", "--main_process_port", "29621"] + _train_cmd(
        tmp_path / "single"), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    # one launch per "machine"; rank 0 hosts the rendezvous at 127.0.0.1:29623
    machines = [subprocess.Popen(LAUNCH + ["--num_machines", "2", "--machine_rank", str(rank), "--main_process_ip",
                                           "127.0.0.1", "--main_process_port", "29623"] + _train_cmd(tmp_path / "multi"),
                                 cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for rank in (0, 1)]
    try:
        logs = [m.communicate(timeout=900)[0] for m in machines]
    finally:
        for m in machines:
            if m.poll() is None:
                m.kill()
    assert [m.returncode for m in machines] == [0, 0], "\n".join(log[-2000:] for log in logs)
    for run in ("single", "multi"):
        summary = json.loads((tmp_path / run / "metrics.json").read_text())
        assert summary["num_processes"] == 2 and "MULTI_CPU" in summary["distributed_type"], summary
    assert_same_weights(tmp_path / "single" / "final", tmp_path / "multi" / "final", atol=1e-6)
    # and training moved the model (two untrained models would also be "equal")
    losses = [json.loads(ln)["train/loss"] for ln in (tmp_path / "multi" / "history.jsonl").read_text().splitlines()
              if "train/loss" in ln]
    assert losses[-1] < losses[0] - 0.03, losses
    assert json.loads((tmp_path / "multi" / "metrics.json").read_text())["best_metric"] > 0.55  # chance ~0.5


@pytest.mark.parametrize("name,kind,machines", [("multi_node", "MULTI_GPU", 2), ("fsdp", "FSDP", 1),
                                                 ("deepspeed_zero2", "DEEPSPEED", 1)])
def test_launch_configs_load_in_accelerate(name, kind, machines):
    """The documented launch files are valid ``accelerate`` config files (a typo would only show on a cluster)."""
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "examples" / "launch" / f"{name}.yaml"))
    assert cfg.distributed_type.value == kind and cfg.num_machines == machines
    if kind == "FSDP":
        assert cfg.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # best/ and final/ stay one file
    if kind == "DEEPSPEED":
        assert cfg.deepspeed_config["zero_stage"] == 2
