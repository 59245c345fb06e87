#!/usr/bin/env bash
# The full test suite, from a fresh checkout: installs what it needs (ffmpeg from Debian, the pinned ONNX
# Runtime library from PyPI, the exporter's Python venv), then runs the Rust tests and the exporter's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure_ffmpeg.sh

echo "== ONNX Runtime"
scripts/setup_ort.sh

echo "== exporter venv"
export/setup_venv.sh

echo "== Rust tests"
cargo test --locked --all-targets 2>&1

echo "== exporter tests"
set +e
export/.venv/bin/python -m pytest -q export/tests
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of this suite too.
if [ $rc -ne 0 ]; then
  echo "exporter tests failed (pytest exit $rc)" >&2
  exit $rc
fi
