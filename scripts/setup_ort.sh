#!/usr/bin/env bash
# Fetches the pinned ONNX Runtime shared library from PyPI into .ort/ (git-ignored), verifying the wheel's
# checksum. Idempotent: does nothing when the library is already there. The .so does not depend on the Python
# version, so the cp311 wheel is requested explicitly whatever python3 this machine has.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.32.0
WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
DEST=.ort
LIB=$DEST/libonnxruntime.so.${ORT_VERSION}

if [ -f "$LIB" ]; then
  echo "ONNX Runtime ${ORT_VERSION} already in $LIB"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "Downloading onnxruntime==${ORT_VERSION} from PyPI..."
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 --implementation cp -d "$tmp" "onnxruntime==${ORT_VERSION}"
got=$(sha256sum "$tmp/$WHEEL" | cut -d' ' -f1)
if [ "$got" != "$WHEEL_SHA256" ]; then
  echo "error: checksum mismatch for $WHEEL: expected $WHEEL_SHA256, got $got" >&2
  exit 1
fi
mkdir -p "$DEST"
python3 - "$tmp/$WHEEL" "$DEST" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base.startswith("libonnxruntime") and ".so" in base:
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
PY
ln -sf "libonnxruntime.so.${ORT_VERSION}" "$DEST/libonnxruntime.so"
echo "ONNX Runtime ${ORT_VERSION} installed in $LIB"
