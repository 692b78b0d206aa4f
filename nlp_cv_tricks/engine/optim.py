"""Plain SGD with a faster update of sparse row gradients on CPU.

``SparseRowSGD`` is ``torch.optim.SGD`` (same arguments, same state, same hooks) except for one case: a
parameter whose gradient is a sparse COO tensor of whole rows (what ``nn.Embedding``/``nn.EmbeddingBag`` with
``sparse=True`` produce), on CPU, in float32/float64, in a group without momentum or weight decay. There
the update ``weight[rows[k]] -= lr * values[k]`` runs as one compiled loop over the gradient's rows (numba),
instead of torch's dense-plus-sparse ``add_``, which on CPU takes about 1.7x as long for FastText's bag of
~7,000 random rows of a 260k x 100 table per batch of 128 (benchmarks/RESULTS.md, baselines section 1). Duplicate
rows (the same n-gram in several texts) are applied one after the other: the same sum as ``add_`` of the
uncoalesced gradient, added in another order (results agree to float rounding, ~1e-7; tests/test_optim.py).

Why hand-written: neither torch nor a library that installs with any torch version has a CPU kernel for this
update (FBGEMM's table-batched embeddings fuse it into their own backward, but their wheels are built for one
torch release). numba is optional (``pip install "nlp-cv-tricks[fast]"``): without it, or outside the case
above, the step is torch's own.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch

__all__ = ["SparseDenseAdam", "SparseRowAdagrad", "SparseRowSGD", "fast_sparse_available"]

_KERNEL = None  # the compiled row updates by name, or False when numba is missing
_DTYPES = (torch.float32, torch.float64)


def _rows_axpy(weight, rows, values, alpha):  # pragma: no cover - compiled by numba
    """weight[rows[k]] += alpha * values[k], k in order; returns -1, or the first k whose row is out of range
    (then nothing is applied)."""
    n, d = values.shape
    limit = weight.shape[0]
    for k in range(n):
        r = rows[k]
        if r < 0 or r >= limit:
            return k
    for k in range(n):
        r = rows[k]
        for j in range(d):
            weight[r, j] += alpha * values[k, j]
    return -1


def _rows_adagrad_sums(state_sum, rows, values, slot, uniq, acc, sums):  # pragma: no cover - compiled
    """The first half of torch's sparse Adagrad step: the gradient's duplicate rows summed (``coalesce``) into
    ``acc[:m]`` with their row ids in ``uniq[:m]``, then ``state_sum[row] += g * g`` for each distinct row, the new
    sums copied to ``sums[:m]``. ``slot`` (one int64 per weight row, all -1) marks rows already seen and is left
    all -1 again. Returns m, or -(k + 1) for the first k whose row is out of range (nothing changed)."""
    n, d = values.shape
    limit = state_sum.shape[0]
    for k in range(n):
        r = rows[k]
        if r < 0 or r >= limit:
            return -(k + 1)
    m = 0
    for k in range(n):
        r = rows[k]
        s = slot[r]
        if s < 0:
            slot[r] = m
            uniq[m] = r
            for j in range(d):
                acc[m, j] = values[k, j]
            m += 1
        else:
            for j in range(d):
                acc[s, j] += values[k, j]
    for i in range(m):
        r = uniq[i]
        slot[r] = -1
        for j in range(d):
            total = state_sum[r, j] + acc[i, j] * acc[i, j]
            state_sum[r, j] = total
            sums[i, j] = total
    return m


def _kernel(name: str = "sgd"):
    """The compiled :func:`_rows_axpy` (``"sgd"``) or :func:`_rows_adagrad` (``"adagrad"``), cached on disk by
    numba where it can write; False without numba."""
    kernels = _kernels()
    return kernels[name] if kernels else False


def _kernels():
    global _KERNEL
    if _KERNEL is None:
        from ..utils.jit import njit

        compiled = {name: njit(fn) for name, fn in _PY_KERNELS.items()}
        _KERNEL = compiled if all(compiled.values()) else False
    return _KERNEL


_PY_KERNELS = {"sgd": _rows_axpy, "adagrad": _rows_adagrad_sums}


def fast_sparse_available() -> bool:
    """Whether the compiled sparse-row update can be used (numba importable)."""
    return bool(_kernel())


def _fast_case(p: torch.Tensor, g: torch.Tensor) -> bool:
    """A sparse COO gradient of whole rows of a contiguous 2-D CPU float parameter of the same dtype."""
    return (g.layout == torch.sparse_coo and g.sparse_dim() == 1 and g.dense_dim() == 1 and p.dim() == 2
            and p.device.type == "cpu" and g.device.type == "cpu" and p.dtype in _DTYPES and g.dtype == p.dtype
            and p.is_contiguous())


def _apply_rows(p: torch.Tensor, g: torch.Tensor, alpha: float, kernel) -> None:
    rows, values = _rows_and_values(p, g)
    # alpha in the parameter's precision, as torch's add_ computes it
    a = np.float32(alpha) if p.dtype == torch.float32 else np.float64(alpha)
    bad = kernel(p.detach().numpy(), rows.numpy(), values.numpy(), a)
    if bad >= 0:
        raise IndexError(f"SparseRowSGD: gradient row index {int(rows[bad])} is outside the parameter's "
                         f"{p.shape[0]} rows (this parameter was left unchanged)")


def _rows_and_values(p: torch.Tensor, g: torch.Tensor, negate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    rows = g._indices()[0]
    if rows.dtype != torch.int64:
        rows = rows.long()
    values = g._values()
    if values.shape[1] != p.shape[1]:
        raise ValueError(f"sparse row gradient with {values.shape[1]} columns for a parameter of shape "
                         f"{tuple(p.shape)}")
    return rows.contiguous(), (-values if negate else values).contiguous()


def _apply_adagrad(p: torch.Tensor, g: torch.Tensor, state_sum: torch.Tensor, clr: float, eps: float,
                   maximize: bool, slot: np.ndarray, kernel) -> None:
    """torch's sparse Adagrad step (``coalesce``; ``sum += g^2``; ``p -= clr * g / (sqrt(sum) + eps)``) in three
    passes: the compiled coalesce + sum update, torch's vectorised sqrt/divide on the distinct rows (a compiled
    scalar loop was slower there), the compiled row update."""
    rows, values = _rows_and_values(p, g, negate=maximize)
    n, d = rows.numel(), p.shape[1]
    np_dtype = np.float32 if p.dtype == torch.float32 else np.float64
    uniq, acc, sums = np.empty(n, np.int64), np.empty((n, d), np_dtype), np.empty((n, d), np_dtype)
    m = kernel(state_sum.numpy(), rows.numpy(), values.numpy(), slot, uniq, acc, sums)
    if m < 0:
        raise IndexError(f"SparseRowAdagrad: gradient row index {int(rows[-m - 1])} is outside the parameter's "
                         f"{p.shape[0]} rows (this parameter was left unchanged)")
    update = torch.from_numpy(acc[:m]) / torch.from_numpy(sums[:m]).sqrt_().add_(eps)
    _kernel("sgd")(p.detach().numpy(), uniq[:m], update.numpy(), np_dtype(-clr))


def _warm(dtype: torch.dtype, name: str) -> None:
    """Import numba and load (or compile) kernel ``name`` for ``dtype``."""
    if not _kernels():
        return
    w = torch.zeros(1, 1, dtype=dtype)
    g = torch.sparse_coo_tensor(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=dtype), (1, 1),
                                check_invariants=True)
    _apply_rows(w, g, 0.0, _kernel("sgd"))
    if name == "adagrad":
        _apply_adagrad(w, g, torch.zeros(1, 1, dtype=dtype), 0.0, 1e-10, False, np.full(1, -1, np.int64),
                       _kernel("adagrad"))


def _base_step(cls, optimizer) -> None:
    """``cls.step`` (torch's) on ``optimizer`` without its hook wrapper: the subclass's own wrapped step already
    ran the hooks once."""
    base = cls.step
    base = getattr(base, "__wrapped__", base) if getattr(base, "hooked", False) else base
    base(optimizer)


class _SparseRowsMixin:
    """The shared step of the two optimizers: each sparse row gradient the kernel can take is applied by
    ``_apply_fast`` and hidden from torch's own step, which then updates everything else; the gradients are back in
    place afterwards, whatever happens. Subclasses set ``_KIND`` and ``_TORCH`` and define ``_group_is_fast`` and
    ``_apply_fast``."""

    _KIND = ""
    _TORCH: type = torch.optim.Optimizer

    def _init_fast(self, fast_sparse: bool) -> None:
        self.fast_sparse = fast_sparse
        if fast_sparse:  # import numba and load (or compile) the kernel now, not inside the first training step
            for dtype in {p.dtype for g in self.param_groups for p in g["params"]
                          if p.device.type == "cpu" and p.dim() == 2 and p.dtype in _DTYPES}:
                _warm(dtype, self._KIND)

    def _torch_step(self) -> None:
        _base_step(self._TORCH, self)

    @torch.no_grad()
    def step(self, closure=None):
        loss: Optional[torch.Tensor] = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        kernel = _kernel(self._KIND) if self.fast_sparse else False
        taken: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            if kernel and getattr(self, "grad_scale", None) is None and getattr(self, "found_inf", None) is None:
                for group in self.param_groups:
                    if group.get("differentiable") or group.get("fused") or not self._group_is_fast(group):
                        continue  # torch's step (which refuses fused sparse updates itself)
                    for p in group["params"]:
                        g = p.grad
                        if g is None or not _fast_case(p, g) or not self._apply_fast(p, g, group, kernel):
                            continue
                        taken.append((p, g))
                        p.grad = None  # torch's step below skips it
            if len(taken) < sum(len(g["params"]) for g in self.param_groups):
                self._torch_step()
        finally:
            for p, g in taken:
                p.grad = g
        return loss


class SparseRowSGD(_SparseRowsMixin, torch.optim.SGD):
    """``torch.optim.SGD`` whose update of sparse row gradients on CPU is a compiled loop (see the module doc).

    Everything else -- dense parameters, momentum, weight decay, GPU tensors, gradient scaling -- is
    ``torch.optim.SGD.step`` itself. Set ``fast_sparse=False`` to always use torch's update.
    """

    _KIND, _TORCH = "sgd", torch.optim.SGD

    def __init__(self, params, lr: float = 1e-3, *args, fast_sparse: bool = True, **kwargs):
        super().__init__(params, lr, *args, **kwargs)
        self._init_fast(fast_sparse)

    def _group_is_fast(self, group: dict) -> bool:
        return not (group["momentum"] or group["weight_decay"])

    def _apply_fast(self, p, g, group, kernel) -> bool:
        lr = float(group["lr"])
        _apply_rows(p, g, lr if group.get("maximize") else -lr, kernel)
        return True


class SparseRowAdagrad(_SparseRowsMixin, torch.optim.Adagrad):
    """``torch.optim.Adagrad`` whose update of sparse row gradients on CPU is a compiled loop: the gradient's
    duplicate rows summed (what torch's ``coalesce`` does, without its sort), then each distinct row's squared
    sum and weights updated in place -- torch's sparse Adagrad step (FastText on THUCNews: benchmarks/RESULTS.md).
    Same state (``step``, ``sum``), hooks and arguments as ``torch.optim.Adagrad``; dense parameters, weight
    decay, GPU tensors and complex numbers take torch's own step, as does everything when numba is missing or
    ``fast_sparse=False``.
    """

    _KIND, _TORCH = "adagrad", torch.optim.Adagrad

    def __init__(self, params, lr: float = 1e-2, *args, fast_sparse: bool = True, **kwargs):
        super().__init__(params, lr, *args, **kwargs)
        self._row_slots: dict[int, np.ndarray] = {}  # per parameter: the kernel's "row seen" marks, all -1
        self._init_fast(fast_sparse)

    def _group_is_fast(self, group: dict) -> bool:
        return not (group["weight_decay"] or group.get("foreach"))

    def _apply_fast(self, p, g, group, kernel) -> bool:
        state = self.state[p]
        total = state["sum"]
        if total.dtype != p.dtype or not total.is_contiguous() or total.device.type != "cpu":
            return False
        step = float(state["step"]) + 1
        clr = float(group["lr"]) / (1 + (step - 1) * group["lr_decay"])
        slot = self._row_slots.get(id(p))
        if slot is None:
            slot = self._row_slots[id(p)] = np.full(p.shape[0], -1, np.int64)
        _apply_adagrad(p, g, total, clr, group["eps"], group.get("maximize", False), slot, kernel)
        state["step"] += 1  # counted once the update went through
        return True

    def _torch_step(self) -> None:
        with warnings.catch_warnings():
            # torch's own sparse Adagrad builds its tensors without saying whether to check them, and torch then
            # warns about memory errors "when operating on a sparse tensor which violates the invariants":
            # nothing a user can act on (the gradient came from autograd)
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
            _base_step(torch.optim.Adagrad, self)


class SparseDenseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam`` for a model whose sparse embedding sits next to dense layers (FastText's bag and
    its classifier). torch's SparseAdam refuses dense gradients; here a dense gradient is handed over row-sparse
    (``to_sparse(1)``), so every parameter gets SparseAdam's update: Adam's, restricted to the rows whose gradient
    is not all zero (for a dense layer, every row in practice). Moments and steps are SparseAdam's state, saved and
    resumed as torch's."""

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not p.grad.is_sparse:
                    p.grad = p.grad.to_sparse(1)
        return super().step(closure)
