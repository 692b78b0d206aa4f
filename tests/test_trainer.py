"""The trainer end to end on a tiny BERT built in code: learning, accumulation, resume, non-finite losses,
saving and loading, trick hooks."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from nlp_cv_tricks.engine.events import Trick
from nlp_cv_tricks.engine.trainer import NonFiniteLossError
from nlp_cv_tricks.runner import build_trainer

from conftest import make_tiny_bert, tiny_recipe
from trick_cases import cases


def fit(tiny_bert, toy_data, out, *overrides, tricks=None):
    r = tiny_recipe(tiny_bert, toy_data, out, *overrides)
    t = build_trainer(r)
    if tricks is not None:
        t.tricks = tricks  # the state's plug-ins: the criterion a trick replaces comes from them
    return t, t.fit()


def weights(model_dir):
    return load_file(str(model_dir / "model.safetensors"))


def assert_same_weights(a, b, atol):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst < atol, worst


def history(run):
    return [json.loads(l) for l in (run / "history.jsonl").read_text().splitlines()]


def test_learns_toy_task_and_writes_run_dir(tiny_bert, toy_data, tmp_path):
    t, res = fit(tiny_bert, toy_data, tmp_path / "run", "callbacks=[grad_norm_logging]", "train.eval_steps=12")
    assert res.best_metric >= 0.9  # chance is ~0.5
    run = tmp_path / "run"
    for f in ("recipe.yaml", "history.jsonl", "metrics.json", "best/model.safetensors", "best/config.json",
              "best/tokenizer.json", "best/recipe.yaml", "best/eval_metrics.json"):
        assert (run / f).exists(), f
    h = history(run)
    evals = [r for r in h if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [12, 24, 36, 48, 60, 72]
    assert any(k.startswith("train/grad_norm/encoder.layer.") for r in h for k in r)
    losses = [r["train/loss"] for r in h if "train/loss" in r]
    assert losses[-1] < losses[0] - 0.03
    cfg = json.loads((run / "best/config.json").read_text())
    assert cfg["id2label"] == {"0": "negative", "1": "positive"} and cfg["nct_raw_labels"] == ["0", "1"]


def test_save_from_pretrained_identical_logits(tiny_bert, toy_data, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    t, res = fit(tiny_bert, toy_data, tmp_path / "run", "train.epochs=1")
    loaded = AutoModelForSequenceClassification.from_pretrained(res.model_dir).eval()
    tok = AutoTokenizer.from_pretrained(res.model_dir)
    mine = t.accelerator.unwrap_model(t.model).eval()
    # epochs=1 with one eval: best == final weights
    enc = tok(["the movie was good", "awful plot"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded(**enc).logits, mine(**enc).logits)


def test_accumulation_equivalence(tiny_bert, toy_data, tmp_path):
    common = ["train.epochs=1", "output.save_best=false", "train.eval_each_epoch=false"]
    fit(tiny_bert, toy_data, tmp_path / "a", "train.batch_size=8", *common)
    fit(tiny_bert, toy_data, tmp_path / "b", "train.batch_size=4", "train.gradient_accumulation_steps=2", *common)
    assert_same_weights(tmp_path / "a/final", tmp_path / "b/final", atol=1e-5)
    # and it is not trivially true: a different batch composition gives different weights
    fit(tiny_bert, toy_data, tmp_path / "c", "train.batch_size=8", "train.seed=5", *common)
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "a/final", tmp_path / "c/final", atol=1e-5)


class _Kill(Trick):
    """Simulates a crash: raises at an optimizer step, leaving whatever was on disk."""

    def __init__(self, at):
        self.at = at

    def after_optimizer_step(self, step):
        if step.global_step + 1 == self.at:
            raise KeyboardInterrupt("killed")


def test_kill_and_resume_mid_epoch_matches_uninterrupted(tmp_path, toy_data):
    bert = make_tiny_bert(tmp_path / "bert_dropout", dropout=0.1)  # dropout: RNG state must be restored too
    common = ["train.epochs=2", "train.save_steps=5", "train.save_total_limit=null", "output.save_best=false",
              "train.eval_each_epoch=true"]
    fit(bert, toy_data, tmp_path / "full", *common)
    with pytest.raises(KeyboardInterrupt):
        fit(bert, toy_data, tmp_path / "crash", *common, tricks=[_Kill(at=13)])  # 24 steps/epoch: mid-epoch
    state = json.loads((tmp_path / "crash/checkpoints/step_10/trainer_state.json").read_text())
    assert state["epoch"] == 0 and state["batches_in_epoch"] == 10
    assert not (tmp_path / "crash/checkpoints/step_15").exists()
    t, res = fit(bert, toy_data, tmp_path / "crash", *common, "train.resume_from=latest")
    assert res.global_step == 48
    assert_same_weights(tmp_path / "full/final", tmp_path / "crash/final", atol=1e-6)
    full_h, res_h = history(tmp_path / "full"), history(tmp_path / "crash")
    key = lambda rows: [(r["step"], round(r.get("train/loss", r.get("eval/loss", 0)), 5)) for r in rows]
    assert key(full_h) == key(res_h)  # the resumed history was truncated to the checkpoint, then continued


@pytest.fixture(scope="module")
def dropout_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert_dropout"), dropout=0.1)


# 6 steps, a checkpoint every 3, an evaluation every 2 (lr_halving acts there): killed at step 5, resumed from 3
RESUME = ("train.max_steps=6", "train.save_steps=3", "train.save_total_limit=null", "train.eval_steps=2",
          "train.eval_each_epoch=false", "output.save_best=false", "train.optimizer=sgd", "train.learning_rate=0.5",
          "train.logging_steps=1")


def _trick_tensors(trainer):
    return {f"{p.name}.{k}": v for p in trainer.tricks for k, v in p.tensors().items()}


@pytest.mark.parametrize("name,spec", cases())
def test_every_trick_resumes_exactly(dropout_bert, toy_data, tmp_path, name, spec):
    """Killed after a checkpoint and resumed: the same weights, history and trick state (EMA's average
    included) as the run that never stopped, for every trick of the table (dropout on: the RNG state too)."""
    def run(out, *extra, kill=None):
        t = build_trainer(tiny_recipe(dropout_bert, toy_data, tmp_path / out, f"tricks={spec}", *RESUME, *extra))
        if kill is not None:
            t.tricks.append(_Kill(at=kill))
        return t, t.fit()

    full, _ = run("full")
    with pytest.raises(KeyboardInterrupt):
        run("crash", kill=5)
    resumed, res = run("crash", "train.resume_from=latest")
    assert res.global_step == 6
    wa, wb = weights(tmp_path / "full/final"), weights(tmp_path / "crash/final")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name  # bit-identical
    a, b = _trick_tensors(full), _trick_tensors(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert [t.state_dict() for t in full.tricks] == [t.state_dict() for t in resumed.tricks], name
    drop = ("train/seconds",)
    rows = lambda run: [{k: v for k, v in r.items() if k not in drop} for r in history(tmp_path / run)]
    assert rows("full") == rows("crash"), name


def test_resume_requires_checkpoint(tiny_bert, toy_data, tmp_path):
    r = tiny_recipe(tiny_bert, toy_data, tmp_path / "x", "train.resume_from=latest")
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        build_trainer(r).fit()


def test_output_dir_is_never_clobbered(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        fit(tiny_bert, toy_data, out, "train.epochs=1")
    assert (out / "precious.txt").read_text() == "keep"


class _Poison(Trick):
    """Makes the loss NaN at one micro-batch."""
    replaces_criterion = True

    def __init__(self, at):
        self.at = at

    def loss_fn(self, logits, labels, step):
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return loss * float("nan") if step.global_step == self.at else loss


def test_nonfinite_loss_stops_or_skips(tiny_bert, toy_data, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 4 .*train.nonfinite=skip"):
        fit(tiny_bert, toy_data, tmp_path / "a", "train.epochs=1", tricks=[_Poison(at=3)])
    t, res = fit(tiny_bert, toy_data, tmp_path / "b", "train.epochs=1", "train.nonfinite=skip",
                 tricks=[_Poison(at=3)])
    h = history(tmp_path / "b")
    assert any(r.get("train/skipped_nonfinite") == 1 for r in h)
    w = weights(tmp_path / "b/best")
    assert all(torch.isfinite(v).all() for v in w.values())


def test_label_smoothing_replaces_loss(tiny_bert, toy_data, tmp_path):
    from nlp_cv_tricks.tricks.label_smoothing import LabelSmoothing, label_smoothing_loss

    logits = torch.tensor([[4.0, -2.0], [0.5, 0.1]])
    labels = torch.tensor([0, 1])
    # by hand: target (1-e) one-hot + e/K
    logp = torch.log_softmax(logits, -1)
    target = torch.tensor([[0.95, 0.05], [0.05, 0.95]])
    assert label_smoothing_loss(logits, labels, 0.1) == pytest.approx(-(target * logp).sum(-1).mean().item(), abs=1e-6)
    t, res = fit(tiny_bert, toy_data, tmp_path / "ls", "train.epochs=1", "tricks=[{label_smoothing: {epsilon: 0.3}}]")
    assert [type(p) for p in t.state.plugins if p.replaces_criterion] == [LabelSmoothing]
    # with epsilon 0.3 the loss cannot go below the entropy of the smoothed target
    floor = -(0.85 * math.log(0.85) + 0.15 * math.log(0.15))
    assert min(r["train/loss"] for r in history(tmp_path / "ls") if "train/loss" in r) > floor - 1e-3


def test_hook_order_and_early_stopping(tiny_bert, toy_data, tmp_path):
    calls = []

    class Recorder(Trick):
        def on_fit_start(self, trainer): calls.append("fit_start")
        def on_step_start(self, step): calls.append("step_start")
        def after_backward(self, step): calls.append("after_backward")
        def on_micro_batch(self, state, view): calls.append(("micro_batch", view.global_step, view.sync_gradients,
                                                             tuple(view.logits.shape), view.loss.requires_grad))
        def before_optimizer_step(self, step): calls.append("before_opt")
        def after_optimizer_step(self, step): calls.append("after_opt")
        def on_eval_end(self, trainer, metrics): calls.append("eval_end")
        def on_epoch_end(self, trainer, epoch): calls.append("epoch_end")
        def on_fit_end(self, trainer): calls.append("fit_end")

    t, res = fit(tiny_bert, toy_data, tmp_path / "r", "train.epochs=1", "train.gradient_accumulation_steps=2",
                 "train.batch_size=4", tricks=[Recorder()])
    assert calls[0] == "fit_start" and calls[-1] == "fit_end"
    micro = ("micro_batch", 0, False, (4, 2), False), ("micro_batch", 0, True, (4, 2), False)
    assert calls[1:9] == ["step_start", "after_backward", micro[0], "step_start", "after_backward", micro[1],
                          "before_opt", "after_opt"]
    assert calls[-3:] == ["eval_end", "epoch_end", "fit_end"]
    # early stopping: a metric that cannot improve after the first evaluation stops after `patience` evals
    t, res = fit(tiny_bert, toy_data, tmp_path / "es", "train.epochs=10", "train.eval_steps=4",
                 "train.metric=loss", "train.learning_rate=1e-9", "train.early_stopping_patience=2",
                 "train.greater_is_better=true")
    assert res.stopped_early and res.global_step < 240


def test_bf16_autocast_on_cpu_and_tensorboard(tiny_bert, toy_data, tmp_path):
    seen, handles = [], []

    class DtypeProbe(Trick):
        def on_step_start(self, step):
            if not seen:
                emb = step.unwrapped_model.get_input_embeddings()
                h = emb.register_forward_hook(lambda m, i, o: seen.append(torch.get_autocast_dtype("cpu")
                                                                          if torch.is_autocast_enabled("cpu") else None))
                handles.append(h)

    t, res = fit(tiny_bert, toy_data, tmp_path / "bf16", "train.mixed_precision=bf16", "output.report_to=tensorboard",
                 tricks=[DtypeProbe()])
    assert seen and seen[0] == torch.bfloat16  # the forward really ran under bf16 autocast
    assert res.best_metric >= 0.9
    events = list((tmp_path / "bf16" / "logs").rglob("events.out.tfevents.*"))
    assert events, "TensorBoard tracker wrote no event file"


def test_optimizer_choices_from_the_recipe():
    from nlp_cv_tricks.config import TrainConfig
    from nlp_cv_tricks.engine.trainer import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    ada = build_optimizer(model, TrainConfig(optimizer="adadelta", learning_rate=1.0))
    assert isinstance(ada, torch.optim.Adadelta) and ada.defaults["rho"] == 0.95 and ada.defaults["lr"] == 1.0
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", learning_rate=0.1, momentum=0.0))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.0
    # weight decay never reaches biases or norm weights
    decays = {tuple(p.shape): g["weight_decay"] for g in sgd.param_groups for p in g["params"]}
    assert decays[(4, 4)] > 0 and decays[(4,)] == 0


def test_half_precision_checkpoint_trains_in_fp32(tmp_path, tiny_bert):
    """transformers loads a checkpoint in its stored dtype by default; training must get fp32 master weights."""
    from transformers import AutoModelForSequenceClassification

    from nlp_cv_tricks.config import ModelConfig
    from nlp_cv_tricks.models.factory import build_classifier

    src, tok = build_classifier(ModelConfig(name=str(tiny_bert)), {0: "a", 1: "b"})
    half = tmp_path / "half"
    src.half().save_pretrained(half)
    tok.save_pretrained(half)
    assert next(AutoModelForSequenceClassification.from_pretrained(half).parameters()).dtype == torch.float16
    model, _ = build_classifier(ModelConfig(name=str(half)), {0: "a", 1: "b"})
    assert {p.dtype for p in model.parameters()} == {torch.float32}



def test_a_mistyped_metric_is_refused_before_training(tiny_bert, toy_data, tmp_path):
    from nlp_cv_tricks.config import RecipeError

    r = tiny_recipe(tiny_bert, toy_data, tmp_path / "m", "train.metric=acc")
    with pytest.raises(RecipeError, match=r"train.metric='acc' is not a metric of this task; did you mean 'accuracy'"):
        build_trainer(r).fit()
    assert not (tmp_path / "m").exists()
    r = tiny_recipe(tiny_bert, toy_data, tmp_path / "m", "train.metric=recall/positive")
    with pytest.raises(RecipeError, match=r"did you mean 'eval/recall/positive'"):
        build_trainer(r).fit()
    ok = tiny_recipe(tiny_bert, toy_data, tmp_path / "ok", "train.metric=eval/recall/positive", "train.max_steps=2")
    assert build_trainer(ok).fit().best_metric is not None


def test_a_run_that_fails_while_starting_leaves_its_directory_reusable(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "r"
    bad = tiny_recipe(tiny_bert, toy_data, out, "tricks=[{init: {target: no.such.module}}]")
    with pytest.raises(ValueError, match="no.such.module"):
        build_trainer(bad).fit()
    assert not out.exists() or not any(out.iterdir())
    ok = tiny_recipe(tiny_bert, toy_data, out, "train.max_steps=2")
    assert build_trainer(ok).fit().global_step == 2 and (out / "recipe.yaml").is_file()


class _LogMicroBatch(Trick):
    """Logs 1, 2, 1, 2, ... in after_backward: the micro-batch's place in its accumulation block."""

    def __init__(self):
        self.n = 0

    def after_backward(self, step):
        self.n += 1
        step.log("probe", 1.0 if self.n % 2 else 2.0)


def test_trick_logs_count_each_micro_batch_once_with_accumulation(tiny_bert, toy_data, tmp_path):
    # two micro-batches per optimizer step log 1 and 2: the logged mean is 1.5 (the old loop appended the last
    # micro-batch's logs twice, giving 5/3)
    _, res = fit(tiny_bert, toy_data, tmp_path / "run", "train.gradient_accumulation_steps=2", "train.logging_steps=1",
                 "train.max_steps=3", tricks=[_LogMicroBatch()])
    rows = [r for r in history(tmp_path / "run") if "train/probe" in r]
    assert len(rows) == 3
    assert all(r["train/probe"] == pytest.approx(1.5) for r in rows), rows


def test_best_model_without_checkpoints_is_written_once_at_the_end(tiny_bert, toy_data, tmp_path, monkeypatch):
    from pathlib import Path

    from nlp_cv_tricks.engine.trainer import Trainer

    saved = []
    save_model = Trainer.save_model

    def spy(self, directory, metrics=None, snapshot=None):
        saved.append((Path(directory).name, self.global_step, None if snapshot is None else snapshot["step"]))
        return save_model(self, directory, metrics, snapshot)

    monkeypatch.setattr(Trainer, "save_model", spy)
    # the highest dev loss is an early evaluation's: best/ must hold those weights, not the last ones
    common = ("train.epochs=2", "train.eval_steps=4", "train.metric=loss", "train.greater_is_better=true")
    t, res = fit(tiny_bert, toy_data, tmp_path / "r", *common)
    assert res.best_step < res.global_step
    assert saved == [("best", res.global_step, res.best_step)]  # one write, at the end, of the kept weights
    run = tmp_path / "r"
    assert json.loads((run / "best/eval_metrics.json").read_text())["step"] == res.best_step
    assert json.loads((run / "best/training_summary.json").read_text())["step"] == res.best_step
    best, final = weights(run / "best"), t.accelerator.unwrap_model(t.model).state_dict()
    assert any(not torch.equal(best[k], final[k]) for k in best)
    # with checkpoints, best/ is written at each improvement (a run that dies leaves it next to its checkpoint)
    saved.clear()
    t, res = fit(tiny_bert, toy_data, tmp_path / "c", *common, "train.save_steps=1000")
    assert saved and all(s[0] == "best" and s[2] is None for s in saved)
    assert saved[-1][1] == res.best_step
    # a run stopped by a non-finite loss keeps the best model it had
    with pytest.raises(NonFiniteLossError):
        fit(tiny_bert, toy_data, tmp_path / "n", "train.epochs=1", "train.eval_steps=4", tricks=[_Poison(at=9)])
    assert json.loads((tmp_path / "n/best/eval_metrics.json").read_text())["step"] in (4, 8)
