#!/usr/bin/env bash
# Retrain the demo model from scratch and export it (deterministic: the same files on the same machine type).
#   export/demo_model/train.sh            # data/shapes + tokenizer + weights + models/shapes-flamingo
# Steps (each one its own command):
#   1. export/.venv/bin/python -m export.demo_model.shapes --out data/shapes            # benchmark data
#   2. export/.venv/bin/python -m export.demo_model.tokenizer export/demo_model/tokenizer
#   3. export/.venv/bin/python -m export.demo_model.train_tiny --log export/demo_model/train_log.json
#      (writes export/demo_model/weights.safetensors; single-threaded, 3000 steps, about 11 minutes on a loaded 2-core machine)
#   4. export/.venv/bin/python -m export.demo_model.export_demo                       # -> models/shapes-flamingo
# CI never runs this: export/tests/test_demo_model.py checks that the committed files belong together and runs
# a few training steps; scripts/ci_gate.sh evaluates the committed model.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MKL_CBWR=COMPATIBLE FLAMINGO_EXPORT_THREADS=1
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 PYTHONHASHSEED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=export/.venv/bin/python
rm -rf data/shapes
"$PY" -m export.demo_model.shapes --out data/shapes
"$PY" -m export.demo_model.tokenizer export/demo_model/tokenizer
"$PY" -m export.demo_model.train_tiny --log export/demo_model/train_log.json "$@"
"$PY" -m export.demo_model.export_demo
