#!/usr/bin/env bash
# The speed comparison on a lent GPU machine: OpenFlamingo (PyTorch, cuda:0) against flamingo-eval on ONNX
# Runtime — the CPU provider with all cores, or (with a --cuda pack) the CUDA execution provider with a
# device-resident KV cache (--io-binding) and optionally float16 graphs — same samples and demonstrations as
# scripts/bench_vs_openflamingo.sh, which it runs there. Docs: docs/PERFORMANCE.md "GPU machine".
#
# The device machine (nvidia-h200: Python 3.12 with torch, onnx and onnxruntime 1.30, no open_flamingo or
# open_clip; no Rust, no network; /work/.library/device/KINDS.md) gets everything else from one pack, built here
# and split into parts that fit the 64 MiB a device call may carry:
#
#   here:    scripts/device_bench.sh --prepare [--cuda]
#              builds flamingo-eval (release; with --cuda also --features cuda), downloads the cp312 wheels the
#              device lacks and onnxruntime 1.32's (for its libonnxruntime.so; with --cuda the onnxruntime-gpu
#              wheel's libraries), exports open_flamingo/ of the OpenFlamingo checkout at 655f693, packs it all
#              into one zstd tarball and splits it into .cache/device-pack/part-NN (48 MiB) with SHA256SUMS
#              (every part and the tarball). Prints the calls to make.
#   device:  one call per part but the last, each carrying .cache/device-pack/part-NN and .cache/device-pack/SHA256SUMS:
#              scripts/device_bench.sh --stash     # checks the part's sha256, copies it to /tmp/flamingo-pack
#                                                  # (outside the checkout: kept while the machine stays warm)
#            then the call carrying the last part:
#              OUT=$OUT scripts/device_bench.sh --run [bench_vs_openflamingo.sh flags, e.g. --queries 16 --queries-32 2
#                                                     --fe-dtype fp16]
#              stashes it, reassembles, checks the tarball's sha256, installs the wheels into /tmp/flamingo-device,
#              points ORT_DYLIB_PATH at the pack's library (the GPU one, with LD_LIBRARY_PATH at the Python's nvidia-*
#              CUDA 13 / cuDNN 9 libraries, when the pack has it) and runs the comparison into $OUT.
#
# NOT RUN YET: no session so far was lent a GPU machine. What is unverified there: the cp312 wheel set (transformers
# 4.34.1 + tokenizers 0.14.1, since tokenizers 0.13.3 has no cp312 wheel) under the device's torch 2.11 / numpy 2,
# and the onnxruntime-gpu 1.31.1 libraries against its CUDA 13 / cuDNN 9.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PACK=${DEVICE_PACK:-$ROOT/.cache/device-pack}
STAGE=$ROOT/.cache/device-stage
STASH=/tmp/flamingo-pack
DEVROOT=/tmp/flamingo-device
ORT_VERSION=1.32.0
ORT_GPU_VERSION=${ORT_GPU_VERSION:-1.31.1}   # RUNTIME.md: the onnxruntime-gpu wheel for CUDA 13 + cuDNN 9
PYV=${DEVICE_PYTHON_VERSION:-3.12}
# what the device's Python lacks for OpenFlamingo's eval and the exporter (its own torch, numpy, onnx, pillow,
# scikit-learn, einops, pyyaml, safetensors, regex, tqdm stay)
WHEELS=(open-flamingo==2.0.1 open_clip_torch==2.20.0 transformers==4.34.1 tokenizers==0.14.1 huggingface-hub==0.17.3
        einops-exts==0.0.4 ftfy==6.3.1 wcwidth pycocotools==2.0.8 nltk==3.9.1 inflection==0.5.1)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
die() { echo "device_bench: $*" >&2; exit 1; }

if [ "${1:-}" = "--prepare" ]; then
  CUDA=0; [ "${2:-}" = "--cuda" ] && CUDA=1
  rm -rf "$STAGE" "$PACK"; mkdir -p "$STAGE/wheels" "$STAGE/ort" "$PACK"
  cargo build --release --locked --quiet
  cp "${CARGO_TARGET_DIR:-target}/release/flamingo-eval" "$STAGE/flamingo-eval"
  if [ $CUDA = 1 ]; then
    cargo build --release --locked --quiet --features cuda
    cp "${CARGO_TARGET_DIR:-target}/release/flamingo-eval" "$STAGE/flamingo-eval-cuda"
    cargo build --release --locked --quiet   # leave the default binary in target/
  fi
  strip "$STAGE"/flamingo-eval* 2>/dev/null || true
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp "${PLATFORMS[@]}" \
    -d "$STAGE/wheels" "${WHEELS[@]}"
  # libonnxruntime.so from the onnxruntime wheel (the device's Python onnxruntime 1.30 is older than flamingo-eval's
  # minimum, 1.31), and with --cuda the onnxruntime-gpu wheel's libraries
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    --implementation cp -d "$tmp" "onnxruntime==$ORT_VERSION"
  [ $CUDA = 1 ] && python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --implementation cp -d "$tmp" "onnxruntime-gpu==$ORT_GPU_VERSION"
  python3 - "$tmp" "$STAGE/ort" <<'PY'
import fnmatch, glob, os, sys, zipfile
for whl in glob.glob(os.path.join(sys.argv[1], "*.whl")):
    sub = "gpu" if "onnxruntime_gpu" in os.path.basename(whl) else "cpu"
    os.makedirs(os.path.join(sys.argv[2], sub), exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            b = os.path.basename(n)
            if n.startswith("onnxruntime/capi/") and (fnmatch.fnmatch(b, "libonnxruntime.so*")
                                                      or fnmatch.fnmatch(b, "libonnxruntime_providers_*.so")):
                with open(os.path.join(sys.argv[2], sub, b), "wb") as f:
                    f.write(z.read(n))
PY
  # OpenFlamingo's eval code at 655f693 (the PyPI wheel lacks eval/models): OF_GIT = any clone holding that commit
  # (bare is fine), default .cache/open_flamingo-655f693, cloned from GitHub when missing
  OF=${OF_GIT:-$ROOT/.cache/open_flamingo-655f693}
  if ! git -C "$OF" cat-file -e 655f693^{commit} 2>/dev/null; then
    git clone -q https://github.com/mlfoundations/open_flamingo "$OF" \
      || die "no open_flamingo clone with commit 655f693 at $OF and GitHub cannot be reached: set OF_GIT to one"
  fi
  mkdir -p "$STAGE/open_flamingo-655f693"
  # its Python sources only (eval/data holds large annotation files the benchmark does not read)
  git -C "$OF" ls-tree -r --name-only 655f693 open_flamingo | grep '\.py$' \
    | xargs git -C "$OF" archive 655f693 -- | tar -C "$STAGE/open_flamingo-655f693" -xf -
  [ -f "$STAGE/open_flamingo-655f693/open_flamingo/eval/models/open_flamingo.py" ] \
    || die "$OF: open_flamingo/eval/models/open_flamingo.py missing from commit 655f693's sources"
  tar -C "$STAGE" -cf - . | zstd -q -19 -T0 -o "$PACK/pack.tar.zst" -f
  split -b 48M -d -a 2 "$PACK/pack.tar.zst" "$PACK/part-"
  (cd "$PACK" && sha256sum pack.tar.zst part-* > SHA256SUMS && rm -f pack.tar.zst)
  rm -rf "$STAGE"
  du -sh "$PACK"/*
  parts=("$PACK"/part-*); n=${#parts[@]}
  echo "device calls, back to back (the machine is released after ~30 s idle), each carrying SHA256SUMS and one part:"
  for ((i = 0; i < n - 1; i++)); do
    echo "  carry [.cache/device-pack/SHA256SUMS, .cache/device-pack/$(basename "${parts[$i]}")]: scripts/device_bench.sh --stash"
  done
  echo "  carry [.cache/device-pack/SHA256SUMS, .cache/device-pack/$(basename "${parts[$((n - 1))]}")]: OUT=\$OUT scripts/device_bench.sh --run [flags]"
  exit 0
fi

stash() {
  [ -f "$PACK/SHA256SUMS" ] || die "$PACK/SHA256SUMS was not carried"
  mkdir -p "$STASH"; cp "$PACK/SHA256SUMS" "$STASH/"
  for p in "$PACK"/part-*; do
    [ -f "$p" ] || continue
    n=$(basename "$p")
    want=$(awk -v n="$n" '$2 == n {print $1}' "$PACK/SHA256SUMS")
    got=$(sha256sum "$p" | cut -d' ' -f1)
    [ "$want" = "$got" ] || die "$n: sha256 $got, SHA256SUMS says $want (carry it again)"
    cp "$p" "$STASH/"
  done
  ls -la "$STASH"
}

if [ "${1:-}" = "--stash" ]; then
  stash
  exit 0
fi

[ "${1:-}" = "--run" ] || die "usage: --prepare [--cuda] (here); --stash, then --run [bench flags] (on the device)"
shift
stash
for n in $(awk '$2 ~ /^part-/ {print $2}' "$STASH/SHA256SUMS"); do
  [ -f "$STASH/$n" ] || die "$n not stashed yet: run --stash in a call carrying it"
done
cat "$STASH"/part-* > "$STASH/pack.tar.zst"
want=$(awk '$2 == "pack.tar.zst" {print $1}' "$STASH/SHA256SUMS")
got=$(sha256sum "$STASH/pack.tar.zst" | cut -d' ' -f1)
[ "$want" = "$got" ] || die "reassembled pack sha256 $got, expected $want"
rm -rf "$DEVROOT"; mkdir -p "$DEVROOT"
zstd -q -d -c "$STASH/pack.tar.zst" | tar -C "$DEVROOT" -xf -

OUT=${OUT:-$ROOT/.cache/perf/runs/device}
PY=${PY:-python3}
mkdir -p "$OUT"
{
  echo "== nvidia-smi"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  echo "== python: $($PY --version 2>&1)"; echo "== cores: $(nproc)"
} | tee "$OUT/device.txt"
$PY -m pip install -q --no-index --no-deps --no-compile --target "$DEVROOT/site" "$DEVROOT"/wheels/*.whl 2>&1 | tail -3 | tee -a "$OUT/device.txt"
export PYTHONPATH=$DEVROOT/site${PYTHONPATH:+:$PYTHONPATH}
$PY - <<'PY' 2>&1 | tee -a "$OUT/device.txt"
import importlib
for m in ["torch", "open_flamingo", "open_clip", "transformers", "tokenizers", "einops", "einops_exts", "onnx",
          "onnxruntime", "yaml", "PIL", "pycocotools", "nltk", "inflection", "sklearn", "numpy"]:
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as e:  # report every missing piece, then fail below
        print(m, "MISSING:", e)
import torch
print("cuda available:", torch.cuda.is_available())
PY
# bench_vs_openflamingo.sh runs export/.venv/bin/python: make it this Python — a wrapper, not a symlink (a symlinked
# venv interpreter would not find its venv's site-packages)
if [ ! -x export/.venv/bin/python ]; then
  { [ -L export/.venv ] || [ -f export/.venv ]; } && rm -f export/.venv
  mkdir -p export/.venv/bin && rm -f export/.venv/bin/python
  printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v "$PY")" > export/.venv/bin/python && chmod +x export/.venv/bin/python
fi
# OpenFlamingo's eval dependencies came with the pack, not from pip inside the bench script
mkdir -p .cache/perf/of-extra && touch .cache/perf/of-extra/.done
FE_FLAGS=(--fe-device cpu)
if [ -f "$DEVROOT/flamingo-eval-cuda" ] && [ -d "$DEVROOT/ort/gpu" ]; then
  export FE_BIN=$DEVROOT/flamingo-eval-cuda
  export ORT_DYLIB_PATH=$(ls "$DEVROOT"/ort/gpu/libonnxruntime.so.* | head -1)
  # CUDA 13 / cuDNN 9 from the device Python's nvidia-* wheels (RUNTIME.md)
  NV=$($PY -c "import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))" 2>/dev/null || true)
  [ -n "$NV" ] && export LD_LIBRARY_PATH=$(find "$NV/nvidia" -maxdepth 3 -name lib -type d | tr '\n' ':')$DEVROOT/ort/gpu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  chmod +x "$FE_BIN"
  "$FE_BIN" model inspect tests/fixtures/models/tiny-gptneox --device cuda:0 > "$OUT/cuda_inspect.txt" 2>&1 \
    || { cat "$OUT/cuda_inspect.txt" >&2; die "the CUDA provider does not load (above)"; }
  FE_FLAGS=(--fe-device cuda:0 --fe-args --io-binding)
else
  export FE_BIN=$DEVROOT/flamingo-eval ORT_DYLIB_PATH=$DEVROOT/ort/cpu/libonnxruntime.so.$ORT_VERSION
fi
chmod +x "$FE_BIN"
DEVICE=cpu; $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" && DEVICE=cuda:0
scripts/bench_vs_openflamingo.sh --of-repo "$DEVROOT/open_flamingo-655f693" --device "$DEVICE" "${FE_FLAGS[@]}" \
  --threads "$(nproc)" --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log"
