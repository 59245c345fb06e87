#!/usr/bin/env bash
# Create (or verify) the export virtual environment at export/.venv.
# Idempotent: when the venv already matches the pinned requirements it only checks and exits.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$HERE/requirements.txt" "$HERE/requirements-nodeps.txt" "$HERE/constraints.txt" | sha256sum | cut -d' ' -f1)"

# `python -m export.export_openflamingo` from any folder: the venv's site-packages names this checkout
add_repo_path() {
  local site
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$(dirname "$HERE")" > "$site/flamingo_eval_export.pth"
}

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  if "$VENV/bin/python" -c "import torch, transformers, open_clip, open_flamingo, onnx, onnxruntime" 2>/dev/null; then
    add_repo_path
    echo "export/.venv is up to date"
    exit 0
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    # Debian/Ubuntu ship venv/ensurepip separately
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
      echo "== installing python3-venv (Debian)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv "$VENV"
    else
      echo "setup_venv.sh: '$PY -m venv' failed; install the python3-venv package (Debian/Ubuntu) and rerun" >&2
      exit 1
    fi
  fi
fi
# Disk frugality: torch 2.0.1 from PyPI drags ~2.6 GB of CUDA libraries (it will not import without them), so
# no pip cache (it would keep a second copy of every wheel) and the largest packages go in one at a time, so
# at most one big wheel waits on disk beside what is already installed.
export PIP_NO_CACHE_DIR=1
"$VENV/bin/python" -m pip install --quiet --upgrade pip==24.3.1
for big in nvidia-cudnn-cu11 nvidia-cublas-cu11 nvidia-cusolver-cu11 nvidia-cufft-cu11 nvidia-cusparse-cu11 \
           nvidia-nccl-cu11 torch; do
  "$VENV/bin/python" -m pip install --quiet "$big" -c "$HERE/constraints.txt"
done
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
"$VENV/bin/python" -m pip install --quiet --no-deps -r "$HERE/requirements-nodeps.txt"
"$VENV/bin/python" -c "import torch, transformers, open_clip, open_flamingo, onnx, onnxruntime; print('torch', torch.__version__, 'transformers', transformers.__version__, 'open_clip', __import__('importlib.metadata').metadata.version('open_clip_torch'), 'onnxruntime', onnxruntime.__version__)"
add_repo_path
echo "$WANT" > "$STAMP"
