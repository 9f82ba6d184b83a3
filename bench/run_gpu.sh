#!/usr/bin/env bash
# The benchmark record on a GPU machine: install the package, run every benchmark against its
# plain reference, append BENCHMARKS.md-ready rows (device name included) to $OUT/benchmarks.md.
#   OUT=/some/folder bash bench/run_gpu.sh [--only numeric imagetext render diagnose]
# Sized for about 5 minutes on one H200 (the image–text step includes one torch.compile).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/bench}"
# --no-deps: the machine's own torch (a CUDA build) must stay; nothing is downloaded.
python -m pip install -q --no-deps --no-build-isolation -e . \
  || echo "pip install failed; running from the source tree" >&2
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python bench/run_gpu.py --device cuda --out "$OUT" "$@"
