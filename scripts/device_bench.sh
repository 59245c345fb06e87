#!/usr/bin/env bash
# The speed comparison on a lent GPU machine: OpenFlamingo (PyTorch) on the GPU against flamingo-eval on ONNX
# Runtime (CPU provider, all cores: the CUDA provider library is 284 MB and cannot travel in one call, see
# /work/shared/reference/RUNTIME.md), same samples and demonstrations as scripts/bench_vs_openflamingo.sh,
# which it runs. Writes the table and logs to $OUT (default .cache/perf/runs/device; on the device machine
# pass OUT=$OUT so they come back).
#
# Here (Rust, network, export/.venv), once, prepare what travels:
#   scripts/device_bench.sh --prepare   # -> .cache/device/{flamingo-eval, libonnxruntime.so.1.32.0, wheels/}
# On the device machine, from the repository root, carrying .cache/device and .cache/open_flamingo-655f693:
#   OUT=$OUT scripts/device_bench.sh [--queries 16] [--queries-32 2]   # any bench_vs_openflamingo.sh flags; its
#   defaults (40 / 4 queries) may not fit one 10-minute device call
#
# The device machine has no Rust toolchain and no network: the binary and libonnxruntime.so come from
# --prepare; Python packages its Python lacks are installed from the carried wheels into a folder outside the
# checkout. The mid-size model is exported there (its 740 MB of ONNX cannot travel); the tiny one is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.cache/device

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p "$DEV/wheels"
  cargo build --release --locked --quiet
  cp "${CARGO_TARGET_DIR:-target}/release/flamingo-eval" "$DEV/"
  strip "$DEV/flamingo-eval" 2>/dev/null || true
  scripts/setup_ort.sh
  cp -L .ort/libonnxruntime.so.1.32.0 "$DEV/"
  # the OF side and the exporter, torch excluded (the device's Python has torch + CUDA)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
    --implementation cp -d "$DEV/wheels" open-flamingo==2.0.1 open_clip_torch==2.20.0 transformers==4.33.3 \
    tokenizers==0.13.3 einops==0.6.1 einops-exts==0.0.4 ftfy regex safetensors==0.4.5 huggingface-hub==0.17.3 \
    pyyaml tqdm wcwidth onnx==1.17.0 pycocotools==2.0.8 nltk==3.9.1 inflection==0.5.1
  du -sh "$DEV"/* | sort -h
  echo "carry: .cache/device .cache/open_flamingo-655f693 (64 MiB at most in all)"
  exit 0
fi

OUT=${OUT:-$ROOT/.cache/perf/runs/device}
PY=${PY:-python3}
SITE=/tmp/flamingo-device-site
mkdir -p "$OUT" "$SITE"
{
  echo "== nvidia-smi"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  echo "== python: $($PY --version 2>&1)"; echo "== cores: $(nproc)"
} | tee "$OUT/device.txt"
missing=$($PY - <<'PY'
import importlib.util
need = ["torch", "open_flamingo", "open_clip", "transformers", "einops", "einops_exts", "onnx", "yaml", "PIL",
        "pycocotools", "nltk", "inflection", "sklearn"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  echo "missing: $missing; installing the carried wheels" | tee -a "$OUT/device.txt"
  $PY -m pip install -q --no-index --no-deps --target "$SITE" "$DEV"/wheels/*.whl 2>&1 | tail -3 | tee -a "$OUT/device.txt" || true
fi
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/device.txt"
# bench_vs_openflamingo.sh runs export/.venv/bin/python: make it this Python (a carried symlink may dangle)
if [ ! -x export/.venv/bin/python ]; then
  { [ -L export/.venv ] || [ -f export/.venv ]; } && rm -f export/.venv
  mkdir -p export/.venv/bin && ln -sf "$(command -v "$PY")" export/.venv/bin/python
fi
# OpenFlamingo's eval dependencies come from the wheels above, not from pip inside the bench script
mkdir -p .cache/perf/of-extra && touch .cache/perf/of-extra/.done
export FE_BIN=$DEV/flamingo-eval ORT_DYLIB_PATH=$DEV/libonnxruntime.so.1.32.0
chmod +x "$FE_BIN"
DEVICE=cpu; $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" && DEVICE=cuda:0
scripts/bench_vs_openflamingo.sh --device "$DEVICE" --fe-device cpu --threads "$(nproc)" --out "$OUT" "$@" \
  2>&1 | tee "$OUT/bench.log"
