"""``TricksTrainer`` (transformers.Trainer) under 2-process DDP on CPU (gloo, torch.distributed.run): one
all-reduce round per optimizer step whatever the number of passes a trick makes (counted with a DDP
communication hook), as in the package's own trainer; both processes end with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

WORKER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments
    from nlp_cv_tricks.engine.events import Callback
    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    model_dir, out = sys.argv[1], Path(sys.argv[2])
    specs = json.loads(sys.argv[3])

    class CountAllReduce(Callback):
        name = "count_allreduce"
        def __init__(self):
            self.calls = 0
        def on_fit_start(self, state):
            def hook(st, bucket):
                self.calls += 1
                return allreduce_hook(None, bucket)
            state.model.register_comm_hook(None, hook)

    tok = AutoTokenizer.from_pretrained(model_dir)
    words = ["good great fine", "bad awful poor", "film story actor", "really very it"]
    rows = [tok(words[i % 4], truncation=True, max_length=16) for i in range(32)]
    data = [{**r, "labels": i % 2} for i, r in enumerate(rows)]
    from transformers import DataCollatorWithPadding
    collate = DataCollatorWithPadding(tok)
    result = {}
    for name, spec in specs.items():
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
        args = TrainingArguments(output_dir=str(out / name), per_device_train_batch_size=4, max_steps=3,
                                 gradient_accumulation_steps=2, learning_rate=1e-2, report_to="none", use_cpu=True,
                                 ddp_backend="gloo", save_strategy="no", disable_tqdm=True, logging_steps=100,
                                 seed=0)
        counter = CountAllReduce()
        trainer = TricksTrainer(model=model, args=args, train_dataset=data, data_collator=collate, tricks=spec,
                                callbacks=[counter])
        trainer.train()
        assert trainer.accelerator.num_processes == 2
        w = trainer.accelerator.unwrap_model(trainer.model).classifier.weight.detach()
        gathered = [torch.zeros_like(w) for _ in range(2)]
        torch.distributed.all_gather(gathered, w.contiguous())
        assert torch.allclose(gathered[0], gathered[1]), "the processes' weights differ"
        result[name] = counter.calls
    if trainer.accelerator.is_main_process:
        (out / "calls.json").write_text(json.dumps(result))
    # transformers.Trainer leaves the process group up; tearing gloo down at interpreter exit instead can abort a
    # rank ("terminate called without an active exception", seen once in CI)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
''')


@pytest.mark.slow
def test_tricks_trainer_ddp_one_allreduce_per_step(tiny_bert, tmp_path):
    script = tmp_path / "hf_ddp_worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    specs = {"plain": [], "fgm": ["fgm"], "pgd": [{"pgd": {"steps": 2}}], "rdrop": ["rdrop"]}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(tiny_bert), str(out), json.dumps(specs)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    calls = json.loads((out / "calls.json").read_text())
    # 3 optimizer steps of 2 micro-batches: one all-reduce round per optimizer step for every trick
    assert calls["plain"] >= 3 and all(c == calls["plain"] for c in calls.values()), calls
