"""Plain SGD with a faster update of sparse row gradients on CPU.

``SparseRowSGD`` is ``torch.optim.SGD`` (same arguments, same state, same hooks, same results) except for one
case: a parameter whose gradient is a sparse COO tensor of whole rows (what ``nn.Embedding``/``nn.EmbeddingBag``
with ``sparse=True`` produce), on CPU, in float32/float64, in a group without momentum or weight decay. There
the update ``weight[rows[k]] -= lr * values[k]`` runs as one compiled loop over the gradient's rows (numba),
instead of torch's dense-plus-sparse ``add_``, which on CPU takes about 1.7x as long for FastText's bag of
~7,000 random rows of a 260k x 100 table per batch of 128 (benchmarks/RESULTS.md, baselines section 1). Duplicate
rows (the same n-gram in several texts) are applied one after the other, which is what ``add_`` of an
uncoalesced gradient computes.

Why hand-written: neither torch nor a library that installs with any torch version has a CPU kernel for this
update (FBGEMM's table-batched embeddings fuse it into their own backward, but their wheels are built for one
torch release). numba is optional (``pip install "nlp-cv-tricks[fast]"``): without it, or outside the case
above, the step is torch's own.
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = ["SparseRowSGD", "fast_sparse_available"]

_KERNEL = None  # the compiled row update, or False when numba is missing
_DTYPES = (torch.float32, torch.float64)


def _rows_axpy(weight, rows, values, alpha):  # pragma: no cover - compiled by numba
    """weight[rows[k]] += alpha * values[k], k in order; returns the first k whose row is out of range (nothing
    from it on is applied) or -1."""
    n, d = values.shape
    limit = weight.shape[0]
    for k in range(n):
        r = rows[k]
        if r < 0 or r >= limit:
            return k
        for j in range(d):
            weight[r, j] += alpha * values[k, j]
    return -1


def _kernel():
    """The compiled :func:`_rows_axpy` (cached on disk by numba where it can write), or False without numba."""
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba
        except Exception as e:  # not installed, or built for another numpy
            _KERNEL = False
            logger.info("numba is not usable (%s): sparse SGD updates use torch's add_ "
                        "(pip install 'nlp-cv-tricks[fast]' for the faster CPU update)", e)
            return _KERNEL
        try:
            _KERNEL = numba.njit(cache=True, nogil=True)(_rows_axpy)
        except RuntimeError:  # no writable cache location: compile in each process
            _KERNEL = numba.njit(nogil=True)(_rows_axpy)
    return _KERNEL


def fast_sparse_available() -> bool:
    """Whether the compiled sparse-row update can be used (numba importable)."""
    return bool(_kernel())


def _fast_case(p: torch.Tensor, g: torch.Tensor) -> bool:
    """A sparse COO gradient of whole rows of a contiguous 2-D CPU float parameter of the same dtype."""
    return (g.layout == torch.sparse_coo and g.sparse_dim() == 1 and g.dense_dim() == 1 and p.dim() == 2
            and p.device.type == "cpu" and g.device.type == "cpu" and p.dtype in _DTYPES and g.dtype == p.dtype
            and p.is_contiguous())


def _apply_rows(p: torch.Tensor, g: torch.Tensor, alpha: float, kernel) -> None:
    rows = g._indices()[0]
    if rows.dtype != torch.int64:
        rows = rows.long()
    values = g._values().contiguous()
    if values.shape[1] != p.shape[1]:
        raise ValueError(f"SparseRowSGD: gradient rows have {values.shape[1]} columns, the parameter "
                         f"{tuple(p.shape)} has {p.shape[1]}")
    # alpha in the parameter's precision, as torch's add_ computes it
    a = np.float32(alpha) if p.dtype == torch.float32 else np.float64(alpha)
    bad = kernel(p.detach().numpy(), rows.contiguous().numpy(), values.numpy(), a)
    if bad >= 0:
        raise IndexError(f"SparseRowSGD: gradient row index {int(rows[bad])} is outside the parameter's "
                         f"{p.shape[0]} rows (entries before it were applied)")


def _warm(dtype: torch.dtype) -> None:
    kernel = _kernel()
    if kernel:
        w = torch.zeros(1, 1, dtype=dtype)
        g = torch.sparse_coo_tensor(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=dtype), (1, 1),
                                    check_invariants=True)
        _apply_rows(w, g, 0.0, kernel)


class SparseRowSGD(torch.optim.SGD):
    """``torch.optim.SGD`` whose update of sparse row gradients on CPU is a compiled loop (see the module doc).

    Everything else -- dense parameters, momentum, weight decay, GPU tensors, gradient scaling -- is
    ``torch.optim.SGD.step`` itself. Set ``fast_sparse=False`` to always use torch's update.
    """

    def __init__(self, params, lr: float = 1e-3, *args, fast_sparse: bool = True, **kwargs):
        super().__init__(params, lr, *args, **kwargs)
        self.fast_sparse = fast_sparse
        if fast_sparse:  # import numba and load (or compile) the kernel now, not inside the first training step
            for dtype in {p.dtype for g in self.param_groups for p in g["params"]
                          if p.device.type == "cpu" and p.dim() == 2 and p.dtype in _DTYPES}:
                _warm(dtype)

    @torch.no_grad()
    def step(self, closure=None):
        loss: Optional[torch.Tensor] = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        kernel = _kernel() if self.fast_sparse else False
        taken: list[tuple[torch.Tensor, torch.Tensor]] = []
        if kernel and getattr(self, "grad_scale", None) is None and getattr(self, "found_inf", None) is None:
            for group in self.param_groups:
                if group["momentum"] or group["weight_decay"] or group.get("differentiable"):
                    continue
                lr = group["lr"]
                if isinstance(lr, torch.Tensor):
                    lr = float(lr)
                alpha = lr if group.get("maximize") else -lr
                for p in group["params"]:
                    g = p.grad
                    if g is None or not _fast_case(p, g):
                        continue
                    _apply_rows(p, g, alpha, kernel)
                    taken.append((p, g))
                    p.grad = None  # torch's step below skips it
        try:
            if len(taken) < sum(len(g["params"]) for g in self.param_groups):
                # the rest is torch's SGD; its hook-wrapped step would run this optimizer's hooks a second time
                base = torch.optim.SGD.step
                base = getattr(base, "__wrapped__", base) if getattr(base, "hooked", False) else base
                base(self)
        finally:
            for p, g in taken:
                p.grad = g
        return loss
