"""The frozen FTGD config (METHODS.md s3) and its error type: defined with every other config
in :mod:`taskspace_core.configs` (no torch import), named here for the package's modules."""

from __future__ import annotations

from taskspace_core.configs import SKETCH_SEED, FTGDConfig, FTGDError

__all__ = ["SKETCH_SEED", "FTGDConfig", "FTGDError"]
