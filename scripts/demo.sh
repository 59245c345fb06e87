#!/usr/bin/env bash
# The main job on the bundled default: a tiny OpenFlamingo-architecture model (random weights, exported by
# export/) evaluated on the bundled demo benchmarks (real photos, hand-written annotations in the official
# VQAv2 / COCO / HatefulMemes / MSRVTT-QA layouts) at 0 and 4 shots. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure_ffmpeg.sh
scripts/setup_ort.sh
cargo build --release --locked --quiet
BIN=target/release/flamingo-eval
MODEL=${MODEL:-tests/fixtures/models/tiny-gptneox}
VIDEO_MODEL=${VIDEO_MODEL:-tests/fixtures/models/tiny-video}

for b in demo_vqa demo_coco demo_hateful; do
  "$BIN" run --model "$MODEL" --benchmark "benchmarks/$b.yaml" --out "results/$b" "$@"
  echo
done
"$BIN" run --model "$VIDEO_MODEL" --benchmark benchmarks/demo_videoqa.yaml --out results/demo_videoqa "$@"
echo
echo "Results written under results/demo_*/ (summary.json, summary.csv, samples.jsonl, run.json)."
echo "The tiny models have random weights: the scores show the pipeline works, not model quality."
