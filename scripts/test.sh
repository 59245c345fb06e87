#!/usr/bin/env bash
# The full test suite, from a fresh checkout: installs what it needs (ffmpeg from Debian, the pinned ONNX
# Runtime library from PyPI, the exporter's Python venv; Slurm and munge from Debian for the cluster test), then
# runs the Rust tests, a sharded run on a private Slurm cluster, the regression gate and the exporter's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Disk: a run from nothing needs about 7 GiB (exporter venv 4.7 GiB, most of it the CUDA libraries torch 2.0.1
# will not import without; Rust build 1 GiB; chromium and ffmpeg 0.6 GiB; one wheel in flight). Say so up front
# rather than die later inside pip or the linker.
need_mib=600
[ -x export/.venv/bin/python ] || need_mib=$((need_mib + 5800))
[ -d target/debug ] || need_mib=$((need_mib + 1200))
free_mib=$(df -Pm . | awk 'NR==2 {print $4}')
echo "== disk: ${free_mib} MiB free at $(pwd); this run needs about ${need_mib} MiB more"
if [ "${free_mib:-0}" -lt "$need_mib" ]; then
  echo "warning: probably not enough disk space; free some (old cargo target/ folders, ~/.cache/pip) if a step below fails with 'No space left on device'" >&2
fi
export CARGO_INCREMENTAL=0

scripts/ensure_ffmpeg.sh

# Chromium renders the HTML report in a screenshot test; xmllint validates JUnit XML against its schema.
if ! command -v chromium >/dev/null 2>&1 || ! command -v xmllint >/dev/null 2>&1; then
  echo "== installing chromium and libxml2-utils (Debian; report and JUnit tests)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium libxml2-utils >/dev/null
fi

# WordNet 3.0 dict files (Debian): the OK-VQA stemming test runs OpenFlamingo's nltk-based stemmer on them.
if [ ! -f /usr/share/wordnet/index.verb ] || [ ! -f /usr/share/wordnet/index.sense ]; then
  echo "== installing wordnet-base and wordnet-sense-index (Debian; OK-VQA stemming oracle)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null
fi

echo "== ONNX Runtime"
scripts/setup_ort.sh

echo "== exporter venv"
export/setup_venv.sh
# Test-time oracles (scikit-learn, nltk, inflection): additive, no pinned export package changes.
export/.venv/bin/python -m pip install --quiet --no-cache-dir -r export/requirements-oracles.txt -c export/constraints.txt

echo "== Rust tests"
cargo test --locked --all-targets 2>&1

echo "== sharded runs on a real single-node Slurm cluster (prepare → array with a failed task retried → merge)"
scripts/test_slurm.sh

echo "== Kubernetes examples: schema validation (kubernetes-validate, PyPI) and stage ordering"
scripts/test_k8s_manifests.sh

echo "== PTB tokenizer vs pycocoevalcap's Java tokenizer (differential; installs Java and the pycocoevalcap wheel if missing)"
scripts/ptb_differential/run.sh

echo "== regression gate: trained demo model on the shapes benchmarks vs results/baseline (flamingo-eval compare)"
scripts/ci_gate.sh

echo "== the gate has teeth: known faults must fail it, a clean rerun must pass"
PY=export/.venv/bin/python scripts/gate_teeth.sh

echo "== exporter tests"
# IDEFICS' fixed cross-attention is checked against transformers 4.36.2 (+ tokenizers 0.15.2), installed from
# PyPI into .cache/transformers-4.36.2 with pip --target (the pinned venv is not changed)
export/.venv/bin/python -c "from export.families.idefics import ensure_fixed_transformers as f; f()"
set +e
export/.venv/bin/python -m pytest -q export/tests
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of this suite too.
if [ $rc -ne 0 ]; then
  echo "exporter tests failed (pytest exit $rc)" >&2
  exit $rc
fi
