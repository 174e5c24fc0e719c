#!/usr/bin/env bash
# GPU benchmark (issue 13 item 7), <= 5 min on one GPU: scoring pairs/s (bf16, automatic batch
# size), FTGD s/task, the default analysis and the BLiMP-full first-order config, with the card's
# name. Without a GPU it runs a reduced size on the CPU (so CI can check it still works).
#   bash benchmarks/bench_gpu.sh [--reduced] [--model DIR] [--blimp DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
exec "$PY" benchmarks/bench_gpu.py "$@"
