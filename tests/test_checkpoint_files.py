"""What a checkpoint holds and how a resume reads it: the learning-rate schedule is plain numbers in
trainer_state.json, nothing is fully unpickled on resume, and a checkpoint of the earlier layout (the schedule
pickled in custom_checkpoint_0.pkl) still resumes bit-identically without its pickle being read."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file

from nlp_cv_tricks.engine.checkpoint import rebuild_scheduler_state, scheduler_state
from nlp_cv_tricks.runner import build_trainer
from nlp_cv_tricks.tricks.lr import scale_lr_

from conftest import make_tiny_bert, tiny_recipe
from test_trainer import _Kill, history

# 6 steps with a warmup of 2 and a linear decay, a checkpoint every 3: killed at step 5, resumed from step 3
RUN = ("train.max_steps=6", "train.save_steps=3", "train.save_total_limit=null", "train.eval_steps=2",
       "train.eval_each_epoch=false", "output.save_best=false", "train.optimizer=sgd", "train.learning_rate=0.5",
       "train.warmup_steps=2", "train.logging_steps=1")


@pytest.fixture()
def no_unpickling(monkeypatch):
    """Any full unpickling (``torch.load`` without ``weights_only=True``, ``pickle``) raises; torch's weights-only
    loader, which builds nothing but tensors and plain containers (``optimizer.bin``, ``random_states_<i>.pkl``),
    stays allowed."""
    real = torch.load

    def guarded(*args, **kwargs):
        if kwargs.get("weights_only") is not True:
            raise AssertionError(f"torch.load without weights_only=True: {args[0] if args else kwargs.get('f')}")
        return real(*args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used on resume")

    monkeypatch.setattr(torch, "load", guarded)
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, toy_data):
    """A run that never stopped and two copies of one killed at step 5 (checkpoint at step 3)."""
    root = tmp_path_factory.mktemp("ckpt")
    bert = make_tiny_bert(root / "bert", dropout=0.1)  # dropout: the RNG state must come back too

    def run(out, *extra, kill=None):
        t = build_trainer(tiny_recipe(bert, toy_data, root / out, *RUN, *extra))
        if kill is not None:
            t.tricks.append(_Kill(at=kill))
        return t, t.fit()

    run("full")
    for out in ("new", "old"):
        with pytest.raises(KeyboardInterrupt):
            run(out, kill=5)
    return root, run


def _same_as_uninterrupted(root, out):
    wa, wb = load_file(str(root / "full/final/model.safetensors")), load_file(str(root / out / "final/model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), out  # bit-identical
    drop = ("train/seconds",)
    rows = lambda run: [{k: v for k, v in r.items() if k not in drop} for r in history(root / run)]
    assert rows("full") == rows(out)


def test_a_checkpoint_keeps_the_schedule_as_json_and_resumes_without_unpickling(runs, no_unpickling):
    root, run = runs
    ckpt = root / "new/checkpoints/step_3"
    assert not list(ckpt.glob("custom_checkpoint_*")), "the schedule is no longer a pickled custom object"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["lr_scheduler"]["last_epoch"] == 3 and set(state["lr_scheduler"]["_last_lr"]) == {0.5 * 3 / 4}
    _, res = run("new", "train.resume_from=latest")
    assert res.global_step == 6
    _same_as_uninterrupted(root, "new")


def test_a_checkpoint_of_the_earlier_layout_resumes_exactly_without_reading_its_pickle(runs, no_unpickling,
                                                                                        monkeypatch):
    root, run = runs
    ckpt = root / "old/checkpoints/step_3"
    # the earlier layout: the scheduler's state_dict pickled by Accelerate, nothing of it in trainer_state.json
    state = json.loads((ckpt / "trainer_state.json").read_text())
    saved = state.pop("lr_scheduler")
    torch.save({**saved, "lr_lambdas": [{}]}, ckpt / "custom_checkpoint_0.pkl")
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    pickled = (ckpt / "custom_checkpoint_0.pkl").read_bytes()
    files = sorted(p.name for p in ckpt.iterdir())
    real = torch.load  # refusing full unpickling already (the fixture)

    def guarded(f, *args, **kwargs):  # the old pickle is never opened, not even by the weights-only loader
        assert "custom_checkpoint" not in str(f), f
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded)
    _, res = run("old", "train.resume_from=latest")
    assert res.global_step == 6
    _same_as_uninterrupted(root, "old")
    assert (ckpt / "custom_checkpoint_0.pkl").read_bytes() == pickled  # the user's checkpoint is untouched
    assert sorted(p.name for p in ckpt.iterdir()) == files


@pytest.mark.parametrize("name", ["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts",
                                  "polynomial"])
def test_the_schedule_is_rebuilt_from_the_step_count_even_after_skipped_steps(name):
    """Each schedule the recipe offers, 7 trainer steps of which 2 skipped the optimizer (non-finite loss, fp16
    overflow) and a halving of the rate: the state rebuilt from the restored optimizer is the pickled one."""
    from transformers import get_scheduler

    def make():
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))]
        opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)
        return opt, get_scheduler(name, opt, num_warmup_steps=2, num_training_steps=12, **(
            {"scheduler_specific_kwargs": {"num_cycles": 3}} if name == "cosine_with_restarts" else {}))

    opt, sched = make()
    for step in range(7):
        if step in (1, 4):
            continue  # skipped: neither the optimizer nor the schedule moved
        opt.step()
        sched.step()
        if step == 6:  # lr_halving after an evaluation: after the last step, before the checkpoint
            scale_lr_(opt, 0.5, sched)
    expected = scheduler_state(sched)
    json.dumps(expected)  # plain numbers
    opt2, sched2 = make()
    opt2.load_state_dict(opt.state_dict())
    n = rebuild_scheduler_state(sched2, opt2, steps=7)
    got = scheduler_state(sched2)
    flat = name in ("constant", "constant_with_warmup")  # the same rates at steps 5 to 7: any of them will do
    assert n == 5 or flat and n == 7
    expected["last_epoch"], expected["_step_count"] = n, n + 1
    # the last rates differ only where a halving came after the last step (and only until the next step)
    assert {k: v for k, v in got.items() if k != "_last_lr"} == {k: v for k, v in expected.items() if k != "_last_lr"}
    sched.step(), sched2.step()
    assert scheduler_state(sched2) == scheduler_state(sched) or flat
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
