#!/usr/bin/env bash
# Proves that the regression gate (scripts/ci_gate.sh: the trained demo model on the shapes benchmarks,
# `flamingo-eval compare` against results/baseline/) has teeth. It runs candidates with known faults and
# requires `compare` to report a regression (exit 1) for each, and a rerun of the same model to pass (exit 0):
#
#   rerun            the same model, benchmarks and data                      -> exit 0 on every benchmark
#   wrong-template   the VQA / caption prompt files replaced by the Flamingo  -> exit 1 on shapes_vqa and
#                    paper's formats ("Question: q Answer: a", "Output: c")      shapes_caption
#   query-image      each query image replaced by another query's image       -> exit 1 on shapes_caption
#                                                                                and shapes_vqa
#   other-model      the random-weight fixture tests/fixtures/models/tiny-gptneox -> exit 1 on the whole set
#   shuffled-demos   every demonstration image swapped with another one's     -> exit 1 on shapes_binding
#                    (texts stay: demonstrations are shuffled against their images)
#   bad-pins         a pins file (run --demos) whose binding demonstrations   -> exit 1 on shapes_binding
#                    never show the query's colour
#
# The last two can only be caught by a model that uses its demonstrations, so the baseline must show
# in-context learning (shapes_binding at 8 shots more than 20 points above 0 shots; the committed model,
# export/demo_model and README "Trained demo model", does: 0 -> 72.9). A baseline that does not fails this
# script: a demo model that stopped using its demonstrations would leave the gate blind to demonstration
# faults. Rows of benchmarks a fault cannot touch are printed for information.
#
# The faulty candidates run from a copy of the benchmark tree (benchmarks/, prompts/, data/shapes/) in which
# only the faulty part differs: the benchmark files are byte-identical, so compare pairs them as the same
# benchmark and has to find the fault in the scores. Takes about a minute (debug build, 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_ort.sh >/dev/null
cargo build --locked --quiet
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/debug/flamingo-eval"
[ -x "$BIN" ] || BIN="${CARGO_TARGET_DIR:-target}/debug/flamingo-eval"
MODEL=models/shapes-flamingo
ALL="shapes_caption shapes_vqa shapes_hateful shapes_binding"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

tree() { # $1: folder; a copy of the benchmark tree the candidates run from
  mkdir -p "$1/data"
  cp -r benchmarks prompts "$1/"
  cp -r data/shapes "$1/data/"
}

run() { # $1 tree, $2 out folder, $3 model, $4 benchmark, rest: extra run args
  local t=$1 out=$2 model=$3 b=$4
  shift 4
  "$BIN" run --model "$model" --benchmark "$t/benchmarks/$b.yaml" --out "$out/$b" --quiet --threads 1 "$@" >/dev/null
}

expect() { # $1 expected exit code ("info": report only), $2 label, $3 baseline, $4 candidate
  local want=$1 label=$2 rc=0
  "$BIN" compare "$3" "$4" --markdown "$tmp/$label.md" >/dev/null 2>"$tmp/$label.err" || rc=$?
  local table
  table=$(grep -E '^\| *shapes_' "$tmp/$label.md" | sed 's/^/    /' || true)
  if [ "$want" = info ]; then
    echo "info $label: compare exit $rc (not asserted)"
  elif [ "$rc" = "$want" ]; then
    echo "ok   $label: compare exit $rc"
  else
    echo "FAIL $label: compare exit $rc, expected $want" >&2
    cat "$tmp/$label.err" >&2
    fail=1
  fi
  [ -n "$table" ] && echo "$table"
  return 0
}

# Does the baseline use its demonstrations? (fast binding: 8-shot minus 0-shot, points)
icl=$("${PY:-python3}" -c 'import json, sys
m = {r["shot"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
print(str(m[8] - m[0] > 20).lower())' results/baseline/shapes_binding/summary.json)
DEMOS=1
if [ "$icl" != true ]; then
  echo "FAIL baseline: results/baseline/shapes_binding does not rise by more than 20 points from 0 to 8 shots;" \
       "the demo model no longer uses its demonstrations (retrain: export/demo_model/train.sh, then" \
       "scripts/ci_gate.sh --refresh)" >&2
  fail=1
fi

# 1. rerun of the same model
tree "$tmp/ok"
for b in $ALL; do run "$tmp/ok" "$tmp/rerun" "$MODEL" "$b"; done
expect 0 rerun results/baseline "$tmp/rerun"

# 2. demonstrations shuffled against their images: rotate the demonstration-split image files by one
tree "$tmp/shuf"
( cd "$tmp/shuf/data/shapes/images"
  files=(shapes_train_*.png)
  cp "${files[0]}" "$tmp/first.png"
  for ((i = 0; i < ${#files[@]} - 1; i++)); do cp "${files[i+1]}" "${files[i]}"; done
  cp "$tmp/first.png" "${files[${#files[@]}-1]}" )
run "$tmp/shuf" "$tmp/shuf-out" "$MODEL" shapes_binding
expect $DEMOS shuffled-demos results/baseline/shapes_binding "$tmp/shuf-out/shapes_binding"

# 3. pinned demonstrations that never show the query's colour (same binding, so the same names)
"${PY:-python3}" - "$tmp/bad-pins.jsonl" <<'EOF'
import json, sys
ann = {}
for split in ("train", "test"):
    for a in json.load(open(f"data/shapes/binding_{split}_annotations.json"))["annotations"]:
        ann[str(a["question_id"])] = a["multiple_choice_answer"]
demos = [q for q in ann if q.startswith("1")]
with open(sys.argv[1], "w") as f:
    for line in open("results/baseline/shapes_binding/samples.jsonl"):
        r = json.loads(line)
        if r["shot"] > 0:
            others = [d for d in demos if ann[d] != ann[r["sample_id"]]]
            r["demo_ids"] = [others[(i * 7 + int(r["sample_id"])) % len(others)] for i in range(r["shot"])]
        f.write(json.dumps({k: r[k] for k in ("sample_id", "shot", "trial", "demo_ids", "text_only_demo_ids")}) + "\n")
EOF
run "$tmp/ok" "$tmp/pins-out" "$MODEL" shapes_binding --demos "$tmp/bad-pins.jsonl"
expect $DEMOS bad-pins results/baseline/shapes_binding "$tmp/pins-out/shapes_binding"

# 4. wrong prompt templates (the Flamingo paper's formats in place of OpenFlamingo's)
tree "$tmp/tpl"
cp prompts/flamingo_vqa.yaml "$tmp/tpl/prompts/openflamingo_vqa.yaml"
cp prompts/flamingo_caption.yaml "$tmp/tpl/prompts/openflamingo_caption.yaml"
for b in shapes_vqa shapes_caption; do
  run "$tmp/tpl" "$tmp/tpl-out" "$MODEL" "$b"
  expect 1 "wrong-template-$b" "results/baseline/$b" "$tmp/tpl-out/$b"
done

# 5. every query image replaced by the next query's image
tree "$tmp/query"
( cd "$tmp/query/data/shapes/images"
  files=(shapes_test_*.png)
  cp "${files[0]}" "$tmp/first.png"
  for ((i = 0; i < ${#files[@]} - 1; i++)); do cp "${files[i+1]}" "${files[i]}"; done
  cp "$tmp/first.png" "${files[${#files[@]}-1]}" )
for b in shapes_caption shapes_vqa; do
  run "$tmp/query" "$tmp/query-out" "$MODEL" "$b"
  expect 1 "query-image-$b" "results/baseline/$b" "$tmp/query-out/$b"
done

# 6. a different model (random weights)
for b in $ALL; do run "$tmp/ok" "$tmp/other" tests/fixtures/models/tiny-gptneox "$b"; done
expect 1 other-model results/baseline "$tmp/other"

if [ $fail -ne 0 ]; then
  echo "gate_teeth: the gate missed a known fault (or failed a clean rerun)" >&2
  exit 1
fi
echo "gate_teeth: every asserted fault fails the gate; the clean rerun passes"
