"""What FTGD on one task leaves behind (:class:`FTGDResult`): compact, picklable, model-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FTGDResult:
    """What FTGD on one task leaves behind: compact, picklable, model-free.

    ``delta[name] = (indices, values)``: sorted flat int32 indices into the tensor and the
    fp16 values of ``tuned - base`` at the entries that changed. ``masks[name]`` is ``None``
    when the mask equals the changed entries (the usual case, to avoid storing the indices
    twice), else sorted int32 indices (sparse masks) or ``np.packbits`` of the flat mask
    (dense masks, fraction > 1/32); read masks through :meth:`mask_indices` /
    :meth:`mask_bool` / :meth:`packed_mask`.
    """

    config: dict[str, Any]
    fingerprint: str
    names: tuple[str, ...]
    tensor_sizes: dict[str, int]
    delta: dict[str, tuple[np.ndarray, np.ndarray]]
    masks: dict[str, np.ndarray | None]
    counts_per_tensor: dict[str, int]
    mask_distribution: dict[str, Any]
    curve: dict[str, list[float]]
    tune_before: dict[str, float]
    sketch: np.ndarray  # fp16, scaled to max |.| = 1
    sketch_scale: float
    grad_sq_norm: float  # exact |g_task|^2 over the selectable parameters
    n_tune_pairs: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- masks
    def mask_indices(self, name: str) -> np.ndarray:
        m = self.masks[name]
        if m is None:
            return self.delta[name][0]
        if m.dtype == np.uint8:
            return np.flatnonzero(np.unpackbits(m, count=self.tensor_sizes[name])).astype(np.int32)
        return m

    def mask_bool(self, name: str) -> np.ndarray:
        out = np.zeros(self.tensor_sizes[name], dtype=bool)
        out[self.mask_indices(name)] = True
        return out

    def global_mask_indices(self) -> np.ndarray:
        """Mask as int64 indices into the concatenation of the selectable tensors (``names`` order)."""
        parts, offset = [], 0
        for n in self.names:
            parts.append(self.mask_indices(n).astype(np.int64) + offset)
            offset += self.tensor_sizes[n]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def packed_mask(self) -> np.ndarray:
        """Per-tensor ``np.packbits`` masks concatenated (padding bits are 0, so Jaccard is exact)."""
        return np.concatenate([np.packbits(self.mask_bool(n)) for n in self.names])

    @property
    def n_selectable(self) -> int:
        return int(sum(self.tensor_sizes.values()))

    @property
    def n_masked(self) -> int:
        return int(sum(self.counts_per_tensor.values()))

    @property
    def n_changed(self) -> int:
        return int(sum(len(i) for i, _ in self.delta.values()))

    def nbytes(self) -> int:
        """Bytes of the array payload (what dominates the pickled size)."""
        total = self.sketch.nbytes
        for idx, val in self.delta.values():
            total += idx.nbytes + val.nbytes
        total += sum(m.nbytes for m in self.masks.values() if m is not None)
        return int(total)


def encode_mask(mask_idx: np.ndarray, delta_idx: np.ndarray, size: int) -> np.ndarray | None:
    """A tensor's mask as stored in :attr:`FTGDResult.masks` (``None``: equals the changed entries)."""
    if mask_idx.shape == delta_idx.shape and np.array_equal(mask_idx, delta_idx):
        return None
    if mask_idx.size * 32 < size:
        return mask_idx.astype(np.int32)
    bits = np.zeros(size, dtype=bool)
    bits[mask_idx] = True
    return np.packbits(bits)
