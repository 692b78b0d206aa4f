"""SparseRowSGD (compiled CPU update of sparse row gradients) and the FastText bag's sparse backward: both must
give torch's own results."""

import copy

import pytest
import torch

from nlp_cv_tricks.engine import optim as nct_optim
from nlp_cv_tricks.models.text_baselines.layers_fasttext import _FastTextBag
from nlp_cv_tricks.engine.optim import SparseRowSGD, fast_sparse_available

needs_numba = pytest.mark.skipif(not fast_sparse_available(), reason="numba is not installed")


def _bags(seed: int, rows: int = 40, texts: int = 6):
    """Flat ids with repeats (the same n-gram in several texts, and twice in one) and one empty bag."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 9, (texts,), generator=g)
    counts[2] = 0
    ids = torch.randint(0, rows, (int(counts.sum()),), generator=g)
    ids[1] = ids[0]
    offsets = torch.cumsum(counts, 0) - counts
    return ids, offsets


def _pair(rows=40, dim=5, dtype=torch.float32):
    torch.manual_seed(0)
    ours = _FastTextBag(rows, dim, mode="mean", sparse=True).to(dtype)
    ref = torch.nn.EmbeddingBag(rows, dim, mode="mean", sparse=True).to(dtype)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def test_bag_sparse_backward_equals_torch():
    ours, ref = _pair()
    for seed in range(5):
        ids, offsets = _bags(seed)
        w = torch.randn(len(offsets), 5)
        ours.weight.grad = ref.weight.grad = None
        out, expected = ours(ids, offsets), ref(ids, offsets)
        assert torch.equal(out, expected)
        assert out[2].abs().sum() == 0  # the empty bag
        (out * w).sum().backward()
        (expected * w).sum().backward()
        a, b = ours.weight.grad, ref.weight.grad
        assert a.is_sparse and not a.is_coalesced()
        assert torch.equal(a._indices(), b._indices())
        assert torch.allclose(a._values(), b._values(), rtol=0, atol=1e-7)
        assert torch.allclose(a.to_dense(), b.to_dense(), atol=1e-6)


def test_bag_other_uses_are_embedding_bag():
    """2-D input, sum mode, per-sample weights, no grad: nn.EmbeddingBag's own forward, unchanged."""
    ours, ref = _pair()
    ids = torch.tensor([[1, 2, 3], [4, 4, 5]])
    assert torch.equal(ours(ids), ref(ids))
    with torch.no_grad():
        flat, off = _bags(1)
        assert torch.equal(ours(flat, off), ref(flat, off))
    # options the direct backward does not implement go to torch, which refuses them with sparse gradients
    scaled = _FastTextBag(40, 5, mode="mean", sparse=True, scale_grad_by_freq=True)
    with pytest.raises(RuntimeError, match="scale_grad_by_freq"):
        scaled(*_bags(0)).sum().backward()
    # forward hooks (where FGM/PGD and diagnostics attach) still fire on the subclass
    seen = []
    h = ours.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    ours(*_bags(2))
    h.remove()
    assert seen == [torch.Size([6, 5])]


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_row_sgd_matches_torch_sgd(dtype):
    """Several steps on a bag + a dense layer, two groups with different lr and a changing lr (a scheduler): the
    same weights as torch.optim.SGD, and the gradients left in place after the step."""
    ours, ref = _pair(dtype=dtype)
    lin_a = torch.nn.Linear(5, 3).to(dtype)
    lin_b = torch.nn.Linear(5, 3).to(dtype)
    lin_b.load_state_dict(lin_a.state_dict())
    opt_a = SparseRowSGD([{"params": ours.parameters(), "lr": 0.9}, {"params": lin_a.parameters()}], lr=0.3)
    opt_b = torch.optim.SGD([{"params": ref.parameters(), "lr": 0.9}, {"params": lin_b.parameters()}], lr=0.3)
    sched_a = torch.optim.lr_scheduler.LambdaLR(opt_a, lambda s: 1 - s / 10)
    sched_b = torch.optim.lr_scheduler.LambdaLR(opt_b, lambda s: 1 - s / 10)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    for seed in range(6):
        ids, offsets = _bags(seed)
        for emb, lin, opt, sched in ((ours, lin_a, opt_a, sched_a), (ref, lin_b, opt_b, sched_b)):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(lin(emb(ids, offsets)), y).backward()
            grad = emb.weight.grad
            opt.step()
            sched.step()
            assert emb.weight.grad is grad  # left in place, as torch's step leaves it
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(ours.weight, ref.weight, atol=tol) and not torch.equal(ours.weight, _pair(dtype=dtype)[0].weight)
    assert torch.allclose(lin_a.weight, lin_b.weight, atol=tol)
    # the state is torch's SGD state: it loads into a plain SGD and back
    torch.optim.SGD([{"params": ref.parameters()}, {"params": lin_b.parameters()}], lr=0.3).load_state_dict(
        opt_a.state_dict())


@needs_numba
def test_sparse_row_sgd_uses_the_kernel_and_hooks_run_once(monkeypatch):
    calls = []
    kernels = nct_optim._kernels()
    monkeypatch.setattr(nct_optim, "_KERNEL", {**kernels, "sgd": lambda *a: calls.append(1) or kernels["sgd"](*a)})
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)  # torch's SGD.step gets hook-wrapped
    ours, _ = _pair()
    lin = torch.nn.Linear(5, 2)
    opt = SparseRowSGD(list(ours.parameters()) + list(lin.parameters()), lr=0.1)
    assert calls == [1]  # warmed up (numba loaded or compiled) when built, not in the first step
    calls.clear()
    hooks = []
    opt.register_step_pre_hook(lambda *a: hooks.append("pre"))
    opt.register_step_post_hook(lambda *a: hooks.append("post"))
    lin(ours(*_bags(0))).sum().backward()
    before = lin.weight.detach().clone()
    opt.step()
    assert calls == [1] and hooks == ["pre", "post"]
    assert not torch.equal(lin.weight, before)  # the dense layer went through torch's step


def test_sparse_row_sgd_falls_back_to_torch(monkeypatch):
    """Momentum/weight decay groups, dense gradients, and no numba: torch's SGD, same results."""
    monkeypatch.setattr(nct_optim, "_KERNEL", False)  # numba missing
    ours, ref = _pair()
    opt_a, opt_b = SparseRowSGD(ours.parameters(), lr=0.5), torch.optim.SGD(ref.parameters(), lr=0.5)
    ids, offsets = _bags(3)
    for emb, opt in ((ours, opt_a), (ref, opt_b)):
        emb(ids, offsets).sum().backward()
        opt.step()
    assert torch.equal(ours.weight, ref.weight)
    # dense gradients with momentum
    monkeypatch.undo()
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    oa, ob = SparseRowSGD(a.parameters(), lr=0.1, momentum=0.9), torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3)
    for _ in range(3):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    assert torch.equal(a.weight, b.weight)


@needs_numba
def test_sparse_row_sgd_rejects_rows_out_of_range():
    w = torch.nn.Parameter(torch.zeros(4, 2))
    w.grad = torch.sparse_coo_tensor(torch.tensor([[1, 7]]), torch.ones(2, 2), (4, 2), check_invariants=False)
    v = torch.nn.Parameter(torch.zeros(3, 2))  # a parameter handled before the bad one
    v.grad = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.ones(1, 2), (3, 2))
    grad = w.grad
    with pytest.raises(IndexError, match="row index 7 is outside the parameter's 4 rows .this parameter was left"):
        SparseRowSGD([v, w], lr=1.0).step()
    assert (w == 0).all() and w.grad is grad and v.grad is not None  # gradients back in place after the error


def test_trainer_uses_sparse_row_sgd_for_sparse_models():
    from nlp_cv_tricks.config import TrainConfig
    from nlp_cv_tricks.engine.trainer import build_optimizer

    sparse = torch.nn.Sequential(torch.nn.EmbeddingBag(10, 4, sparse=True), torch.nn.Linear(4, 2))
    dense = torch.nn.Sequential(torch.nn.EmbeddingBag(10, 4), torch.nn.Linear(4, 2))
    cfg = TrainConfig(optimizer="sgd", momentum=0.0, weight_decay=0.0)
    assert type(build_optimizer(sparse, cfg)) is SparseRowSGD
    assert type(build_optimizer(dense, cfg)) is torch.optim.SGD


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_row_adagrad_matches_torch_adagrad(dtype):
    """Duplicate rows summed before squaring (torch coalesces), lr_decay, initial accumulator, maximize, a dense
    layer in its own group: the same weights and the same state as torch.optim.Adagrad after several steps."""
    from nlp_cv_tricks.engine.optim import SparseRowAdagrad

    ours, ref = _pair(dtype=dtype)
    lin_a, lin_b = torch.nn.Linear(5, 3).to(dtype), torch.nn.Linear(5, 3).to(dtype)
    lin_b.load_state_dict(lin_a.state_dict())
    kw = dict(lr=0.3, lr_decay=0.01, initial_accumulator_value=0.1, eps=1e-10)
    for maximize in (False, True):
        opt_a = SparseRowAdagrad([{"params": ours.parameters(), "lr": 0.5}, {"params": lin_a.parameters()}],
                                 maximize=maximize, **kw)
        opt_b = torch.optim.Adagrad([{"params": ref.parameters(), "lr": 0.5}, {"params": lin_b.parameters()}],
                                    maximize=maximize, **kw)
        y = torch.tensor([0, 1, 2, 0, 1, 2])
        for seed in range(6):
            ids, offsets = _bags(seed)
            for emb, lin, opt in ((ours, lin_a, opt_a), (ref, lin_b, opt_b)):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(lin(emb(ids, offsets)), y).backward()
                grad = emb.weight.grad
                opt.step()
                assert emb.weight.grad is grad
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        assert torch.allclose(ours.weight, ref.weight, atol=tol, rtol=0)
        assert torch.allclose(lin_a.weight, lin_b.weight, atol=tol, rtol=0)
        sa, sb = opt_a.state[ours.weight], opt_b.state[ref.weight]
        assert torch.equal(sa["step"], sb["step"]) and torch.allclose(sa["sum"], sb["sum"], atol=tol, rtol=0)
    assert not torch.equal(ours.weight, _pair(dtype=dtype)[0].weight)
    # the "row seen" marks are left clean for the next step
    assert (opt_a._row_slots[id(ours.weight)] == -1).all()
    torch.optim.Adagrad([{"params": ref.parameters()}, {"params": lin_b.parameters()}]).load_state_dict(
        opt_a.state_dict())


@needs_numba
def test_sparse_row_adagrad_rejects_rows_out_of_range_untouched():
    from nlp_cv_tricks.engine.optim import SparseRowAdagrad

    w = torch.nn.Parameter(torch.zeros(4, 2))
    w.grad = torch.sparse_coo_tensor(torch.tensor([[1, 7]]), torch.ones(2, 2), (4, 2), check_invariants=False)
    opt = SparseRowAdagrad([w], lr=1.0)
    with pytest.raises(IndexError, match="row index 7 is outside the parameter's 4 rows"):
        opt.step()
    assert (w == 0).all() and (opt.state[w]["sum"] == 0).all() and float(opt.state[w]["step"]) == 0
    assert w.grad is not None


def test_sparse_row_adagrad_without_numba_is_quiet(monkeypatch, recwarn):
    """torch's own sparse Adagrad (the path without numba) warns about "memory errors" on every run; nothing a
    user can act on, so SparseRowAdagrad keeps it out of the output."""
    from nlp_cv_tricks.engine.optim import SparseRowAdagrad

    monkeypatch.setattr(nct_optim, "_KERNEL", False)
    ours, _ = _pair()
    opt = SparseRowAdagrad(ours.parameters(), lr=0.1)
    ours(*_bags(0)).sum().backward()
    opt.step()
    assert not [w for w in recwarn if "Sparse invariant" in str(w.message)]


def test_trainer_uses_sparse_row_adagrad_for_sparse_models():
    from nlp_cv_tricks.config import TrainConfig
    from nlp_cv_tricks.engine.trainer import build_optimizer
    from nlp_cv_tricks.engine.optim import SparseRowAdagrad

    sparse = torch.nn.Sequential(torch.nn.EmbeddingBag(10, 4, sparse=True), torch.nn.Linear(4, 2))
    dense = torch.nn.Sequential(torch.nn.EmbeddingBag(10, 4), torch.nn.Linear(4, 2))
    cfg = TrainConfig(optimizer="adagrad", weight_decay=0.0)
    assert type(build_optimizer(sparse, cfg)) is SparseRowAdagrad
    assert type(build_optimizer(dense, cfg)) is torch.optim.Adagrad


def test_sparse_adam_updates_a_sparse_bag_and_its_dense_classifier():
    """torch's SparseAdam refuses FastText (a sparse bag next to a dense classifier); SparseDenseAdam gives the bag
    SparseAdam's update and the classifier Adam's (every row of its gradient is non-zero)."""
    from nlp_cv_tricks.config import TrainConfig
    from nlp_cv_tricks.engine.optim import SparseDenseAdam
    from nlp_cv_tricks.engine.trainer import build_optimizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.EmbeddingBag(40, 5, mode="mean", sparse=True), torch.nn.Linear(5, 3))
    ids, offsets = _bags(1)
    y = torch.tensor([0, 1, 2, 0, 1, 2])

    def loss_of(m):
        return torch.nn.functional.cross_entropy(m[1](m[0](ids, offsets)), y)

    ref = copy.deepcopy(model)
    ref_bag, ref_lin = ref
    with pytest.raises(RuntimeError, match="dense gradients"):
        loss_of(ref).backward()
        torch.optim.SparseAdam(list(ref.parameters()), lr=0.1).step()
    ref.zero_grad(set_to_none=True)
    opt = build_optimizer(model, TrainConfig(optimizer="sparse_adam", learning_rate=0.1, weight_decay=0.0))
    assert type(opt) is SparseDenseAdam
    start = model[0].weight.detach().clone()
    sparse_ref = torch.optim.SparseAdam(list(ref_bag.parameters()), lr=0.1)
    dense_ref = torch.optim.Adam(list(ref_lin.parameters()), lr=0.1)
    for _ in range(3):
        for m, o in ((model, (opt,)), (ref, (sparse_ref, dense_ref))):
            for x in o:
                x.zero_grad(set_to_none=True)
            loss_of(m).backward()
            for x in o:
                x.step()
    touched = torch.zeros(40, dtype=torch.bool)
    touched[ids] = True
    assert torch.allclose(model[0].weight, ref_bag.weight, atol=1e-6)
    assert (model[0].weight[touched] != start[touched]).all(dim=1).all()  # the rows of the batch moved
    assert torch.equal(model[0].weight[~touched], start[~touched])  # the others did not
    assert torch.allclose(model[1].weight, ref_lin.weight, atol=1e-5)
    assert torch.allclose(model[1].bias, ref_lin.bias, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adagrad", "sgd", "sparse_adam"])
def test_fasttext_kill_and_resume_with_sparse_row_optimizers(optimizer, tiny_bert, toy_data, tmp_path):
    """A FastText run with SparseRowAdagrad/SparseRowSGD killed mid-epoch and resumed from its checkpoint ends
    with the weights of the uninterrupted run: the optimizer state (Adagrad's step and squared sums) round-trips."""
    from test_trainer import _Kill, assert_same_weights, fit

    common = ["model.name=fasttext", "model.kwargs.embedding_dim=8", "model.kwargs.word_ngrams=2",
              "model.kwargs.bucket=101", "model.kwargs.tokenizer.level=word", f"train.optimizer={optimizer}",
              "train.momentum=0", "train.weight_decay=0", "train.learning_rate=0.5", "train.max_grad_norm=null",
              "train.epochs=2", "train.save_steps=5", "train.save_total_limit=null", "output.save_best=false"]
    t, _ = fit(tiny_bert, toy_data, tmp_path / "full", *common)
    assert type(t.optimizer.optimizer).__name__ == {"adagrad": "SparseRowAdagrad", "sgd": "SparseRowSGD",
                                                    "sparse_adam": "SparseDenseAdam"}[optimizer]
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_bert, toy_data, tmp_path / "crash", *common, tricks=[_Kill(at=13)])
    _, res = fit(tiny_bert, toy_data, tmp_path / "crash", *common, "train.resume_from=latest")
    assert res.global_step == 48
    assert_same_weights(tmp_path / "full/final", tmp_path / "crash/final", atol=1e-6)
