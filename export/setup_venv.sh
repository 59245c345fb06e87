#!/usr/bin/env bash
# Create (or verify) the export virtual environment at export/.venv.
# Idempotent: when the venv already matches the pinned requirements it only checks and exits.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$HERE/requirements.txt" "$HERE/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  if "$VENV/bin/python" -c "import torch, transformers, open_clip, open_flamingo, onnx, onnxruntime" 2>/dev/null; then
    echo "export/.venv is up to date"
    exit 0
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade "pip<25" 
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip install --quiet --no-deps -r "$HERE/requirements-nodeps.txt"
"$VENV/bin/python" -c "import torch, transformers, open_clip, open_flamingo, onnx, onnxruntime; print('torch', torch.__version__, 'transformers', transformers.__version__, 'open_clip', __import__('importlib.metadata').metadata.version('open_clip_torch'), 'onnxruntime', onnxruntime.__version__)"
echo "$WANT" > "$STAMP"
