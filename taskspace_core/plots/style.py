"""Shared style of every figure: colour scales, category colours, escaping of user text."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from plotly.colors import qualitative

DIVERGING = "RdBu_r"  # red = positive transfer / similarity, blue = negative
SEQUENTIAL = "Viridis"
_PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Set3


def esc(text: object) -> str:
    """HTML-escape user text for plotly hover/labels."""
    return html.escape(str(text), quote=False)


def category_colors(labels: Sequence[str]) -> dict[str, str]:
    """Stable colour per label (in order of first appearance)."""
    out: dict[str, str] = {}
    for lab in labels:
        if lab not in out:
            out[lab] = _PALETTE[len(out) % len(_PALETTE)]
    return out


def _symmetric_range(M: np.ndarray, exclude_diagonal: bool) -> float:
    vals = M[~np.eye(M.shape[0], dtype=bool)] if exclude_diagonal and M.shape[0] > 1 else M.ravel()
    vals = vals[np.isfinite(vals)]
    return float(np.max(np.abs(vals))) if vals.size else 1.0
