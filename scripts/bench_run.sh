#!/usr/bin/env bash
# Measures `flamingo-eval run` on the tiny fixture models and the bundled demo benchmarks: samples/s per task
# and shot count, vision-encoder calls per evaluated sample, share of wall time inside ONNX Runtime, peak RSS.
# Usage: scripts/bench_run.sh [extra run flags, e.g. --threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_ort.sh >/dev/null
cargo build --release --locked --quiet
BIN=target/release/flamingo-eval
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf "| benchmark | model | shots | samples | wall s | samples/s | vision calls/sample | images encoded/sample | inside ORT | peak RSS MB |\n"
printf "|---|---|---|---|---|---|---|---|---|---|\n"
run_one() { # bench model shots
  local b=$1 m=$2 s=$3 dir="$out/$1-$2-$3"
  /usr/bin/time -f "%M" -o "$dir.rss" "$BIN" run --quiet --model "tests/fixtures/models/$m" \
    --benchmark "benchmarks/$b.yaml" --shots "$s" --out "$dir" "${@:4}" >/dev/null 2>"$dir.err" || { cat "$dir.err"; exit 1; }
  python3 - "$dir" "$b" "$m" "$s" <<'PY'
import json, sys
d, b, m, s = sys.argv[1:5]
j = json.load(open(f"{d}/summary.json"))
p = j["provenance"]
n = p["samples_evaluated_this_invocation"]
t = p["times"]["total_s"]
rss = int(open(d + ".rss").read().split()[-1]) / 1024
print(f"| {b} | {m} | {s} | {n} | {t:.2f} | {n / t:.1f} | {p['vision_encoder_calls'] / n:.2f} | {p['images_encoded'] / n:.2f} | {100 * p['times']['ort_share']:.0f}% | {rss:.0f} |")
PY
}
for s in 0 4 32; do run_one demo_vqa tiny-gptneox "$s" "$@"; done
for s in 0 4 32; do run_one demo_vqa tiny-mpt "$s" "$@"; done
for s in 0 4; do run_one demo_coco tiny-gptneox "$s" "$@"; done
for s in 0 4; do run_one demo_hateful tiny-gptneox "$s" "$@"; done
for s in 0 4; do run_one demo_videoqa tiny-video "$s" "$@"; done
