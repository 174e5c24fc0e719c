"""The frozen FTGD config (METHODS.md s3) and its error type; no torch import."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

SKETCH_SEED = 0x7A5C  # fixed: every task of every run must share the hash to be comparable


class FTGDError(ValueError):
    """Bad FTGD input (config, pairs, or a result that does not fit the model)."""


@dataclass(frozen=True)
class FTGDConfig:
    """Every switch of FTGD (METHODS.md s3). Part of every cache key."""

    VERSION: ClassVar[int] = 1
    mask_fraction: float = 0.01
    mask_scope: str = "global"  # global | per_tensor
    include_embeddings: bool = False
    mask_update: str = "fixed"  # fixed | per_step
    loss: str = "diff"  # diff (-margin) | logistic (-log sigmoid(margin))
    steps: int = 20
    lr: float = 1e-4
    batch_size: int = 8
    mask_pairs: int = 64
    grad_clip: float = 1.0
    seed: int = 0
    sketch_dim: int = 2**22

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_fraction <= 1.0:
            raise FTGDError(f"mask_fraction must be in (0, 1], not {self.mask_fraction}")
        if self.mask_scope not in ("global", "per_tensor"):
            raise FTGDError(f"mask_scope must be 'global' or 'per_tensor', not '{self.mask_scope}'")
        if self.mask_update not in ("fixed", "per_step"):
            raise FTGDError(f"mask_update must be 'fixed' or 'per_step', not '{self.mask_update}'")
        if self.loss not in ("diff", "logistic"):
            raise FTGDError(f"loss must be 'diff' or 'logistic', not '{self.loss}'")
        for name in ("steps", "batch_size", "mask_pairs", "sketch_dim"):
            value = getattr(self, name)
            if value < (0 if name == "steps" else 1):
                raise FTGDError(f"{name} must be positive, not {value}")
        if self.lr < 0 or self.grad_clip <= 0:
            raise FTGDError("lr must be >= 0 and grad_clip > 0")

    def key(self) -> dict[str, Any]:
        """Every field (they all change the numbers) plus the method version."""
        return {"method": "ftgd", "version": self.VERSION, "sketch_seed": SKETCH_SEED, **asdict(self)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
