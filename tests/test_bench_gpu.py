"""benchmarks/bench_gpu.sh in its reduced CPU mode, on a tiny model and toy BLiMP-format files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.tiny_runs import toy_rows

ROOT = Path(__file__).resolve().parents[1]


def _toy_blimp(directory: Path) -> Path:
    """Three paradigm files in BLiMP's own format (one JSON object per line)."""
    directory.mkdir()
    for task in ("sva_singular", "sva_plural", "det_noun"):
        rows = [
            {"sentence_good": g, "sentence_bad": b, "UID": task, "linguistics_term": c, "field": "morphology"}
            for g, b, t, c in toy_rows()
            if t == task
        ]
        (directory / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def test_reduced_mode_runs_every_part_on_the_cpu(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import save_tiny_model

    model = save_tiny_model(tmp_path / "tiny")
    env = {**os.environ, "TASKSPACE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        "bash",
        str(ROOT / "benchmarks" / "bench_gpu.sh"),
        "--model",
        str(model),
        "--blimp",
        str(_toy_blimp(tmp_path / "blimp")),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert re.search(r"^device: no GPU; CPU .+, \d+ cores available$", text, re.M), text
    assert "mode: reduced (no GPU)" in text  # chosen automatically: no --reduced was passed
    rate = re.search(r"^scoring: ([\d.]+) pairs/s \((\d+) BLiMP pairs, fp32", text, re.M)
    assert rate and float(rate[1]) > 0 and int(rate[2]) == 32, text
    ftgd = re.search(r"^ftgd: ([\d.]+) s/task \(2 tasks, 2 steps", text, re.M)
    assert ftgd and float(ftgd[1]) > 0, text
    # the cut-down configs ran to completion: 3 tasks of 2 models (exact transfer) and of 1 (first-order)
    default = re.search(r"^default analysis: ([\d.]+) s wall, (\d+) units", text, re.M)
    assert default and int(default[2]) == 2 * (3 + 3 + 9), text
    blimp = re.search(r"^blimp_full \(first-order\): ([\d.]+) s wall, (\d+) units", text, re.M)
    assert blimp and int(blimp[2]) == 3 + 3 + 3, text
