#!/usr/bin/env bash
# flamingo-eval vs OpenFlamingo's own evaluation, same machine, same samples, same demonstrations.
#
#   scripts/bench_vs_openflamingo.sh [--of-repo DIR] [--queries 40] [--queries-32 4] [--pool 32] [--shots 0,4,32]
#                                    [--models tiny-gptneox,mid-b16] [--tasks vqav2,coco] [--threads N]
#                                    [--batch-size 8] [--device cpu|cuda:0] [--fe-device cpu|cuda:0] [--out DIR]
#                                    [--fe-dtype fp32|fp16] [--fe-args "--io-binding ..."] [--of-precision fp32|amp_bf16]
#
# --device: where OpenFlamingo (PyTorch) runs; --fe-device: where flamingo-eval's ONNX Runtime runs (default cpu).
# --fe-dtype fp16: flamingo-eval runs float16 graphs converted from each model's fp32 export (export/precision.py,
# cached in .cache/perf/fp16/MODEL; OpenFlamingo keeps the fp32 PyTorch weights, so "identical predictions" then
# measures the fp16 difference too). --fe-args: extra `flamingo-eval run` flags, e.g. --io-binding (device-resident
# KV cache) or "--batching padded"; recorded in OUT/env.txt. --of-precision: OpenFlamingo's `precision` model argument
# (default fp32; amp_bf16 = the bf16 autocast its eval README mentions, CUDA only).
# FE_BIN=PATH uses a prebuilt flamingo-eval instead of building one; ORT_DYLIB_PATH a given ONNX Runtime library.
#
# In one invocation: builds flamingo-eval (release), fetches ONNX Runtime (scripts/setup_ort.sh), reuses the
# tiny fixture model and builds (once, cached in .cache/perf/) the mid-size random-init model (ViT-B/16 at
# 224 px + 12-layer GPT-NeoX of width 512, export/perf/mid-b16.yaml) through the project's exporter, writes a
# synthetic dataset in the VQAv2 and COCO/Karpathy layouts, then for every model × task × shot count runs
# `flamingo-eval run` and OpenFlamingo's `evaluate_vqa` / `evaluate_captioning` (open_flamingo/eval at 655f693,
# fed the demonstrations flamingo-eval drew, see export/perf/run_openflamingo.py), each in its own process under
# GNU time, and prints the table (also in OUT/table.md, OUT/results.json). Docs: docs/PERFORMANCE.md.
#
# Defaults: 40 queries at 0 and 4 shots, 4 at 32 shots, a demonstration pool of 32 train images (64 VQA
# questions). That is 1.25 queries per pool image; OpenFlamingo's protocol (5000 queries, a 2048-example query
# set) has ~2.4, so the default still under-states how often a real run reuses demonstration images.
#
# --of-repo: a checkout of github.com/mlfoundations/open_flamingo (commit 655f693, tag 2.0.1). Default:
# .cache/open_flamingo-655f693, cloned there when missing (needs network). Its code is used, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OF_REPO=""; QUERIES=40; QUERIES_32=4; SHOTS=0,4,32; MODELS=tiny-gptneox,mid-b16; TASKS=vqav2,coco
THREADS=$(nproc); BATCH=8; DEVICE=cpu; FE_DEVICE=cpu; OUT=""; POOL=32; FE_BIN="${FE_BIN:-}"; FE_DTYPE=fp32; FE_ARGS=""; OF_PRECISION=fp32
while [ $# -gt 0 ]; do
  case "$1" in
    --of-repo) OF_REPO=$2; shift 2;;
    --queries) QUERIES=$2; shift 2;;
    --queries-32) QUERIES_32=$2; shift 2;;
    --shots) SHOTS=$2; shift 2;;
    --models) MODELS=$2; shift 2;;
    --tasks) TASKS=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    --batch-size) BATCH=$2; shift 2;;
    --device) DEVICE=$2; shift 2;;
    --fe-device) FE_DEVICE=$2; shift 2;;
    --pool) POOL=$2; shift 2;;
    --fe-dtype) FE_DTYPE=$2; shift 2;;
    --fe-args) FE_ARGS=$2; shift 2;;
    --of-precision) OF_PRECISION=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    -h|--help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
case "$FE_DTYPE" in fp32|fp16) ;; *) echo "--fe-dtype must be fp32 or fp16, not $FE_DTYPE" >&2; exit 2;; esac
CACHE=$ROOT/.cache/perf
OUT=${OUT:-$CACHE/runs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$CACHE" "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=$ROOT/export/.venv/bin/python
log() { echo "== $*" >&2; }

# --- tools
[ -x "$PY" ] || { log "creating export/.venv"; export/setup_venv.sh; }
[ -x /usr/bin/time ] || { log "installing GNU time"; { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; } >/dev/null 2>&1 || true; }
# GNU time -v, or (a machine without it and without network, e.g. the lent GPU machine) its two lines we read
if [ -x /usr/bin/time ]; then TIMEV=(/usr/bin/time -v); else log "no GNU time: using export/perf/timev.py"; TIMEV=("$PY" -m export.perf.timev); fi
if [ -z "${ORT_DYLIB_PATH:-}" ]; then scripts/setup_ort.sh >&2; fi
if [ -z "$FE_BIN" ]; then
  log "building flamingo-eval (release)"
  cargo build --release --locked --quiet
  FE_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flamingo-eval
fi
# OpenFlamingo's eval imports these (PROTOCOL.md §9); installed next to, not into, the exporter's venv.
EXTRA=$CACHE/of-extra
if [ ! -f "$EXTRA/.done" ]; then
  log "installing OpenFlamingo eval dependencies into $EXTRA"
  "$PY" -m pip install -q --disable-pip-version-check --upgrade --target "$EXTRA" --no-deps \
    pycocotools==2.0.8 pycocoevalcap==1.2 nltk==3.9.1 inflection==0.5.1 scikit-learn==1.5.2 scipy==1.13.1 \
    joblib==1.4.2 threadpoolctl==3.5.0 regex==2024.9.11 click==8.1.7
  touch "$EXTRA/.done"
fi
if [ -z "$OF_REPO" ]; then
  OF_REPO=$ROOT/.cache/open_flamingo-655f693
  if [ ! -f "$OF_REPO/open_flamingo/eval/models/open_flamingo.py" ]; then
    log "cloning open_flamingo (655f693) into $OF_REPO"
    git clone -q https://github.com/mlfoundations/open_flamingo "$OF_REPO"
    git -C "$OF_REPO" checkout -q 655f693
  fi
fi
# Only a checkout of its own can be checked (a plain copy of the files would report the enclosing repository).
if [ "$(git -C "$OF_REPO" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$OF_REPO" && pwd -P)" ]; then
  case "$(git -C "$OF_REPO" rev-parse HEAD)" in 655f693*) ;; *) log "warning: $OF_REPO is not at 655f693";; esac
else
  log "note: $OF_REPO is not a git checkout; its commit cannot be checked (expected 655f693)"
fi

# --- models and data
log "models (mid-b16 is exported once into $CACHE/mid-b16)"
FLAMINGO_EXPORT_THREADS=$THREADS "$PY" -m export.perf.models build --cache "$CACHE" > "$OUT/models.tsv"
# the machine's fp32 matmul throughput (onnxruntime MatMul), for the table's "physical limit" column
"$PY" -m export.perf.flops --bench --threads "$THREADS" > "$OUT/matmul.json"
DATA=$CACHE/data-q$QUERIES-p$POOL
"$PY" -m export.perf.make_data --out "$DATA" --queries "$QUERIES" --pool "$POOL" >/dev/null

# --- runs
{
  echo "date: $(date -u +%FT%TZ)"; echo "host: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "git: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "command: $0 --queries $QUERIES --queries-32 $QUERIES_32 --pool $POOL --shots $SHOTS --models $MODELS --tasks $TASKS --threads $THREADS --batch-size $BATCH --device $DEVICE --fe-device $FE_DEVICE --fe-dtype $FE_DTYPE --fe-args '$FE_ARGS' --of-precision $OF_PRECISION"
} > "$OUT/env.txt"
FE_DEV=(); [ "$FE_DEVICE" = cpu ] || FE_DEV=(--device "$FE_DEVICE")
read -r -a FE_EXTRA <<< "$FE_ARGS"
for model in ${MODELS//,/ }; do
  mdir=$(awk -v m="$model" '$1 == m {print $2}' "$OUT/models.tsv")
  if [ "$FE_DTYPE" = fp16 ]; then
    half=$CACHE/fp16/$model
    if [ ! -f "$half/model.yaml" ]; then
      log "$model: converting to float16 graphs ($half)"
      rm -rf "$half"; mkdir -p "$CACHE/fp16"
      "$PY" -m export.precision --dtype fp16 "$mdir" "$half" > "$OUT/$model-fp16.log" 2>&1 || { tail -20 "$OUT/$model-fp16.log" >&2; exit 1; }
    fi
    mdir=$half
  fi
  for task in ${TASKS//,/ }; do
    for shot in ${SHOTS//,/ }; do
      d=$OUT/$model/$task/$shot; rm -rf "$d"; mkdir -p "$d"
      n=$QUERIES; [ "$shot" -ge 32 ] && n=$QUERIES_32
      log "$model $task $shot-shot: flamingo-eval ($n samples)"
      "${TIMEV[@]}" -o "$d/fe.time" "$FE_BIN" run --model "$mdir" --benchmark "$DATA/bench_$task.yaml" \
        --shots "$shot" --num-trials 1 --limit "$n" --batch-size "$BATCH" --threads "$THREADS" "${FE_DEV[@]}" \
        ${FE_EXTRA[@]+"${FE_EXTRA[@]}"} --out "$d/fe" --quiet > "$d/fe.log" 2>&1 || { cat "$d/fe.log" >&2; exit 1; }
      log "$model $task $shot-shot: OpenFlamingo ($n samples)"
      PYTHONPATH=$EXTRA${PYTHONPATH:+:$PYTHONPATH} "${TIMEV[@]}" -o "$d/of.time" "$PY" -m export.perf.run_openflamingo \
        --of-eval "$OF_REPO" --model "$model" --cache "$CACHE" --task "$task" --shots "$shot" \
        --fe-samples "$d/fe/samples.jsonl" --data "$DATA" --out "$d/of.json" --batch-size "$BATCH" \
        --threads "$THREADS" --device "$DEVICE" --precision "$OF_PRECISION" > "$d/of.log" 2>&1 || { tail -30 "$d/of.log" >&2; exit 1; }
      tail -1 "$d/of.log" >&2
    done
  done
done
"$PY" -m export.perf.table "$OUT"
echo
echo "results: $OUT (table.md, results.json, env.txt, per-run logs)"
