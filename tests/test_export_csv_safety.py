"""`precompute export` never writes a spreadsheet formula: user strings in every CSV are neutralised."""

from __future__ import annotations

import csv
from pathlib import Path

from precompute.cli import main
from tests.tiny_runs import save_model, toy_rows, write_config

# task names, a category, a tag column and a tag value that a spreadsheet would run as formulas
HOSTILE = {
    "sva_singular": '=HYPERLINK("http://host/x","click")',
    "sva_plural": "@SUM(1+1)",
    "det_noun": "+cmd|' /C calc'!A0",
}
TAG_COLUMN = '=HYPERLINK("tag")'
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def test_every_cli_export_is_formula_safe(tmp_path: Path, monkeypatch, one_torch_thread) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    tasks_csv = tmp_path / "tasks.csv"
    with tasks_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence_good", "sentence_bad", "task", "category", TAG_COLUMN])
        for good, bad, task, category in toy_rows():
            if task in HOSTILE:
                w.writerow([good, bad, HOSTILE[task], "-" + category, "=1+2"])
    model = save_model(tmp_path / "model")
    cfg = write_config(tmp_path, [{"name": str(model), "size": "tiny", "step": 1}], tasks_csv)
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    out = tmp_path / "export"
    assert main(["export", "--config", str(cfg), "--out", str(out), "--permutations", "19"]) == 0

    files = sorted(out.rglob("*.csv"))
    assert {p.name for p in files} >= {"T.csv", "G.csv", "tasks.csv", "statistics.csv"}
    cells = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            cells += [(path.name, cell) for row in csv.reader(f) for cell in row]
    unsafe = [(name, c) for name, c in cells if c.startswith(FORMULA_START) and not _is_number(c)]
    assert unsafe == []
    # the hostile strings are there, made inert by a leading quote (not dropped or mangled)
    texts = {c for _, c in cells}
    for name in HOSTILE.values():
        assert "'" + name in texts
    assert "'" + TAG_COLUMN in texts and "'=1+2" in texts and "'-agreement" in texts
