#!/usr/bin/env bash
# Seed corpora for the cargo-fuzz targets from the repository's own inputs (first byte = what the rest
# replaces, as the targets read it). Then, from the repository root:
#   cargo +nightly fuzz run benchmark_inputs -s none fuzz/corpus/benchmark_inputs -- -max_total_time=60
#   cargo +nightly fuzz run results_inputs  -s none fuzz/corpus/results_inputs  -- -max_total_time=60
# (`cargo install cargo-fuzz`; `-s none` skips AddressSanitizer, which the pure-Rust paths do not need.)
set -euo pipefail
cd "$(dirname "$0")/.."
b=fuzz/corpus/benchmark_inputs r=fuzz/corpus/results_inputs
mkdir -p "$b" "$r"
byte() { printf "\\x$(printf %02x "$1")"; }
i=0
for f in benchmarks/*.yaml; do { byte 0; cat "$f"; } > "$b/bench-$i"; i=$((i + 1)); done
j=0  # the order of flamingo_eval::fuzzing::DATASET_FILES
for f in vqa_val_questions.json vqa_val_annotations.json vqa_train_questions.json karpathy_coco.json captions_test_refs.json memes_dev.jsonl videoqa_test.json; do
  { byte $((2 * j + 1)); cat "data/demo/$f"; } > "$b/data-$j"; j=$((j + 1))
done
n=0  # runs × RESULTS_FILES: the first byte is file * 3 + run
for run in demo_vqa demo_coco demo_hateful; do
  w=0
  for f in samples.jsonl run.json summary.json summary.csv; do
    { byte $((w * 3 + n)); cat "tests/fixtures/results/tiny-gptneox-demo/$run/$f"; } > "$r/$run-$w"; w=$((w + 1))
  done
  n=$((n + 1))
done
echo "seeded $(ls "$b" | wc -l) + $(ls "$r" | wc -l) inputs under fuzz/corpus/"
