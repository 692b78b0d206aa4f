"""Token-id batches cut from pre-padded tensors.

The trainer's default input path reads each batch as rows of a ``datasets.Dataset`` and pads them with
``DataCollatorWithPadding``: per batch, Arrow rows -> Python lists -> ``tokenizer.pad`` -> tensors. For small, fast
models (FastText) that costs about as much as the training step itself (THUCNews titles, batch 128: 2.2 ms per
batch against ~2.4 ms for FastText's forward, backward and update; benchmarks/RESULTS.md, baselines).

:class:`PaddedTokenDataset` right-pads the token columns into tensors once and answers a whole batch of indices
with one index operation per column (``__getitems__``, which PyTorch's ``DataLoader`` calls with the batch's
indices), each batch cut to its longest row -- what the collator returns, without the per-row work. Any sampler,
``accelerate``'s sharding for DDP and ``group_by_length`` work unchanged: they only choose indices.

No library does this for Arrow-backed token datasets (``datasets``' torch format still yields rows that a
collator pads), hence the few lines here.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["PaddedTokenDataset", "tensor_batch_reason", "identity_collate"]

TOKEN_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")
_ALLOWED = set(TOKEN_COLUMNS) | {"labels"}


def identity_collate(batch):
    """The collate function for :class:`PaddedTokenDataset`: its ``__getitems__`` already returns the batch."""
    return batch


def tensor_batch_reason(dataset, tokenizer, max_elements: int = 100_000_000) -> Optional[str]:
    """``None`` when :class:`PaddedTokenDataset` can serve ``dataset`` exactly as ``DataCollatorWithPadding`` would;
    otherwise why not (the trainer then keeps the collator). Above ``max_elements`` padded tokens (400 MB of int32 per
    column, per process) the collator is kept too."""
    cols = getattr(dataset, "column_names", None)
    if cols is None or not hasattr(dataset, "with_format"):
        return "not a datasets.Dataset"
    if "input_ids" not in cols:
        return "no input_ids column"
    extra = sorted(set(cols) - _ALLOWED)
    if extra:
        return f"columns the collator would pass through: {extra}"
    if tokenizer is None or getattr(tokenizer, "pad_token_id", None) is None:
        return "tokenizer without a pad token"
    if getattr(tokenizer, "padding_side", "right") != "right":
        return "left padding"
    if len(dataset) == 0:
        return "empty dataset"
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in set(cols) & set(TOKEN_COLUMNS):
        t = dataset.data.schema.field(name).type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_integer(t.value_type):
            return f"column {name!r} is {t}, not a variable-length list of integers"
    width = pc.max(pc.list_value_length(dataset.data.column("input_ids"))).as_py() or 0
    if len(dataset) * width > max_elements:
        return f"{len(dataset)} rows x {width} tokens is too large to pre-pad (limit {max_elements:,} elements)"
    return None


class PaddedTokenDataset(torch.utils.data.Dataset):
    """The token columns of a tokenized ``datasets.Dataset`` (``input_ids``, optional ``token_type_ids`` /
    ``attention_mask``, optional ``labels``), right-padded into tensors once.

    ``dataset[i]`` is one example (unpadded, as the source row); ``dataset.__getitems__(indices)`` is the padded
    batch of those rows, cut to the longest (rounded up to ``pad_to_multiple_of``): int64 ``input_ids`` (padding =
    ``pad_token_id``), ``token_type_ids`` (padding = ``pad_token_type_id``), ``attention_mask`` (1 on real tokens)
    and ``labels`` as ``torch.tensor`` makes them -- the same tensors as ``DataCollatorWithPadding``.

    Raises ``ValueError`` when an ``attention_mask`` row is not all ones over its tokens (a mask the tokenizer did
    not make; the collator path keeps it).
    """

    def __init__(self, dataset, pad_token_id: int, pad_token_type_id: int = 0,
                 pad_to_multiple_of: Optional[int] = None):
        table = dataset.with_format("arrow")[:]  # honours select/shuffle index mappings
        ids = table.column("input_ids").combine_chunks()
        offsets = ids.offsets.to_numpy()
        self.lengths = torch.from_numpy(np.diff(offsets).astype(np.int64))
        n, width = len(self.lengths), int(self.lengths.max()) if len(self.lengths) else 0
        self.pad_to_multiple_of = pad_to_multiple_of
        if pad_to_multiple_of:  # stored wide enough that a batch rounded up is still a slice
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        real = np.arange(width)[None, :] < self.lengths.numpy()[:, None]
        self.columns: dict[str, torch.Tensor] = {}
        for name, pad in (("input_ids", pad_token_id), ("token_type_ids", pad_token_type_id)):
            if name not in table.column_names:
                continue
            col = table.column(name).combine_chunks()
            if not np.array_equal(col.offsets.to_numpy() - col.offsets.to_numpy()[0], offsets - offsets[0]):
                raise ValueError(f"PaddedTokenDataset: {name} rows differ in length from input_ids rows")
            values = col.flatten().to_numpy()
            dtype = np.int32 if len(values) == 0 or (values.min() >= -2**31 and values.max() < 2**31) else np.int64
            mat = np.full((n, width), pad, dtype=dtype)
            mat[real] = values
            self.columns[name] = torch.from_numpy(mat)
        self.has_mask = "attention_mask" in table.column_names
        if self.has_mask:
            mask = table.column("attention_mask").combine_chunks().flatten().to_numpy()
            if len(mask) != int(self.lengths.sum()) or not (mask == 1).all():
                raise ValueError("PaddedTokenDataset: attention_mask is not all ones over each row's tokens")
        self.labels = None
        if "labels" in table.column_names:
            self.labels = torch.tensor(table.column("labels").to_pylist())

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict:
        n = int(self.lengths[i])
        out = {k: v[i, :n].long() for k, v in self.columns.items()}
        if self.has_mask:
            out["attention_mask"] = torch.ones(n, dtype=torch.long)
        if self.labels is not None:
            out["labels"] = self.labels[i]
        return out

    def __getitems__(self, indices: Sequence[int]) -> dict:
        idx = torch.as_tensor(indices, dtype=torch.long)
        lens = self.lengths[idx]
        width = int(lens.max()) if len(idx) else 0
        m = self.pad_to_multiple_of
        if m:
            width = -(-width // m) * m
        out = {k: v[idx, :width].long() for k, v in self.columns.items()}
        if self.has_mask:
            out["attention_mask"] = (torch.arange(width)[None, :] < lens[:, None]).long()
        if self.labels is not None:
            out["labels"] = self.labels[idx]
        return out
