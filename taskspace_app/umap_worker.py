"""UMAP's own process (``python -m taskspace_app.umap_worker``), started by the app's background worker.

numba compiles UMAP on its first call in a process, for tens of seconds and holding the GIL
for long stretches; here it does not slow the server's page scripts, and it runs at the
lowest priority. The protocol is JSON lines: the worker warms up and writes
``{"ready": true}``; then, for each ``{"S": [[...]]}`` read, it writes ``{"coords": [[...]],
"note": "..."}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from typing import Any

import numpy as np


def umap_layout(S: np.ndarray) -> dict[str, Any]:
    """UMAP of ``D = 1 - S_scaled`` as {"coords", "note"} (falls back to MDS on very few tasks)."""
    from taskspace_core import spaces

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emb = spaces.umap_embedding(S, seed=0)
    return {"coords": emb.coords.tolist(), "note": emb.note}


def main() -> None:
    with contextlib.suppress(OSError):
        os.nice(19)
    umap_layout(np.corrcoef(np.random.default_rng(0).normal(size=(8, 16))))  # compiles what a real call needs
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            reply = umap_layout(np.asarray(json.loads(line)["S"], dtype=float))
        except Exception as exc:  # noqa: BLE001 - reported to the app, which shows it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
