"""Tricks under 2-process DDP on CPU (gloo, torch.distributed.run): the same weights as one process on the
same global batch, and no extra all-reduce per adversarial pass (counted with a DDP communication hook)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch

from conftest import ROOT, tiny_recipe
from trick_cases import cases

# tricks whose result depends on how the global batch is split over processes, by design
NOT_SPLIT_INVARIANT = {
    "awp": "the weight perturbation is scaled to each process's own (4-row) gradient; awp_not_started checks its "
           "all-reduce",
    "embedding_dropout": "each process draws its own random masks",
}
# every trick of the table (tests/trick_cases.py) that can run here, as one 2-process run of the worker below
TRICKS = {p.values[0]: p.values[1] for p in cases(extra={
    "plain": "[]",
    # before its start_step AWP makes no pass: the gradients must still be all-reduced (by hand)
    "awp_not_started": "[{awp: {start_step: 100}}]",
}) if not p.marks and p.values[0] not in NOT_SPLIT_INVARIANT}
COMMON = ("train.max_steps=2", "train.optimizer=sgd", "train.learning_rate=0.5", "train.max_grad_norm=null",
          "output.save_best=false", "train.eval_each_epoch=false", "train.cpu=true")

WORKER = textwrap.dedent('''
    import json, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    torch.set_num_threads(1)
    from pathlib import Path
    from conftest import tiny_recipe
    from nlp_cv_tricks.engine.events import Trick
    from nlp_cv_tricks.engine.trainer import Trainer
    from nlp_cv_tricks.runner import build_trainer
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    class CountAllReduce(Trick):
        name = "count_allreduce"
        def __init__(self):
            self.calls = 0
        def on_fit_start(self, trainer):
            def hook(state, bucket):
                self.calls += 1
                return allreduce_hook(None, bucket)
            trainer.model.register_comm_hook(None, hook)

    tiny_bert, train, dev, out = sys.argv[2:6]
    tricks, common = json.loads(sys.argv[6]), json.loads(sys.argv[7])
    result = {}
    # Trainer.fit() ends with accelerator.end_training(), which destroys the process group; keep it for the
    # next run of this loop (re-creating a group in the same processes is not reliable)
    from accelerate import Accelerator
    Accelerator.end_training = lambda self: [t.finish() for t in self.trackers]
    for name, spec in tricks.items():
        recipe = tiny_recipe(Path(tiny_bert), {"train": train, "dev": dev}, Path(out) / name, f"tricks={spec}",
                             "train.batch_size=4", *common)
        trainer = build_trainer(recipe)
        counter = CountAllReduce()
        trainer.tricks.append(counter)
        trainer.fit()
        acc = trainer.accelerator
        assert acc.num_processes == 2, acc.num_processes
        if acc.is_main_process:
            state = acc.unwrap_model(trainer.model).state_dict()
            torch.save({k: v.detach().clone() for k, v in state.items()}, Path(out) / f"{name}.pt")
            result[name] = counter.calls
    if result:
        (Path(out) / "calls.json").write_text(json.dumps(result))
    # end_training is patched out above: the group is released here rather than by gloo's teardown at exit
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
''')


def test_ddp_two_processes_equal_one_process(tiny_bert, toy_data, tmp_path):
    from accelerate.state import AcceleratorState, GradientState

    from nlp_cv_tricks.runner import build_trainer

    script = tmp_path / "ddp_worker.py"
    script.write_text(WORKER)
    out = tmp_path / "ddp"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(ROOT / "tests"), str(tiny_bert), str(toy_data["train"]), str(toy_data["dev"]), str(out),
           json.dumps(TRICKS), json.dumps(list(COMMON))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, "\n".join(ln for ln in proc.stderr.splitlines() if "[rank" in ln or "Error" in ln)[-4000:]
    calls = json.loads((out / "calls.json").read_text())
    # one all-reduce round per optimizer step, however many forward/backward passes a trick makes
    others = [c for n, c in calls.items() if n != "awp_not_started"]
    assert calls["plain"] >= 2 and all(c == calls["plain"] for c in others), calls

    for name, spec in TRICKS.items():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        recipe = tiny_recipe(tiny_bert, toy_data, tmp_path / f"single_{name}", f"tricks={spec}",
                             "train.batch_size=8", *COMMON)
        trainer = build_trainer(recipe)
        trainer.fit()
        single = trainer.accelerator.unwrap_model(trainer.model).state_dict()
        ddp = torch.load(out / f"{name}.pt")
        for k in single:
            assert torch.allclose(single[k], ddp[k], atol=1e-5), (name, k)
    # the tricks did something: FGM's weights differ from the plain run's
    plain, fgm = torch.load(out / "plain.pt"), torch.load(out / "fgm.pt")
    k = "classifier.weight"
    assert (plain[k] - fgm[k]).norm() > 1e-3 * plain[k].norm()
