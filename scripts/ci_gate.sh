#!/usr/bin/env bash
# The CI regression gate: evaluates the trained demo model (models/shapes-flamingo, export/demo_model/) on the
# shapes benchmarks (exactly the command that produced results/baseline/) into a temporary folder and runs
# `flamingo-eval compare` against the committed baseline. Exit 0: no regression; 1: a significant regression;
# 2: incomparable results. scripts/gate_teeth.sh checks that known faults make it fail.
#
#   scripts/ci_gate.sh            # gate (writes target/ci-gate/{compare.md,junit.xml})
#   scripts/ci_gate.sh --refresh  # regenerate results/baseline/ after an intended change (commit it)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_ort.sh >/dev/null
cargo build --locked --quiet
BIN="${CARGO_TARGET_DIR:-target}/debug/flamingo-eval"
MODEL=models/shapes-flamingo
BENCHMARKS="shapes_caption shapes_vqa shapes_hateful shapes_binding"

run_all() { # $1: output folder
  for b in $BENCHMARKS; do
    "$BIN" run --model "$MODEL" --benchmark "benchmarks/$b.yaml" --out "$1/$b" --quiet --threads 1 >/dev/null
  done
}

if [ "${1:-}" = "--refresh" ]; then
  tmp=$(mktemp -d)
  run_all "$tmp"
  rm -rf results/baseline
  mkdir -p results/baseline
  for b in $BENCHMARKS; do
    mkdir -p "results/baseline/$b"
    cp "$tmp/$b"/{run.json,samples.jsonl,summary.json,summary.csv} "results/baseline/$b/"
  done
  rm -rf "$tmp"
  echo "results/baseline/ refreshed; review the diff and commit it"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_all "$tmp/candidate"
mkdir -p target/ci-gate
set +e
"$BIN" compare results/baseline "$tmp/candidate" --markdown target/ci-gate/compare.md --junit target/ci-gate/junit.xml
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "regression gate failed (compare exit $rc): see target/ci-gate/compare.md; if the change is intended, run scripts/ci_gate.sh --refresh and commit results/baseline/" >&2
fi
exit $rc
