"""The tricks in other loops: the same weights through (a) the package's trainer, (b) ``transformers.Trainer``
with :class:`TricksTrainer`, (c) a plain PyTorch loop and (d) an Accelerate loop with :class:`TrickStep`, with
gradient accumulation 1 and 2; resume from a transformers checkpoint (EMA included); the refusals."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import make_tiny_bert, tiny_recipe
from nlp_cv_tricks.engine.events import Callback, Trick

STEPS = 4
LR = 0.5
TRICKS = {
    "fgm": ["fgm"],
    "pgd": [{"pgd": {"steps": 2}}],
    "rdrop": [{"rdrop": {"alpha": 1.0}}],
    "focal": [{"focal_loss": {"gamma": 2.0}}],
    "smoothing": [{"label_smoothing": {"epsilon": 0.1}}],
    "ema": [{"ema": {"decay": 0.8}}, "fgm"],
}


class Seeder(Trick):
    """Seeds torch at the start of every micro-batch, so dropout draws the same masks in every loop; its counter
    is state (checkpointed and restored)."""

    name = "seeder"

    def __init__(self):
        self.n = 0

    def on_step_start(self, step):
        torch.manual_seed(1000 + self.n)
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = int(state.get("n", 0))


@pytest.fixture(scope="module")
def dropout_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("dropout_bert"), dropout=0.1)


def _ours(dropout_bert, toy_data, tmp_path, spec, ga, extra=()):
    """The package's trainer: final weights, EMA weights, the initial model and the micro-batches it saw."""
    import json

    from nlp_cv_tricks.runner import build_trainer

    recipe = tiny_recipe(dropout_bert, toy_data, tmp_path / "ours", f"tricks={json.dumps(spec)}",
                         f"train.batch_size={8 // ga}", f"train.gradient_accumulation_steps={ga}",
                         f"train.max_steps={STEPS}", "train.optimizer=sgd", "train.momentum=0",
                         f"train.learning_rate={LR}", "train.lr_scheduler=constant", "train.weight_decay=0",
                         "train.max_grad_norm=null", "train.eval_each_epoch=false", "output.save_best=false",
                         "train.cpu=true")
    trainer = build_trainer(recipe)
    init = copy.deepcopy(trainer.model)
    seen = []

    class Tap(Trick):
        name = "tap"

        def on_step_start(self, step):
            seen.append({k: v.clone() for k, v in step.batch.items()})

    trainer.tricks.insert(0, Seeder())
    trainer.tricks.append(Tap())
    trainer.tricks.extend(extra)
    trainer.fit()
    return _weights(trainer.model, trainer.tricks), init, seen


def _weights(model, plugins):
    model = getattr(model, "module", model)
    out = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for p in plugins:
        if getattr(p, "ema", None) is not None:
            out.update({f"ema.{k}": v.detach().clone() for k, v in p.ema.module.state_dict().items()})
    return out


def _hf(init, batches, spec, ga, out, resume=None, stop_at=None, save_steps=0):
    """transformers.Trainer with TricksTrainer over the same micro-batches in the same order."""
    from transformers import TrainerCallback, TrainingArguments

    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    class InOrder(TricksTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if stop_at is not None and state.global_step >= stop_at:
                control.should_training_stop = True

    model = copy.deepcopy(init)
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=1, gradient_accumulation_steps=ga,
                             max_steps=STEPS, learning_rate=LR, lr_scheduler_type="constant", weight_decay=0.0,
                             max_grad_norm=0.0, report_to="none", use_cpu=True, logging_steps=1000,
                             disable_tqdm=True, save_strategy="steps" if save_steps else "no",
                             save_steps=save_steps or 500, dataloader_num_workers=0, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    trainer = InOrder(model=model, args=args, train_dataset=list(batches), data_collator=lambda items: items[0],
                      optimizers=(opt, None), tricks=[Seeder(), *spec], callbacks=[StopAt()])
    trainer.train(resume_from_checkpoint=resume)
    return _weights(trainer.model, trainer.nct_plugins), trainer


def _plain(init, batches, spec, ga):
    from nlp_cv_tricks.integrations import TrickStep

    model = copy.deepcopy(init)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    tricks = TrickStep(model, [Seeder(), *spec], gradient_accumulation_steps=ga)
    for i, batch in enumerate(batches):
        tricks.step(batch)
        if (i + 1) % ga == 0:
            tricks.before_optimizer_step()
            opt.step()
            opt.zero_grad()
            tricks.after_optimizer_step()
    assert tricks.global_step == STEPS
    return _weights(model, tricks.plugins)


def _accelerate(init, batches, spec, ga):
    from accelerate import Accelerator

    from nlp_cv_tricks.engine.trainer import reset_accelerate_state
    from nlp_cv_tricks.integrations import TrickStep

    reset_accelerate_state()
    acc = Accelerator(gradient_accumulation_steps=ga, cpu=True)
    model = copy.deepcopy(init)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    model, opt = acc.prepare(model, opt)
    model.train()
    tricks = TrickStep(model, [Seeder(), *spec], accelerator=acc)
    for batch in batches:
        with acc.accumulate(model):
            tricks.step(batch)
            opt.step()
            opt.zero_grad()
            tricks.after_optimizer_step()
    reset_accelerate_state()
    return _weights(model, tricks.plugins)


def _assert_same(a, b, what):
    assert a.keys() == b.keys(), (what, sorted(set(a) ^ set(b))[:5])
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-6, rtol=1e-5), (what, k, (a[k] - b[k]).abs().max().item())


@pytest.mark.parametrize("ga", [1, 2])
@pytest.mark.parametrize("name", list(TRICKS))
def test_same_weights_in_every_loop(name, ga, dropout_bert, toy_data, tmp_path):
    spec = TRICKS[name]
    ours, init, batches = _ours(dropout_bert, toy_data, tmp_path, spec, ga)
    assert len(batches) == STEPS * ga
    hf, _ = _hf(init, batches, spec, ga, tmp_path / "hf")
    _assert_same(ours, hf, "transformers.Trainer")
    _assert_same(ours, _plain(init, batches, spec, ga), "plain loop")
    _assert_same(ours, _accelerate(init, batches, spec, ga), "accelerate loop")
    # the trick acted: the weights differ from a plain run's
    plain, _, _ = _ours(dropout_bert, toy_data, tmp_path / "none", [], ga)
    k = "classifier.weight"
    assert (plain[k] - ours[k]).norm() > 1e-4 * plain[k].norm(), name


def test_transformers_resume_equals_uninterrupted(dropout_bert, toy_data, tmp_path):
    """Stopped at step 2 (a checkpoint there) and resumed with resume_from_checkpoint=True: the same weights, EMA
    average and trick state as a run that never stopped."""
    spec = [{"ema": {"decay": 0.8}}, "fgm"]
    _, init, batches = _ours(dropout_bert, toy_data, tmp_path, spec, 1)
    full, _ = _hf(init, batches, spec, 1, tmp_path / "full")
    _, first = _hf(init, batches, spec, 1, tmp_path / "cut", stop_at=2, save_steps=2)
    assert first.state.global_step == 2
    ckpt = tmp_path / "cut" / "checkpoint-2"
    assert (ckpt / "nlp_cv_tricks_state.json").is_file() and (ckpt / "ema.safetensors").is_file()
    resumed, second = _hf(init, batches, spec, 1, tmp_path / "cut", resume=True, save_steps=2)
    assert second.state.global_step == STEPS
    assert second.nct_plugins[0].n == STEPS  # the seeder's counter came back from the checkpoint
    _assert_same(full, resumed, "resumed")


class Watch(Callback):
    """Observes every micro-batch (read only): its step, whether it ends an accumulation block, its loss and the
    shape of its logits."""

    name = "watch"

    def __init__(self):
        self.seen = []

    def on_micro_batch(self, state, view):
        assert not view.loss.requires_grad and not view.logits.requires_grad
        self.seen.append((view.global_step, state.global_step, view.sync_gradients, float(view.loss),
                          tuple(view.logits.shape), tuple(view.labels.shape)))


def test_micro_batch_observation_is_the_same_in_every_loop(dropout_bert, toy_data, tmp_path):
    """on_micro_batch runs after the passes of each micro-batch in the package's trainer, transformers.Trainer and
    the step API alike (with FGM's extra pass: the clean loss is the one observed)."""
    spec = ["fgm"]
    ours = Watch()
    _, init, batches = _ours(dropout_bert, toy_data, tmp_path, spec, 2, extra=[ours])
    hf, plain = Watch(), Watch()
    _hf(init, batches, [*spec, hf], 2, tmp_path / "hf")
    _plain(init, batches, [*spec, plain], 2)
    steps = [(i // 2, i // 2, i % 2 == 1) for i in range(2 * STEPS)]
    for what, w in (("ours", ours), ("transformers.Trainer", hf), ("plain loop", plain)):
        assert [s[:3] for s in w.seen] == steps, what
        assert all(s[4] == (4, 2) and s[5] == (4,) for s in w.seen), what
        assert [s[3] for s in w.seen] == pytest.approx([s[3] for s in ours.seen], abs=1e-5), what


def test_trick_logs_reach_transformers_logs(dropout_bert, toy_data, tmp_path):
    from transformers import TrainerCallback

    _, init, batches = _ours(dropout_bert, toy_data, tmp_path, [], 1)
    seen = []

    class Keep(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            seen.append(dict(logs or {}))

    from transformers import TrainingArguments

    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    args = TrainingArguments(output_dir=str(tmp_path / "logs"), per_device_train_batch_size=1, max_steps=STEPS,
                             report_to="none", use_cpu=True, logging_steps=2, disable_tqdm=True,
                             save_strategy="no")
    trainer = TricksTrainer(model=copy.deepcopy(init), args=args, train_dataset=list(batches),
                            data_collator=lambda items: items[0], tricks=["fgm"],
                            callbacks=[{"grad_norm_logging": {"every": 1}}, Keep()])
    trainer.train()
    train_logs = [r for r in seen if "loss" in r]
    assert train_logs and all("adv_loss" in r and r["adv_loss"] > 0 for r in train_logs), train_logs
    assert any(k.startswith("grad_norm/") for k in train_logs[0]), train_logs[0]


def test_refusals(dropout_bert):
    from transformers import AutoModelForSequenceClassification

    from nlp_cv_tricks.integrations import TrickStep

    model = AutoModelForSequenceClassification.from_pretrained(str(dropout_bert), num_labels=2)
    with pytest.raises(ValueError, match="did you mean 'fgm'"):
        TrickStep(model, ["fgn"])
    with pytest.raises(ValueError, match="use_for_eval"):
        TrickStep(model, [{"ema": {"use_for_eval": True}}])
    with pytest.raises(ValueError, match="lr_halving .*optimizer="):
        TrickStep(model, ["lr_halving"])
    with pytest.raises(ValueError, match="train_eval .*evaluate="):
        TrickStep(model, callbacks=["train_eval"])

    class NoEmbeddings(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)

        def forward(self, x, labels=None):
            return self.lin(x)

    with pytest.raises(ValueError, match=r"trick 'pgd'.*module"):
        TrickStep(NoEmbeddings(), [{"pgd": {"steps": 2}}])
    # with the module named, the same model trains (perturbing the linear layer's output)
    ts = TrickStep(NoEmbeddings(), [{"fgm": {"module": "lin"}}],
                   compute_loss=lambda m, b: torch.nn.functional.cross_entropy(m(b["x"]), b["labels"]))
    loss = ts.step({"x": torch.randn(3, 4), "labels": torch.tensor([0, 1, 1])})
    ts.before_optimizer_step()
    ts.after_optimizer_step()
    assert len(ts.logs["adv_loss"]) == 1  # a step's logs are collected once
    assert loss.dim() == 0 and ts.pop_logs()["adv_loss"] > 0 and ts.global_step == 1


def test_transformers_bf16_on_cpu(dropout_bert, toy_data, tmp_path):
    """Mixed precision as transformers.Trainer runs it (bf16 autocast on CPU): every pass of FGM and R-Drop runs
    under it, the losses stay finite and the tricks log."""
    from transformers import TrainingArguments

    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    _, init, batches = _ours(dropout_bert, toy_data, tmp_path, [], 1)
    args = TrainingArguments(output_dir=str(tmp_path / "bf16"), per_device_train_batch_size=1, max_steps=STEPS,
                             learning_rate=1e-3, bf16=True, use_cpu=True, report_to="none", logging_steps=2,
                             disable_tqdm=True, save_strategy="no")
    model = copy.deepcopy(init)
    before = model.classifier.weight.detach().clone()
    trainer = TricksTrainer(model=model, args=args, train_dataset=list(batches), data_collator=lambda items: items[0],
                            tricks=["fgm", "rdrop"])
    out = trainer.train()
    assert torch.isfinite(torch.tensor(out.training_loss))
    assert not torch.equal(before, trainer.model.classifier.weight.detach())
    logs = [r for r in trainer.state.log_history if "loss" in r]
    assert logs and all("adv_loss" in r and "rdrop_kl" in r for r in logs), logs


def test_transformers_evaluation_hooks(dropout_bert, toy_data, tmp_path):
    """on_eval_end runs after transformers' evaluations: lr_halving halves the optimizer's rate on a plateau of
    the tracked metric, EMA adds its eval_ema metrics (evaluated on the averaged weights), on_epoch_end runs."""
    from transformers import TrainingArguments

    from nlp_cv_tricks.integrations.transformers import TricksTrainer

    _, init, batches = _ours(dropout_bert, toy_data, tmp_path, [], 1)
    epochs = []

    class Epochs(Callback):
        name = "epochs"

        def on_epoch_end(self, state, epoch):
            epochs.append(epoch)

    args = TrainingArguments(output_dir=str(tmp_path / "ev"), per_device_train_batch_size=1, max_steps=STEPS,
                             learning_rate=1e-3, lr_scheduler_type="constant", report_to="none", use_cpu=True,
                             eval_strategy="steps", eval_steps=1, logging_steps=1, disable_tqdm=True,
                             save_strategy="no")
    # mode max on the loss: every evaluation after the first is "no improvement", so the rate halves each time
    trainer = TricksTrainer(model=copy.deepcopy(init), args=args, train_dataset=list(batches),
                            eval_dataset=list(batches), data_collator=lambda items: items[0],
                            tricks=[{"lr_halving": {"metric": "loss", "mode": "max"}}, {"ema": {"decay": 0.5}}],
                            callbacks=[Epochs()])
    trainer.train()
    evals = [r for r in trainer.state.log_history if "eval_loss" in r]
    assert len(evals) >= STEPS
    assert all("eval_ema_loss" in r for r in evals), evals[0]
    assert trainer.optimizer.param_groups[0]["lr"] < 1e-3 / 2 ** (STEPS - 2)
    assert epochs == [0]


def test_with_tricks_keeps_the_users_compute_loss(dropout_bert, toy_data, tmp_path):
    """with_tricks(MyTrainer): the user's compute_loss is the criterion of every pass (the clean one and FGM's
    adversarial one); here it zeroes the loss, so nothing moves, while the same run with the default loss does."""
    import transformers
    from transformers import TrainingArguments

    from nlp_cv_tricks.integrations.transformers import TricksTrainerMixin, with_tricks

    class Zero(transformers.Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(**inputs)
            loss = outputs.loss * 0.0
            return (loss, outputs) if return_outputs else loss

    ZeroWithTricks = with_tricks(Zero)
    assert issubclass(ZeroWithTricks, TricksTrainerMixin) and issubclass(ZeroWithTricks, Zero)
    with pytest.raises(TypeError, match="transformers.Trainer subclass"):
        with_tricks(dict)
    _, init, batches = _ours(dropout_bert, toy_data, tmp_path, [], 1)
    moved = {}
    for name, cls in (("zero", ZeroWithTricks), ("default", with_tricks(transformers.Trainer))):
        args = TrainingArguments(output_dir=str(tmp_path / name), per_device_train_batch_size=1, max_steps=STEPS,
                                 learning_rate=1e-2, report_to="none", use_cpu=True, disable_tqdm=True,
                                 save_strategy="no", weight_decay=0.0)
        model = copy.deepcopy(init)
        before = model.classifier.weight.detach().clone()
        cls(model=model, args=args, train_dataset=list(batches), data_collator=lambda items: items[0],
            tricks=["fgm"]).train()
        moved[name] = float((model.classifier.weight.detach() - before).norm())
    assert moved["zero"] == 0.0 and moved["default"] > 0.0, moved
