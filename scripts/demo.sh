#!/usr/bin/env bash
# The main job on the bundled default: the trained tiny OpenFlamingo-architecture model (models/shapes-flamingo,
# trained on CPU by export/demo_model/train_tiny.py, exported by export/) evaluated on the held-out split of the
# procedural shapes benchmarks (data/shapes: captions, VQA, HatefulMemes-layout classification and few-shot
# fast binding, in the official layouts) at 0, 4 and 8 shots, then a report with the shot-scaling plots.
# Installs what it needs first.
#   scripts/demo.sh [extra `run` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup_ort.sh
cargo build --release --locked --quiet
BIN=target/release/flamingo-eval
MODEL=${MODEL:-models/shapes-flamingo}

for b in shapes_caption shapes_vqa shapes_hateful shapes_binding; do
  "$BIN" run --model "$MODEL" --benchmark "benchmarks/$b.yaml" --out "results/$b" "$@"
  echo
done
"$BIN" report --results results/shapes_caption results/shapes_vqa results/shapes_hateful results/shapes_binding \
  --out results/demo_report
echo
echo "Results written under results/shapes_*/ (summary.json, summary.csv, samples.jsonl, run.json);"
echo "report with shot-scaling plots: results/demo_report/report.md (.html, shot_scaling_*.svg/png)."
echo "The older real-photo demo benchmarks (benchmarks/demo_*.yaml, random-weight fixtures) still run with"
echo "  $BIN run --model tests/fixtures/models/tiny-gptneox --benchmark benchmarks/demo_vqa.yaml"
