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
#
# The CUDA execution provider for flamingo-eval (--fe-device cuda:0) — PREPARED, NOT RUN YET (no session has been
# lent a GPU machine). The onnxruntime-gpu wheel's libraries (~290 MB) cannot travel in one 64 MiB call:
#   here:   scripts/device_bench.sh --prepare-cuda    # cargo build --release --features cuda; pip download
#           onnxruntime-gpu==$ORT_GPU_VERSION; its three libraries as one zstd tarball split into parts of 48 MiB
#           under .cache/device-cuda/part-NN, with SHA256SUMS (tarball and parts)
#   device: one call per part, each carrying .cache/device-cuda/part-NN (+ SHA256SUMS):
#             scripts/device_bench.sh --stash-part   # copies the carried part(s) to /tmp/flamingo-cuda (outside the
#                                                    # checkout, kept while the machine stays warm, ~30 s)
#           then, in the call carrying the last part and .cache/device:
#             OUT=$OUT scripts/device_bench.sh --cuda [bench flags]   # reassembles, checks every sha256, points
#             ORT_DYLIB_PATH at the GPU libonnxruntime, LD_LIBRARY_PATH at the Python's nvidia-* CUDA 13 / cuDNN 9
#             libraries, and runs the comparison with flamingo-eval on cuda:0. fp16 graphs: not wired here; make
#             them with `export/.venv/bin/python -m export.precision --dtype fp16 MODEL MODEL-fp16` (or the
#             exporter's --dtype fp16) and pass that folder. `--io-binding` (flamingo-eval) runs the decoder
#             through ONNX Runtime's IoBinding but binds its outputs to host memory: a device-resident KV cache
#             (outputs bound to CUDA memory, rows selected on the device) is NOT implemented, so every decoder
#             call still copies its KV cache through host memory, which a GPU run will show as transfer time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.cache/device

ORT_GPU_VERSION=${ORT_GPU_VERSION:-1.31.1}   # RUNTIME.md: the onnxruntime-gpu wheel for CUDA 13 + cuDNN 9
CUDA_DEV=$ROOT/.cache/device-cuda
CUDA_STASH=/tmp/flamingo-cuda

if [ "${1:-}" = "--prepare-cuda" ]; then
  mkdir -p "$DEV" "$CUDA_DEV/wheel"
  cargo build --release --locked --quiet --features cuda
  cp "${CARGO_TARGET_DIR:-target}/release/flamingo-eval" "$DEV/flamingo-eval-cuda"
  strip "$DEV/flamingo-eval-cuda" 2>/dev/null || true
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    --implementation cp -d "$CUDA_DEV/wheel" "onnxruntime-gpu==$ORT_GPU_VERSION"
  W=$(ls "$CUDA_DEV"/wheel/onnxruntime_gpu-*.whl | head -1)
  rm -rf "$CUDA_DEV/lib" "$CUDA_DEV"/part-* && mkdir -p "$CUDA_DEV/lib"
  python3 - "$W" "$CUDA_DEV/lib" <<'PY'
import fnmatch, os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        b = os.path.basename(n)
        if n.startswith("onnxruntime/capi/") and (fnmatch.fnmatch(b, "libonnxruntime.so*")
                                                  or fnmatch.fnmatch(b, "libonnxruntime_providers_*.so")):
            with open(os.path.join(sys.argv[2], b), "wb") as f:
                f.write(z.read(n))
PY
  tar -C "$CUDA_DEV/lib" -cf - . | zstd -q -19 -T0 -o "$CUDA_DEV/ort-gpu.tar.zst" -f
  split -b 48M -d -a 2 "$CUDA_DEV/ort-gpu.tar.zst" "$CUDA_DEV/part-"
  (cd "$CUDA_DEV" && sha256sum ort-gpu.tar.zst part-* > SHA256SUMS && rm -rf lib ort-gpu.tar.zst)
  ls -la "$CUDA_DEV"; cat "$CUDA_DEV/SHA256SUMS"
  echo "carry per device call: .cache/device-cuda/part-NN and .cache/device-cuda/SHA256SUMS (48 MiB + a few bytes)"
  exit 0
fi

if [ "${1:-}" = "--stash-part" ]; then
  mkdir -p "$CUDA_STASH"
  for p in "$CUDA_DEV"/part-* "$CUDA_DEV/SHA256SUMS"; do
    [ -f "$p" ] || continue
    n=$(basename "$p")
    if [ "$n" != SHA256SUMS ]; then
      want=$(awk -v n="$n" '$2 == n {print $1}' "$CUDA_DEV/SHA256SUMS")
      got=$(sha256sum "$p" | cut -d' ' -f1)
      [ "$want" = "$got" ] || { echo "device_bench: $n: sha256 $got, SHA256SUMS says $want (carry it again)" >&2; exit 1; }
    fi
    cp "$p" "$CUDA_STASH/"
  done
  ls -la "$CUDA_STASH"
  exit 0
fi

if [ "${1:-}" = "--cuda" ]; then
  shift
  "$0" --stash-part
  need=$(awk '$2 ~ /^part-/ {print $2}' "$CUDA_STASH/SHA256SUMS")
  for n in $need; do
    [ -f "$CUDA_STASH/$n" ] || { echo "device_bench: $n not stashed yet: run --stash-part in a call carrying it" >&2; exit 1; }
  done
  cat $(for n in $need; do echo "$CUDA_STASH/$n"; done) > "$CUDA_STASH/ort-gpu.tar.zst"
  want=$(awk '$2 == "ort-gpu.tar.zst" {print $1}' "$CUDA_STASH/SHA256SUMS")
  got=$(sha256sum "$CUDA_STASH/ort-gpu.tar.zst" | cut -d' ' -f1)
  [ "$want" = "$got" ] || { echo "device_bench: reassembled tarball sha256 $got, expected $want" >&2; exit 1; }
  mkdir -p "$CUDA_STASH/lib" && zstd -q -d -c "$CUDA_STASH/ort-gpu.tar.zst" | tar -C "$CUDA_STASH/lib" -xf -
  export ORT_DYLIB_PATH=$(ls "$CUDA_STASH"/lib/libonnxruntime.so.* | head -1)
  # CUDA 13 / cuDNN 9 from the device Python's nvidia-* wheels (RUNTIME.md)
  NV=$(${PY:-python3} -c "import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))" 2>/dev/null || true)
  if [ -n "$NV" ]; then
    export LD_LIBRARY_PATH=$(find "$NV/nvidia" -maxdepth 2 -name lib -type d | tr '\n' ':')$CUDA_STASH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  export FE_BIN=$DEV/flamingo-eval-cuda FE_DEVICE_ARG=cuda:0 FE_ORT_DYLIB=$ORT_DYLIB_PATH
  chmod +x "$FE_BIN"
  "$FE_BIN" model inspect tests/fixtures/models/tiny-gptneox --device cuda:0 > /dev/null \
    || { echo "device_bench: the CUDA provider does not load (see above)" >&2; exit 1; }
  set -- --cuda-ready "$@"
fi

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
FE_DEVICE=cpu
if [ "${1:-}" = "--cuda-ready" ]; then
  shift; FE_DEVICE=cuda:0; export ORT_DYLIB_PATH=$FE_ORT_DYLIB
else
  export FE_BIN=$DEV/flamingo-eval ORT_DYLIB_PATH=$DEV/libonnxruntime.so.1.32.0
fi
chmod +x "$FE_BIN"
DEVICE=cpu; $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" && DEVICE=cuda:0
scripts/bench_vs_openflamingo.sh --device "$DEVICE" --fe-device "$FE_DEVICE" --threads "$(nproc)" --out "$OUT" "$@" \
  2>&1 | tee "$OUT/bench.log"
