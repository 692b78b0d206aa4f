"""Tricks: numerical checks of each core function, reference gradients through the real trainer, no leftover
perturbation, equality with and without gradient accumulation, bf16 through the trainer and fp16 with a
GradScaler by hand (CPU Accelerate has no fp16 path)."""

from __future__ import annotations

import contextlib
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_recipe
from trick_cases import cases
from nlp_cv_tricks.engine.events import Trick
from nlp_cv_tricks.engine.step import StepContext
from nlp_cv_tricks.engine.task import ClassificationTask
from nlp_cv_tricks.tricks import build_tricks
from nlp_cv_tricks.tricks.adversarial import (AWP, FGM, PGD, FreeLB, PixelFGSM, PixelPGD, fgm_perturbation,
                                              fgsm_perturbation, freelb_init, pgd_step, project_l2, project_linf)
from nlp_cv_tricks.tricks.init import Init, reinit_
from nlp_cv_tricks.tricks.label_smoothing import label_smoothing_loss
from nlp_cv_tricks.tricks.losses import (class_weights_from_counts, focal_loss, weighted_cross_entropy)
from nlp_cv_tricks.tricks.lr import PlateauState, halving_values, is_improvement, scale_lr_
from nlp_cv_tricks.tricks.rdrop import RDrop, rdrop_kl, symmetric_kl
from nlp_cv_tricks.tricks.regularization import (decay_parameter_groups, embedding_dropout,
                                                 no_decay_parameter_names)

torch.set_num_threads(1)


# =========================================================================================================
# pure functions
# =========================================================================================================
def test_fgm_direction_and_norm():
    g = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    r = fgm_perturbation(g, 0.7)
    for i in range(3):  # parallel to the gradient, per-example norm epsilon
        assert torch.allclose(r[i].norm(), torch.tensor(0.7), atol=1e-6)
        assert F.cosine_similarity(r[i].flatten(), g[i].flatten(), dim=0) > 1 - 1e-6
    assert torch.allclose(fgm_perturbation(g, 0.7, "batch").norm(), torch.tensor(0.7), atol=1e-6)
    assert torch.allclose(fgm_perturbation(g, 0.7, "token").norm(dim=-1), torch.full((3, 5), 0.7), atol=1e-6)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 3)
    rm = fgm_perturbation(g, 0.7, mask=mask)
    assert rm[:, 3:].abs().sum() == 0 and torch.allclose(rm[0].norm(), torch.tensor(0.7), atol=1e-6)
    # per-example norms do not depend on how the batch is split
    assert torch.allclose(fgm_perturbation(g[:1], 0.7), r[:1])
    assert fgm_perturbation(torch.zeros(2, 3, 4), 1.0).abs().sum() == 0
    bad = g.clone()
    bad[0, 0, 0] = float("nan")
    bad[1, 0, 0] = float("inf")
    assert torch.isfinite(fgm_perturbation(bad, 1.0)).all()
    with pytest.raises(ValueError, match="norm must be one of"):
        fgm_perturbation(g, 1.0, "l1")


def test_pgd_projection_stays_in_ball():
    gen = torch.Generator().manual_seed(1)
    d = torch.randn(4, 6, 3, generator=gen) * 3
    p = project_l2(d, 0.5)
    norms = p.reshape(4, -1).norm(dim=1)
    assert torch.all(norms <= 0.5 + 1e-6) and torch.allclose(norms, torch.full((4,), 0.5), atol=1e-6)
    small = d / d.reshape(4, -1).norm(dim=1).view(-1, 1, 1) * 0.1
    assert torch.allclose(project_l2(small, 0.5), small)  # inside the ball: unchanged
    assert torch.equal(project_l2(d, 0.0), d)  # 0 = unbounded
    delta = torch.zeros(4, 6, 3)
    for _ in range(5):
        delta = pgd_step(delta, torch.randn(4, 6, 3, generator=gen), alpha=0.3, epsilon=0.5)
        assert torch.all(delta.reshape(4, -1).norm(dim=1) <= 0.5 + 1e-6)
    # L-infinity: FGSM direction and box projection
    g = torch.randn(2, 3, 8, 8, generator=gen)
    assert torch.equal(fgsm_perturbation(g, 0.1), 0.1 * g.sign())
    assert project_linf(torch.randn(10, generator=gen) * 5, 0.2).abs().max() <= 0.2
    start = freelb_init((2, 5, 4), 1.0, torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))
    assert start[0, 3:].abs().sum() == 0 and torch.all(start.reshape(2, -1).norm(dim=1) <= 1.0)


def test_symmetric_kl_properties_and_reference():
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    kl = symmetric_kl(a, b)
    assert torch.allclose(kl, symmetric_kl(b, a)) and kl > 0
    assert symmetric_kl(a, a).abs() < 1e-7
    la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
    ref = 0.5 * (F.kl_div(lb, la, log_target=True, reduction="batchmean")
                 + F.kl_div(la, lb, log_target=True, reduction="batchmean"))
    assert torch.allclose(kl, ref, atol=1e-6)
    # span logits: a distribution over positions; masked positions do not count
    s1, s2 = torch.randn(2, 7, generator=gen), torch.randn(2, 7, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1] * 7])
    s2b = s2.clone()
    s2b[0, 5] = 50.0
    assert torch.allclose(symmetric_kl(s1, s2, mask), symmetric_kl(s1, s2b, mask))
    out1 = {"start_logits": s1, "end_logits": s2}
    out2 = {"start_logits": s2, "end_logits": s1}
    assert torch.allclose(rdrop_kl(out1, out2, mask), symmetric_kl(s1, s2, mask))
    # token logits: padded tokens are left out of the mean
    t1, t2 = torch.randn(2, 4, 3, generator=gen), torch.randn(2, 4, 3, generator=gen)
    tm = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    t2b = t2.clone()
    t2b[0, 3] += 10
    assert torch.allclose(rdrop_kl({"logits": t1}, {"logits": t2}, tm), rdrop_kl({"logits": t1}, {"logits": t2b}, tm))


def test_focal_loss_reduces_to_cross_entropy_and_weights():
    gen = torch.Generator().manual_seed(3)
    logits, labels = torch.randn(16, 4, generator=gen), torch.randint(0, 4, (16,), generator=gen)
    assert torch.allclose(focal_loss(logits, labels, gamma=0.0), F.cross_entropy(logits, labels), atol=1e-6)
    w = [0.5, 1.0, 2.0, 4.0]
    ref = F.cross_entropy(logits, labels, weight=torch.tensor(w), reduction="sum") / 16
    assert torch.allclose(focal_loss(logits, labels, 0.0, alpha=w), ref, atol=1e-6)
    assert torch.allclose(weighted_cross_entropy(logits, labels, w), ref, atol=1e-6)
    p = F.softmax(logits, -1).gather(1, labels[:, None]).squeeze(1)
    manual = (-(1 - p) ** 2 * p.log()).mean()
    assert torch.allclose(focal_loss(logits, labels, gamma=2.0), manual, atol=1e-6)
    assert focal_loss(logits, labels, 2.0) < F.cross_entropy(logits, labels)
    ignored = labels.clone()
    ignored[:4] = -100
    assert torch.allclose(focal_loss(logits, ignored, 0.0), F.cross_entropy(logits, ignored), atol=1e-6)
    two = torch.randn(8, 2, generator=gen)
    y = torch.randint(0, 2, (8,), generator=gen)
    assert torch.allclose(focal_loss(two, y, 0.0, alpha=0.25), focal_loss(two, y, 0.0, alpha=[0.75, 0.25]))
    with pytest.raises(ValueError, match="scalar focal alpha"):
        focal_loss(logits, labels, 2.0, alpha=0.25)
    with pytest.raises(ValueError, match="out of range"):
        focal_loss(logits, torch.full((16,), 7), 2.0)


def test_label_smoothing_matches_torch():
    gen = torch.Generator().manual_seed(4)
    logits, labels = torch.randn(10, 5, generator=gen), torch.randint(0, 5, (10,), generator=gen)
    assert torch.allclose(label_smoothing_loss(logits, labels, 0.1),
                          torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, labels), atol=1e-6)


def test_class_weights_from_counts_match_sklearn():
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    counts = [50, 30, 15, 5]
    y = np.repeat(np.arange(4), counts)
    assert np.allclose(class_weights_from_counts(counts, "balanced"),
                       compute_class_weight("balanced", classes=np.arange(4), y=y))
    sq = class_weights_from_counts(counts, "inverse_sqrt")
    assert math.isclose(sum(sq) / 4, 1.0) and sq[3] > sq[2] > sq[1] > sq[0]
    eff = class_weights_from_counts(counts, "effective", beta=0.99)
    assert eff[3] > eff[0] and math.isclose(sum(eff) / 4, 1.0)
    assert class_weights_from_counts([10, 0, 10], "balanced")[1] == 0.0
    with pytest.raises(ValueError, match="one of"):
        class_weights_from_counts(counts, "median")


def test_decay_groups_exclude_bias_and_norm(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    from nlp_cv_tricks.engine.trainer import param_groups

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    names = no_decay_parameter_names(model)
    assert "bert.embeddings.LayerNorm.weight" in names and "classifier.bias" in names
    assert "bert.encoder.layer.0.attention.self.query.weight" not in names
    groups = decay_parameter_groups(model, 0.01, lr=1e-3)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0] and all(g["lr"] == 1e-3 for g in groups)
    decayed = {id(p) for p in groups[0]["params"]}
    by_name = dict(model.named_parameters())
    assert all(id(by_name[n]) not in decayed for n in names)
    # the trainer's own grouping decays exactly the same tensors
    assert decayed == {id(p) for p in param_groups(model, 0.01)[0]["params"]}
    assert len(decay_parameter_groups(model, 0.0)) == 1  # off: one group without decay
    assert len(decay_parameter_groups(model, 0.01, exclude_embeddings=True)[0]["params"]) < len(decayed)


def test_lr_halving_helpers():
    assert list(halving_values(0.01, 0.5, min_lr=0.001)) == [0.01, 0.005, 0.0025, 0.00125]
    assert is_improvement(0.8, None) and is_improvement(0.8, 0.7) and not is_improvement(0.7, 0.7)
    assert is_improvement(0.3, 0.4, "min") and not is_improvement(0.81, 0.8, "max", threshold=0.05)
    st = PlateauState("max", patience=2)
    assert [st.update(v) for v in (0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.7)] == [False, False, False, True, False,
                                                                            False, True]
    # a LambdaLR schedule keeps the halved level instead of overwriting it
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    opt.step()
    sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 0.05)
    assert scale_lr_(opt, 0.5, sched) == [0.025]
    opt.step()
    sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 0.05 / 3 * 1.0, rel_tol=1e-6)
    assert scale_lr_(opt, 1e-9, sched, min_lr=1e-4) == [1e-4]


def test_reinit_schemes(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    lin = torch.nn.Linear(20, 30)
    reinit_(lin, "xavier_uniform", generator=torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / (20 + 30))
    assert lin.weight.abs().max() <= bound and lin.bias.abs().sum() == 0
    reinit_(lin, "trunc_normal", std=0.02, generator=torch.Generator().manual_seed(0))
    assert lin.weight.abs().max() <= 0.04 and 0.01 < lin.weight.std() < 0.03
    emb = torch.nn.Embedding(10, 4, padding_idx=0)
    ln = torch.nn.LayerNorm(4)
    with torch.no_grad():
        ln.weight.fill_(3.0)
    reinit_(torch.nn.Sequential(emb, ln), "xavier_normal")
    assert emb.weight[0].abs().sum() == 0 and torch.all(ln.weight == 1.0)

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    before = copy.deepcopy(model.state_dict())
    trick = Init("xavier_uniform", target="head", seed=3)
    trick.apply(model)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.weight"}  # bias was already zero; nothing outside the head moved
    other = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    Init("xavier_uniform", target="head", seed=3).apply(other)
    assert torch.equal(other.classifier.weight, model.classifier.weight)  # same seed: same weights
    with pytest.raises(ValueError, match="no module"):
        Init(target=["nope"]).apply(model)


def test_embedding_dropout_modes():
    x = torch.ones(4, 6, 8)
    y = embedding_dropout(x, 0.5, "token", generator=torch.Generator().manual_seed(0))
    row_zero = (y == 0).all(-1)
    assert row_zero.any() and ((y == 0).any(-1) == row_zero).all()  # whole token vectors dropped
    assert torch.allclose(y[~row_zero], torch.full_like(y[~row_zero], 2.0))
    assert torch.equal(embedding_dropout(x, 0.5, "element", training=False), x)
    with pytest.raises(ValueError):
        embedding_dropout(x, 1.0)


def test_registry_rejects_bad_options():
    with pytest.raises(ValueError, match="did you mean 'epsilon'"):
        build_tricks([{"fgm": {"epsilom": 1.0}}])
    with pytest.raises(ValueError, match="replace the loss"):
        build_tricks(["focal_loss", "class_weights"])
    with pytest.raises(ValueError, match="must be > 0"):
        build_tricks([{"pgd": {"alpha": -1}}])
    with pytest.raises(ValueError, match="regular expressions"):
        build_tricks([{"awp": {"params": "("}}])
    with pytest.raises(ValueError, match=r"'fgm' appears twice \(tricks\[0\] and tricks\[2\]\)"):
        build_tricks(["fgm", "rdrop", {"fgm": {"epsilon": 0.5}}])
    tricks = build_tricks(["fgm", {"pgd": {"steps": 2}}, "rdrop", {"focal_loss": {"gamma": 1.0}}])
    assert [t.name for t in tricks] == ["fgm", "pgd", "rdrop", "focal_loss"]


# =========================================================================================================
# through the real trainer
# =========================================================================================================
def _reset_accelerate():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


class Probe(Trick):
    """Test trick: records the batch, the initial weights, and at every optimizer step the gradients, the
    weights and the hooks left on the model."""

    name = "probe"

    def __init__(self):
        self.init_state = None
        self.batches, self.grads, self.weights, self.hooks = [], [], [], []

    def on_step_start(self, step):
        m = step.unwrapped_model
        if self.init_state is None:
            self.init_state = copy.deepcopy(m.state_dict())
        self.batches.append({k: v.clone() for k, v in step.batch.items()})

    def before_optimizer_step(self, step):
        m = step.unwrapped_model
        self.grads.append({n: p.grad.detach().clone() for n, p in m.named_parameters() if p.grad is not None})
        self.weights.append({n: p.detach().clone() for n, p in m.named_parameters()})
        self.hooks.append(len(m.get_input_embeddings()._forward_hooks) + len(m._forward_pre_hooks))


def _fit(tiny_bert, toy_data, out, *overrides, probe=True):
    from nlp_cv_tricks.runner import build_trainer

    _reset_accelerate()
    torch.manual_seed(0)
    recipe = tiny_recipe(tiny_bert, toy_data, out, "train.max_grad_norm=null", "output.save_best=false",
                         "train.eval_each_epoch=false", *overrides)
    trainer = build_trainer(recipe)
    pr = Probe()
    if probe:
        trainer.tricks.append(pr)
    trainer.fit()
    return trainer, pr


def _fresh(tiny_bert, probe):
    from transformers import AutoModelForSequenceClassification

    m = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    m.load_state_dict(probe.init_state)
    m.train()
    return m


def _loss(model, batch, delta=None):
    e = model.get_input_embeddings()(batch["input_ids"])
    e.retain_grad()
    x = e if delta is None else e + delta
    out = model(inputs_embeds=x, attention_mask=batch["attention_mask"], token_type_ids=batch.get("token_type_ids"))
    return F.cross_entropy(out.logits.float(), batch["labels"]), e


def _differs(a, b, rel=0.01):
    return bool((a - b).norm() > rel * b.norm())


def _assert_grads_equal(model, grads, atol=1e-6):
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, grads[n], atol=atol, rtol=1e-4), n


ONE_STEP = ("train.max_steps=1", "train.optimizer=sgd")


def test_fgm_gradient_matches_reference(tiny_bert, toy_data, tmp_path):
    _, probe = _fit(tiny_bert, toy_data, tmp_path / "fgm", "tricks=[{fgm: {epsilon: 0.5}}]", *ONE_STEP)
    _, plain = _fit(tiny_bert, toy_data, tmp_path / "plain", "tricks=[]", *ONE_STEP)
    batch = probe.batches[0]
    m = _fresh(tiny_bert, probe)
    loss0, e = _loss(m, batch)
    loss0.backward()
    r = fgm_perturbation(e.grad, 0.5, mask=batch["attention_mask"])
    _loss(m, batch, r)[0].backward()
    _assert_grads_equal(m, probe.grads[0])
    w = "bert.encoder.layer.0.attention.self.query.weight"
    assert _differs(probe.grads[0][w], plain.grads[0][w])  # FGM did change the gradient
    assert probe.hooks == [0]  # the hook is gone before the optimizer step
    assert all(torch.equal(probe.weights[0][n], probe.init_state[n]) for n in probe.weights[0])


def test_pgd_and_freelb_gradients_match_reference(tiny_bert, toy_data, tmp_path):
    _, pgd = _fit(tiny_bert, toy_data, tmp_path / "pgd", "tricks=[{pgd: {steps: 2, alpha: 0.3, epsilon: 0.4}}]",
                  *ONE_STEP)
    batch, mask = pgd.batches[0], pgd.batches[0]["attention_mask"]
    m = _fresh(tiny_bert, pgd)
    loss0, e = _loss(m, batch)
    loss0.backward()
    d1 = pgd_step(torch.zeros_like(e), e.grad, 0.3, 0.4, mask=mask)
    d = d1.clone().requires_grad_(True)
    (gd,) = torch.autograd.grad(_loss(m, batch, d)[0], d)  # intermediate pass: no parameter gradient
    d2 = pgd_step(d1, gd, 0.3, 0.4, mask=mask)
    assert torch.all(d2.reshape(d2.size(0), -1).norm(dim=1) <= 0.4 + 1e-6)
    _loss(m, batch, d2)[0].backward()
    _assert_grads_equal(m, pgd.grads[0])
    assert pgd.hooks == [0]

    _, fl = _fit(tiny_bert, toy_data, tmp_path / "freelb", "tricks=[{freelb: {steps: 2, alpha: 0.2}}]", *ONE_STEP)
    m = _fresh(tiny_bert, fl)
    loss0, e = _loss(m, batch)
    loss0.backward()
    d1 = pgd_step(torch.zeros_like(e), e.grad, 0.2, 0.0, mask=mask)
    d = d1.clone().requires_grad_(True)
    (_loss(m, batch, d)[0] / 2).backward()  # FreeLB: every ascent pass adds its (1/K) gradient
    d2 = pgd_step(d1, d.grad, 0.2, 0.0, mask=mask)
    (_loss(m, batch, d2)[0] / 2).backward()
    _assert_grads_equal(m, fl.grads[0])


def test_awp_restores_weights_and_changes_gradients(tiny_bert, toy_data, tmp_path):
    _, awp = _fit(tiny_bert, toy_data, tmp_path / "awp", "tricks=[{awp: {adv_lr: 0.5, adv_eps: 0.05}}]", *ONE_STEP)
    _, plain = _fit(tiny_bert, toy_data, tmp_path / "plain", "tricks=[]", *ONE_STEP)
    assert all(torch.equal(awp.weights[0][n], awp.init_state[n]) for n in awp.weights[0])  # restored exactly
    w = "bert.encoder.layer.1.output.dense.weight"
    assert _differs(awp.grads[0][w], plain.grads[0][w])
    # reference: perturb the selected weights by hand, second pass, restore
    m = _fresh(tiny_bert, awp)
    batch = awp.batches[0]
    _loss(m, batch)[0].backward()
    trick = AWP(adv_lr=0.5, adv_eps=0.05)
    from nlp_cv_tricks.tricks.adversarial import awp_perturbation

    with torch.no_grad():
        for n, p in trick.targets(m):
            w0 = p.detach().clone()
            p.add_(awp_perturbation(p, p.grad, 0.5))
            p.copy_(torch.clamp(p, w0 - 0.05 * w0.abs(), w0 + 0.05 * w0.abs()))
    _loss(m, batch)[0].backward()
    _assert_grads_equal(m, awp.grads[0])


# tricks whose result depends on how a batch is split, by design (so 8 = 2 x 4 cannot hold)
NOT_SPLIT_INVARIANT = {
    "awp": "the weight perturbation is scaled to each micro-batch's own gradient (a 4-row gradient is not an "
           "8-row one); AWP's accumulation is checked in test_awp_uses_only_this_micro_batch_gradient",
    "embedding_dropout": "the random masks are drawn per micro-batch over its padded length, so 2 x 4 rows draw "
                         "other masks than 8 rows",
}


def test_every_trick_of_the_table_has_a_case():
    from trick_cases import IMAGE, IMAGE_ONLY, TEXT

    from nlp_cv_tricks.tricks.registry import BUILTIN_TRICKS

    assert set(TEXT) | set(IMAGE_ONLY) == set(BUILTIN_TRICKS) and not set(TEXT) & set(IMAGE_ONLY)
    assert set(IMAGE) == set(IMAGE_ONLY)
    assert set(NOT_SPLIT_INVARIANT) <= set(TEXT)


@pytest.mark.parametrize("name,spec", cases(NOT_SPLIT_INVARIANT, extra={"plain": "[]",
                                                                       "rdrop_concat": "[{rdrop: {concat: true}}]"}))
def test_same_result_with_and_without_accumulation(tiny_bert, toy_data, tmp_path, name, spec):
    common = (f"tricks={spec}", "train.max_steps=2", "train.optimizer=sgd", "train.learning_rate=0.5")
    t1, p1 = _fit(tiny_bert, toy_data, tmp_path / "a", "train.batch_size=8", *common)
    t2, p2 = _fit(tiny_bert, toy_data, tmp_path / "b", "train.batch_size=4",
                  "train.gradient_accumulation_steps=2", *common)
    assert len(p1.grads) == len(p2.grads) == 2 and len(p2.batches) == 4
    for g1, g2 in zip(p1.grads, p2.grads):
        for n in g1:
            assert torch.allclose(g1[n], g2[n], atol=2e-6, rtol=1e-4), (name, n)
    s1 = t1.accelerator.unwrap_model(t1.model).state_dict()
    s2 = t2.accelerator.unwrap_model(t2.model).state_dict()
    for k in s1:
        assert torch.allclose(s1[k], s2[k], atol=1e-5), (name, k)
    assert p1.hooks == [0, 0] and p2.hooks == [0, 0]


def test_bf16_paths_run_on_cpu(tiny_bert, toy_data, tmp_path):
    for i, tricks in enumerate(("[fgm]", "[{pgd: {steps: 2}}]", "[freelb]", "[awp]", "[rdrop]", "[focal_loss]")):
        trainer, probe = _fit(tiny_bert, toy_data, tmp_path / f"bf16_{i}", f"tricks={tricks}", "train.max_steps=2",
                              "train.mixed_precision=bf16", "train.cpu=true")
        assert trainer.accelerator.mixed_precision == "bf16"
        assert all(torch.isfinite(g).all() for grads in probe.grads for g in grads.values()), tricks
        assert probe.hooks == [0, 0]
    _reset_accelerate()


def test_class_weights_and_lr_halving_and_init_through_trainer(tiny_bert, toy_data, tmp_path):
    trainer, _ = _fit(tiny_bert, toy_data, tmp_path / "cw", "tricks=[class_weights]", "train.max_steps=1")
    counts = trainer.label_counts
    assert sum(counts) == 192 and trainer.tricks[0]._weights == pytest.approx(class_weights_from_counts(counts))

    # threshold 1.0: no evaluation counts as an improvement after the first, so the LR halves at each one
    trainer, _ = _fit(tiny_bert, toy_data, tmp_path / "lr", "train.epochs=3", "train.eval_each_epoch=true",
                      "train.lr_scheduler=constant", "train.learning_rate=1e-3",
                      "tricks=[{lr_halving: {start_lr: 0.004, threshold: 1.0}}]")
    assert trainer.tricks[0].state.halvings == 2
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.004 / 4)
    rows = [json.loads(line) for line in (tmp_path / "lr" / "history.jsonl").read_text().splitlines()]
    assert [r["lr_halvings"] for r in rows if "lr_halvings" in r] == [0, 1, 2]  # logged with each evaluation

    trainer, probe = _fit(tiny_bert, toy_data, tmp_path / "init", "train.max_steps=1",
                          "tricks=[{init: {scheme: trunc_normal, target: all, std: 0.02}}]")
    w = probe.weights[0]["bert.encoder.layer.0.attention.self.query.weight"]
    assert w.abs().max() <= 0.04 + 1e-7  # re-initialised before the first step (truncated at 2 std)
    assert trainer.tricks[0].state_dict() == {"done": True}

    trainer, probe = _fit(tiny_bert, toy_data, tmp_path / "edrop", "train.max_steps=1",
                          "tricks=[{embedding_dropout: {p: 0.2, mode: token}}]")
    model = trainer.accelerator.unwrap_model(trainer.model)
    assert probe.hooks == [1] and len(model.get_input_embeddings()._forward_hooks) == 0  # removed at fit end


# =========================================================================================================
# by hand: fp16 with a GradScaler, R-Drop with dropout, pixels, AWP under accumulation
# =========================================================================================================
class _HandAccelerator:
    """Single process; ``backward`` scales the loss like Accelerate does with a GradScaler."""

    num_processes = 1

    def __init__(self, scaler=None):
        self.scaler = scaler

    def unwrap_model(self, m):
        return m

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def no_sync(self, m):
        return contextlib.nullcontext()


class _HandTask(ClassificationTask):
    def __init__(self, key=None, autocast=None):
        super().__init__(None)
        self.key, self.autocast = key, autocast

    def forward(self, model, batch):
        ctx = torch.autocast("cpu", dtype=self.autocast) if self.autocast else contextlib.nullcontext()
        with ctx:
            if self.key:
                return model(batch[self.key])
            return model(**self.model_inputs(batch))

    def logits_of(self, outputs):
        return outputs if torch.is_tensor(outputs) else outputs.logits


class _HandTrainer:
    def __init__(self, model, tricks, scaler=None, task=None):
        self.accelerator = _HandAccelerator(scaler)
        self.model, self.tricks = model, tricks
        self.task = task or _HandTask()
        self._crit = next((t for t in tricks if t.replaces_criterion), None)

    def criterion(self, outputs, batch, step=None):
        if self._crit is not None:
            return self._crit.loss_fn(self.task.logits_of(outputs), self.task.labels_of(batch), step)
        return F.cross_entropy(self.task.logits_of(outputs).float(), batch["labels"])

    def step(self, batch, global_step=0):
        """One micro-batch in the documented order (events.py)."""
        step = StepContext(self, batch, global_step, True)
        for t in self.tricks:
            t.on_step_start(step)

        def compute():
            out = self.task.forward(self.model, step.batch)
            return self.criterion(out, step.batch, step), out

        fn = compute
        for t in reversed(self.tricks):
            fn = (lambda t, inner: (lambda: t.forward_loss(step, inner)))(t, fn)
        loss, _ = fn()
        step.backward(loss)
        for t in self.tricks:
            t.after_backward(step)
        return step


def _tiny_bert_model(tiny_bert, dropout=0.0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout).train()


def _toy_batch(n=6, length=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 25, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.long)
    mask[0, 5:] = 0
    ids[0, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (n,), generator=g)}


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("make", [lambda: FGM(epsilon=0.5), lambda: PGD(steps=2), lambda: FreeLB(steps=2)],
                         ids=["fgm", "pgd", "freelb"])
def test_fp16_with_grad_scaler_matches_fp32(tiny_bert, make):
    batch = _toy_batch()
    ref_model = _tiny_bert_model(tiny_bert)
    _HandTrainer(ref_model, [make()]).step(batch)
    ref = _grads(ref_model)
    model = _tiny_bert_model(tiny_bert)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    _HandTrainer(model, [make()], scaler=scaler, task=_HandTask(autocast=torch.float16)).step(batch)
    got = {n: g / scaler.get_scale() for n, g in _grads(model).items()}
    num = sum((got[n] - ref[n]).norm() ** 2 for n in ref).sqrt()
    den = sum(ref[n].norm() ** 2 for n in ref).sqrt()
    assert torch.isfinite(num) and num / den < 0.05  # fp16 rounding only
    assert len(model.get_input_embeddings()._forward_hooks) == 0


def test_rdrop_two_dropout_passes(tiny_bert):
    batch = _toy_batch()
    model = _tiny_bert_model(tiny_bert, dropout=0.3)
    torch.manual_seed(5)
    o1 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    o2 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = 0.5 * (F.cross_entropy(o1, batch["labels"]) + F.cross_entropy(o2, batch["labels"])) \
        + 2.0 * symmetric_kl(o1, o2)
    trick = RDrop(alpha=2.0)
    trainer = _HandTrainer(model, [trick])
    torch.manual_seed(5)
    step = StepContext(trainer, batch, 0, True)
    loss, out = trick.forward_loss(step, lambda: (
        lambda o: (trainer.criterion(o, batch), o))(trainer.task.forward(model, batch)))
    assert torch.allclose(loss, expected, atol=1e-6) and step.logs["rdrop_kl"] > 0
    assert torch.allclose(out.logits, o1)
    # concat mode: one forward on the doubled batch; returns the first half's outputs
    concat = RDrop(alpha=2.0, concat=True)
    step = StepContext(_HandTrainer(model, [concat]), batch, 0, True)
    loss_c, out_c = concat.forward_loss(step, None)
    assert out_c.logits.shape == (6, 2) and torch.isfinite(loss_c) and step.logs["rdrop_kl"] > 0


class _TinyConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 3)

    def forward(self, pixel_values):
        return self.fc(torch.relu(self.conv(pixel_values)).flatten(1))


@pytest.mark.parametrize("kind", ["fgsm", "pgd"])
def test_pixel_adversarial(kind):
    g = torch.Generator().manual_seed(0)
    batch = {"pixel_values": torch.rand(5, 3, 8, 8, generator=g), "labels": torch.randint(0, 3, (5,), generator=g)}
    x0 = batch["pixel_values"].clone()
    model = _TinyConvNet()
    trick = PixelFGSM(epsilon=0.05, clamp=[0.0, 1.0]) if kind == "fgsm" else \
        PixelPGD(epsilon=0.05, alpha=0.02, steps=3, random_start=False)
    _HandTrainer(model, [trick], task=_HandTask(key="pixel_values")).step(batch)
    got = _grads(model)
    assert torch.equal(batch["pixel_values"], x0) and len(model._forward_pre_hooks) == 0
    ref = _TinyConvNet()
    x = x0.clone().requires_grad_(True)
    F.cross_entropy(ref(x), batch["labels"]).backward()
    if kind == "fgsm":
        adv = (x0 + 0.05 * x.grad.sign()).clamp(0, 1)
    else:
        delta = project_linf(0.02 * x.grad.sign(), 0.05)
        for _ in range(2):
            d = delta.clone().requires_grad_(True)
            (gd,) = torch.autograd.grad(F.cross_entropy(ref(x0 + d), batch["labels"]), d)
            delta = project_linf(delta + 0.02 * gd.sign(), 0.05)
        adv = x0 + delta
    F.cross_entropy(ref(adv), batch["labels"]).backward()
    for n, p in ref.named_parameters():
        assert torch.allclose(p.grad, got[n], atol=1e-6), n


def test_awp_uses_only_this_micro_batch_gradient(tiny_bert):
    """Under accumulation the gradient of earlier micro-batches is already in .grad; AWP's direction (and so
    its contribution) must not depend on it."""
    batch = _toy_batch()
    m1 = _tiny_bert_model(tiny_bert)
    _HandTrainer(m1, [AWP(adv_lr=0.5, adv_eps=0.05)]).step(batch)
    m2 = _tiny_bert_model(tiny_bert)
    earlier = {n: torch.randn_like(p) for n, p in m2.named_parameters()}
    for n, p in m2.named_parameters():
        p.grad = earlier[n].clone()
    _HandTrainer(m2, [AWP(adv_lr=0.5, adv_eps=0.05)]).step(batch)
    g1, g2 = _grads(m1), _grads(m2)
    for n in g1:
        assert torch.allclose(g2[n] - earlier[n], g1[n], atol=1e-5), n


def test_embedding_tricks_work_on_a_model_without_get_input_embeddings():
    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Embedding(30, 8)
            self.out = torch.nn.Linear(8, 2)

        def forward(self, input_ids, attention_mask=None):
            return self.out(self.embed(input_ids).mean(1))

    batch = _toy_batch()
    with pytest.raises(ValueError, match="get_input_embeddings"):
        _HandTrainer(Bag(), [FGM()]).step(batch)
    model = Bag()
    _HandTrainer(model, [FGM(module="embed")]).step(batch)
    assert model.embed.weight.grad is not None and len(model.embed._forward_hooks) == 0


def test_two_adversarial_tricks_log_their_own_losses(tiny_bert, toy_data, tmp_path):
    _fit(tiny_bert, toy_data, tmp_path / "two", "tricks=[fgm, awp]", "train.max_steps=2", "train.logging_steps=1",
         probe=False)
    rows = [json.loads(line) for line in (tmp_path / "two" / "history.jsonl").read_text().splitlines()]
    keys = {k for r in rows for k in r if k.startswith("train/adv_loss")}
    assert keys == {"train/adv_loss/fgm", "train/adv_loss/awp"}



def test_token_embedding_dropout_is_refused_on_a_bag():
    from nlp_cv_tricks.tricks.regularization import EmbeddingDropout

    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bag = torch.nn.EmbeddingBag(10, 4)

        def get_input_embeddings(self):
            return self.bag

    with pytest.raises(ValueError, match="mode='token' needs per-token embeddings"):
        EmbeddingDropout(p=0.5, mode="token").attach(Bag())
    EmbeddingDropout(p=0.5, mode="element").attach(Bag())
