#!/usr/bin/env bash
# Sharded runs on a real Slurm cluster: brings up a private single-node cluster (munged, slurmctld, slurmd;
# scripts/slurm_local.sh), then, on the RICES demo benchmark with the tiny fixture model:
#   1. an unsharded reference run (its own empty cache);
#   2. the shipped examples/slurm/{prepare,shards,merge}.sbatch as users run them (settings by environment):
#      prepare → a 3-task array (afterok) in which tasks 1 and 2 are killed mid-write on their first attempt →
#      task 1's index resubmitted alone, task 2 requeued in place (both resume) → merge;
#   3. the launcher: `flamingo-eval slurm --submit` (prepare → array → merge chained by afterok);
# and checks that both merged folders equal the reference (samples.jsonl, run.json, summary.csv byte for
# byte; summary.json except the provenance fields docs/report.md lists as per-invocation) and that the
# RICES images were embedded once per run (by prepare; every shard computed 0).
# Needs root (or Slurm and munge installed) on Debian; installs slurmctld slurmd slurm-client munge if missing.
# Fails loudly when the cluster cannot start. Everything lives in one temporary folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/slurm_local.sh

now() { date +%s.%N; }
T0=$(now)
TIMES=()
lap() { TIMES+=("$(awk -v a="$2" -v b="$(now)" -v n="$1" 'BEGIN { printf "%-58s %6.1f s", n, b - a }')"); }
fail() {
  echo "FAIL (scripts/test_slurm.sh): $*" >&2
  exit 1
}
json() { # FILE KEY...: the value at that path
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    d = d[k]
print(d)' "$@"
}

slurm_local_install || fail "could not install Slurm/munge (apt-get install slurmctld slurmd slurm-client munge)"
scripts/setup_ort.sh >/dev/null
cargo build --locked --quiet
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/debug/flamingo-eval")
MODEL=tests/fixtures/models/tiny-gptneox
BENCH=benchmarks/demo_vqa_rices.yaml
N=3

T=$(mktemp -d /tmp/flamingo-slurm.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT
  slurm_local_stop || rc=1
  if [ -n "${FLAMINGO_SLURM_TEST_KEEP:-}" ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
mkdir -p "$T/logs" "$T/home"
# ONNX Runtime 1.32 keeps a small database under $HOME/.cache/Microsoft/DeveloperTools: the runs and jobs
# here get a HOME inside the temporary folder, so nothing is left behind.
JOBHOME=$T/home

t=$(now)
slurm_local_start "$T/cluster" || fail "the Slurm cluster did not start (logs above)"
lap "cluster up (munged, slurmctld, slurmd)" "$t"
# The examples ask for a GPU, 8 CPUs, 32 GB and hours; this node has none of that: override on the command line.
SB=(--gres=none --mem=0 --cpus-per-task=1 --time=10 --kill-on-invalid-dep=yes --export=ALL,HOME=$JOBHOME)
WAIT=(timeout 300 sbatch --parsable --wait)

# Distinct images of both splits: what one run must embed, once.
POOL=$(python3 - <<'EOF'
import json
# demo_vqa_rices: VQA layout; images are named by image_id (see the benchmark's dataset.*.pattern)
qs = json.load(open("data/demo/vqa_val_questions.json"))["questions"]
ds = json.load(open("data/demo/vqa_train_questions.json"))["questions"]
print(len({q["image_id"] for q in qs}) + len({q["image_id"] for q in ds}))
EOF
)

# 1. Unsharded reference.
t=$(now)
HOME=$JOBHOME FLAMINGO_EVAL_CACHE="$T/cache-ref" "$BIN" run --model "$MODEL" --benchmark "$BENCH" --out "$T/ref" --quiet --threads 1 \
  --batch-size 1 >"$T/logs/ref.out" 2>&1 || { cat "$T/logs/ref.out"; fail "the unsharded reference run failed"; }
lap "unsharded reference run (no Slurm)" "$t"
[ "$(json "$T/ref/summary.json" provenance rices_embeddings_computed)" = "$POOL" ] ||
  fail "the unsharded run computed $(json "$T/ref/summary.json" provenance rices_embeddings_computed) RICES embeddings, expected $POOL"

same_as_ref() { # $1: merged folder
  local f
  for f in samples.jsonl run.json summary.csv; do
    cmp "$T/ref/$f" "$1/$f" || fail "$1/$f differs from the unsharded run's"
  done
  python3 - "$T/ref/summary.json" "$1/summary.json" <<'EOF' || fail "$1/summary.json differs from the unsharded run's"
import json, sys
# the provenance fields docs/report.md lists as describing an invocation (sums over shards, or shard 0's)
inv = {"samples_evaluated_this_invocation", "samples_resumed", "vision_encoder_calls", "images_encoded",
       "media_cache_hits", "rices_embeddings_computed", "samples_recomputed", "media_files_hashed", "times", "git_commit", "model_dir", "benchmark_file",
       "onnxruntime_library", "providers", "intra_op_threads", "batch_size"}
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    for k in inv:
        d["provenance"].pop(k, None)
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print(f"summary.json differs in {k}: {a.get(k)!r} vs {b.get(k)!r}", file=sys.stderr)
    sys.exit(1)
EOF
}

# 2. The shipped examples, configured by environment as a user would.
export FLAMINGO_EVAL_MODEL=$MODEL FLAMINGO_EVAL_BENCHMARK=$BENCH FLAMINGO_EVAL_OUT=$T/examples FLAMINGO_EVAL_SHARDS=$N \
  FLAMINGO_EVAL_DEVICE=cpu FLAMINGO_EVAL_RUN_ARGS="--threads 1 --batch-size 1" FLAMINGO_EVAL_CACHE=$T/cache-examples
# Test only: the first attempt of tasks 1 and 2 may write at most LIMIT KiB per file (RLIMIT_FSIZE), about half
# a shard, so the kernel kills them (SIGXFSZ) in the middle of writing samples.jsonl, like a crash or
# preemption. Task 1 is then retried by resubmitting its index alone, task 2 by `scontrol requeue`.
# (Its HOME is a plain file so that ONNX Runtime's database, see above, is not created and cannot hit the limit.)
LIMIT=$(($(stat -c %s "$T/ref/samples.jsonl") / N / 2 / 1024))
[ "$LIMIT" -ge 1 ] || LIMIT=1
cat >"$T/fail-once" <<EOF
#!/usr/bin/env bash
case "\${SLURM_ARRAY_TASK_ID:-}" in 1 | 2) first=1 ;; *) first= ;; esac
if [ -n "\$first" ] && mkdir "$T/failed-once-\$SLURM_ARRAY_TASK_ID" 2>/dev/null; then
  ulimit -f $LIMIT
  export HOME=$T/home-is-a-file
fi
exec "$BIN" "\$@"
EOF
chmod +x "$T/fail-once"
touch "$T/home-is-a-file"
export FLAMINGO_EVAL_BIN=$T/fail-once

t=$(now)
P=$(sbatch --parsable "${SB[@]}" --output="$T/logs/prepare-%j.out" examples/slurm/prepare.sbatch)
set +e
A=$("${WAIT[@]}" "${SB[@]}" --array=0-$((N - 1)) --dependency=afterok:"$P" --output="$T/logs/shards-%A_%a.out" examples/slurm/shards.sbatch)
rc=$?
set -e
lap "examples: prepare + 3-task array (tasks 1, 2 killed midway)" "$t"
state() { scontrol -o show job "$1" | tr ' ' '\n' | sed -n 's/^JobState=//p' | head -n1; }
[ "$(state "$P")" = COMPLETED ] || { cat "$T"/logs/prepare-*.out; fail "prepare job $P: $(state "$P")"; }
[ "$rc" != 0 ] || fail "sbatch --wait returned 0 although tasks 1 and 2 were killed"
[ "$(state "${A}_0")" = COMPLETED ] || { cat "$T/logs/shards-${A}_0.out"; fail "array task 0: $(state "${A}_0")"; }
lines() { tr -cd '\n' <"$1" | wc -c; } # complete records (a torn last line does not count)
full=$(lines "$T/examples/shard-0-of-$N/samples.jsonl")
declare -A part
for i in 1 2; do
  [ "$(state "${A}_$i")" = FAILED ] || fail "array task $i should have failed, is $(state "${A}_$i")"
  f=$T/examples/shard-$i-of-$N/samples.jsonl
  part[$i]=$(lines "$f" 2>/dev/null || true)
  [ "${part[$i]:-0}" -ge 1 ] && [ "${part[$i]}" -lt "$full" ] ||
    { cat "$T/logs/shards-${A}_$i.out"; fail "task $i was to stop midway: it wrote ${part[$i]} of about $full records"; }
  echo "== task $i killed after ${part[$i]} of $full records (+ a torn line of $(($(stat -c %s "$f") - $(head -n "${part[$i]}" "$f" | wc -c))) bytes)"
done
if "$BIN" merge --results "$T"/examples/shard-{0,1,2}-of-$N --out "$T/examples" --benchmark "$BENCH" >"$T/logs/merge-early.out" 2>&1; then
  fail "merge accepted an unfinished shard"
fi
grep -q -i "shard-1-of-$N" "$T/logs/merge-early.out" || { cat "$T/logs/merge-early.out"; fail "merge's refusal does not name the unfinished shard"; }

t=$(now)
# task 2: requeued in place (same job, same array index and environment), as Slurm does on preemption
scontrol requeue "${A}_2" || fail "scontrol requeue ${A}_2 was refused"
# Slurm makes a requeued job eligible only after a delay (about 2 minutes here); release it now
scontrol update JobId="${A}_2" StartTime=now || fail "could not release the requeued task 2"
# task 1: its index resubmitted alone, a new array of one task
R=$("${WAIT[@]}" "${SB[@]}" --array=1 --output="$T/logs/shards-%A_%a.out" examples/slurm/shards.sbatch) ||
  { cat "$T"/logs/shards-*_1.out; fail "the resubmitted task 1 failed"; }
for _ in $(seq 1 600); do [ -z "$(squeue -h -j "$A" 2>/dev/null)" ] && break; sleep 0.5; done
[ "$(state "${A}_2")" = COMPLETED ] || { cat "$T/logs/shards-${A}_2.out"; fail "the requeued task 2: $(state "${A}_2")"; }
lap "examples: task 1 resubmitted, task 2 requeued (both resume)" "$t"
for i in 1 2; do
  resumed=$(json "$T/examples/shard-$i-of-$N/summary.json" provenance samples_resumed)
  [ "$resumed" = "${part[$i]}" ] || fail "task $i's retry resumed $resumed records, expected the ${part[$i]} its first attempt wrote"
done

t=$(now)
M=$("${WAIT[@]}" "${SB[@]}" --output="$T/logs/merge-%j.out" examples/slurm/merge.sbatch) ||
  { cat "$T"/logs/merge-*.out; fail "the merge job failed"; }
lap "examples: merge job" "$t"
same_as_ref "$T/examples"
computed=$(json "$T/examples/prepare.json" rices embeddings_computed)
[ "$computed" = "$POOL" ] || fail "prepare computed $computed RICES embeddings, expected the pool of $POOL"
for i in $(seq 0 $((N - 1))); do
  c=$(json "$T/examples/shard-$i-of-$N/summary.json" provenance rices_embeddings_computed)
  [ "$c" = 0 ] || fail "shard $i computed $c RICES embeddings; shards must only read the cache"
done
echo "== examples: merged == unsharded; RICES embeddings: prepare $computed (pool $POOL), shards 0 0 0"
unset FLAMINGO_EVAL_BIN FLAMINGO_EVAL_MODEL FLAMINGO_EVAL_BENCHMARK FLAMINGO_EVAL_OUT FLAMINGO_EVAL_SHARDS \
  FLAMINGO_EVAL_DEVICE FLAMINGO_EVAL_RUN_ARGS

# 3. The launcher, submitting prepare → array → merge itself.
t=$(now)
HOME=$JOBHOME FLAMINGO_EVAL_CACHE=$T/cache-launcher "$BIN" slurm --benchmark "$BENCH" --model "$MODEL" --shards $N --out "$T/launcher" \
  --batch-size 1 --cpus-per-task 1 --time 10 --sbatch-arg=--mem=0 --submit >"$T/logs/launcher.out" 2>&1 ||
  { cat "$T/logs/launcher.out"; fail "flamingo-eval slurm --submit failed"; }
LM=$(json "$T/launcher/slurm/jobs.json" merge)
LA=$(json "$T/launcher/slurm/jobs.json" shards)
LP=$(json "$T/launcher/slurm/jobs.json" prepare)
for _ in $(seq 1 600); do [ -z "$(squeue -h -j "$LP,$LA,$LM" 2>/dev/null)" ] && break; sleep 0.5; done
lap "launcher: slurm --submit, prepare → array → merge" "$t"
for j in "$LP" "${LA}_0" "${LA}_1" "${LA}_2" "$LM"; do
  [ "$(state "$j")" = COMPLETED ] || { tail -n 20 "$T"/launcher/slurm/logs/*; fail "launcher job $j: $(state "$j")"; }
done
same_as_ref "$T/launcher"
lcomputed=$(json "$T/launcher/prepare.json" rices embeddings_computed)
[ "$lcomputed" = "$POOL" ] || fail "launcher prepare computed $lcomputed RICES embeddings, expected $POOL"
for i in $(seq 0 $((N - 1))); do
  [ "$(json "$T/launcher/shard-$i-of-$N/summary.json" provenance rices_embeddings_computed)" = 0 ] || fail "launcher shard $i computed embeddings"
done
echo "== launcher: merged == unsharded; RICES embeddings: prepare $lcomputed, shards 0 0 0"

t=$(now)
slurm_local_stop || fail "the Slurm daemons did not stop"
lap "cluster down" "$t"
lap "total" "$T0"
echo "== Slurm test passed (wall times on this machine):"
printf '   %s\n' "${TIMES[@]}"
