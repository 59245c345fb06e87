#!/usr/bin/env bash
# Re-create every tiny fixture model byte-for-byte:
#   export/make_fixtures.sh [NAME ...]     (default: all of export/tiny/configs/*.yaml)
# Creates export/.venv first if needed (export/setup_venv.sh), retrains the shared base tokenizer
# (export/tiny/base_tokenizer) and the LLaMA-style one (export/tiny/llama_tokenizer), then builds, exports, parity-checks and writes goldens for each model into
# tests/fixtures/models/<name>/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
ALL=$(( $# == 0 ))  # no names: every model config, and the tiny-clip RICES encoder fixture
"$HERE/setup_venv.sh"
PY="$HERE/.venv/bin/python"
# single-threaded, CPU-feature-independent math so that the files do not depend on the machine
export FLAMINGO_EXPORT_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MKL_CBWR=COMPATIBLE
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 PYTHONHASHSEED=0
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$REPO"
"$PY" -m export.tiny.train_tokenizer export/tiny/base_tokenizer >/dev/null
"$PY" -m export.tiny.train_llama_tokenizer export/tiny/llama_tokenizer >/dev/null
if [[ $# -eq 0 ]]; then
  set -- $(cd "$HERE/tiny/configs" && ls *.yaml | sed 's/\.yaml$//')
fi
# tiny-clip (tests/fixtures/clip/tiny-clip, built by export/tiny/make_tiny_clip.py) is not a model config
CLIP=$ALL
# tiny-idefics (export/families/idefics_fixture.py: transformers' IdeficsForVisionText2Text) is not a model config,
# nor its compatibility-mode sibling tiny-idefics-tf433 (tests/fixtures/models_compat/)
IDEFICS=$ALL
IDEFICS_COMPAT=$ALL
NAMES=()
for n in "$@"; do
  if [[ $n == tiny-clip ]]; then CLIP=1; elif [[ $n == tiny-idefics ]]; then IDEFICS=1
  elif [[ $n == tiny-idefics-tf433 ]]; then IDEFICS_COMPAT=1; else NAMES+=("$n"); fi
done
if [[ ${#NAMES[@]} -gt 0 ]]; then
  "$PY" -m export.tiny.make_tiny "${NAMES[@]}" --summary
fi
if [[ $IDEFICS -eq 1 ]]; then
  "$PY" -m export.families.idefics_fixture
fi
if [[ $IDEFICS_COMPAT -eq 1 ]]; then
  "$PY" -m export.families.idefics_fixture --compat-fixture
fi
if [[ $CLIP -eq 1 ]]; then
  W="$(mktemp -d)"
  trap 'rm -rf "$W"' EXIT
  "$PY" -m export.tiny.make_tiny_clip "$W" --fixture
fi
