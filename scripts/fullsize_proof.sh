#!/usr/bin/env bash
# Full-size proof (NOT in CI; measured on 2 shared cores: ~23 min, 12.1 GB RAM, 15.5 GB disk at peak with
# --dtype fp16 inputs, ~20 GB with fp32 ones; docs/PERFORMANCE.md "Full-size proof"):
#   1. random-init files of exactly OpenFlamingo-3B-vitl-mpt1b's structure in the layout a user downloads
#      (export/perf/fullsize_random.py: LM folder, open_clip weights, checkpoint.pt);
#   2. their export through the preset path (`export_openflamingo --preset OpenFlamingo-3B-vitl-mpt1b`, staged:
#      export/staged.py), under GNU time -v (peak RSS), parity check included; the release files are deleted
#      afterwards unless KEEP_RELEASE=1;
#   3. `flamingo-eval run` on synthetic VQAv2- and COCO-layout samples (export/perf/make_data.py) at 0 and 4
#      shots, each under GNU time -v; summary.json's stage times;
#   4. OUT/proof.json + OUT/proof.md: sizes, peak RSS, times; the export is deleted unless KEEP_EXPORT=1.
# Usage: scripts/fullsize_proof.sh [--out DIR] [--dtype fp32|fp16] [--limit N] [--shots 0,4] [--threads N]
#        [--model DIR (skip 1-2: measure an existing export, e.g. after a contract change)] [--skip-export]
# FE_BIN: a prebuilt flamingo-eval (default: cargo build --release). ORT_DYLIB_PATH: the ONNX Runtime library.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT=.cache/fullsize; DTYPE=fp32; LIMIT=2; SHOTS=0,4; THREADS=$(nproc); MODEL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2;; --dtype) DTYPE=$2; shift 2;; --limit) LIMIT=$2; shift 2;;
    --shots) SHOTS=$2; shift 2;; --threads) THREADS=$2; shift 2;; --model) MODEL=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
PY=export/.venv/bin/python
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ROOT/.ort/libonnxruntime.so.1.32.0}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false FLAMINGO_EXPORT_THREADS=$THREADS
log() { echo "[fullsize_proof $(date -u +%T)] $*" >&2; }
mkdir -p "$OUT"
{ echo "date: $(date -u +%FT%TZ)"; echo "host: $(uname -srm), $(nproc) cores"
  echo "git: $(git rev-parse HEAD)$(git diff --quiet || echo ' (dirty)')"; free -g; df -h "$OUT"; } > "$OUT/env.txt"
FE_BIN="${FE_BIN:-}"
if [ -z "$FE_BIN" ]; then
  cargo build --release --locked --quiet
  FE_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flamingo-eval
fi

if [ -z "$MODEL" ]; then
  MODEL=$OUT/of3b-export
  avail=$(df -k --output=avail "$OUT" | tail -1)
  [ "$DTYPE" = fp32 ] && need=$((21 * 1024 * 1024)) || need=$((16 * 1024 * 1024))
  if [ "$avail" -lt "$need" ]; then
    echo "fullsize_proof: $((avail / 1024 / 1024)) GB free under $OUT, $((need / 1024 / 1024)) GB needed (--dtype fp16 writes the inputs in half)" >&2
    exit 1
  fi
  if [ ! -f "$OUT/release/checkpoint.pt" ]; then
    log "writing random-init release files ($DTYPE)"
    /usr/bin/time -v -o "$OUT/release.time" "$PY" -m export.perf.fullsize_random --out "$OUT/release" --dtype "$DTYPE" \
      > "$OUT/release.json"
  fi
  R=$OUT/release
  log "exporting through --preset OpenFlamingo-3B-vitl-mpt1b (staged)"
  rm -rf "$MODEL"
  /usr/bin/time -v -o "$OUT/export.time" "$PY" -m export.export_openflamingo --preset OpenFlamingo-3B-vitl-mpt1b \
    --checkpoint "$R/checkpoint.pt" --lm "$R/mpt-1b-redpajama-200b" --clip "$R/open_clip_pytorch_model.bin" \
    --clip-model "$R/ViT-L-14-quickgelu.json" --out "$MODEL" > "$OUT/export.json" 2> "$OUT/export.log" \
    || { tail -40 "$OUT/export.log" >&2; exit 1; }
  du -sb "$MODEL" | cut -f1 > "$OUT/export.bytes"
  [ "${KEEP_RELEASE:-0}" = 1 ] || { log "deleting the release files"; rm -rf "$OUT/release"; }
fi

log "benchmark data"
"$PY" -m export.perf.make_data --out "$OUT/data" --queries "$LIMIT" --pool 16 > /dev/null
for task in vqav2 coco; do
  for shot in ${SHOTS//,/ }; do
    d=$OUT/runs/$task-$shot; rm -rf "$d"; mkdir -p "$(dirname "$d")"
    log "flamingo-eval run $task $shot-shot ($LIMIT samples)"
    /usr/bin/time -v -o "$d.time" "$FE_BIN" run --model "$MODEL" --benchmark "$OUT/data/bench_$task.yaml" \
      --shots "$shot" --trials 1 --limit "$LIMIT" --threads "$THREADS" --out "$d" --quiet > "$d.log" 2>&1 \
      || { cat "$d.log" >&2; exit 1; }
  done
done
"$PY" -m export.perf.fullsize_report "$OUT" "$MODEL"
[ "${KEEP_EXPORT:-0}" = 1 ] || [ "$MODEL" != "$OUT/of3b-export" ] || { log "deleting the export"; rm -rf "$MODEL"; }
log "done: $OUT/proof.md"
