#!/usr/bin/env bash
# Differential test of the Rust PTB tokenizer against pycocoevalcap's Java tokenizer (CoreNLP 3.4.1).
#
#   scripts/ptb_differential/run.sh [--seed N] [FLAMINGO_EVAL_BINARY]
#
# --seed N (default 12) seeds the stress-string generator. known_differences.txt belongs to seed 12; with
# another seed every difference is reported and fails the run (use it to check that a fix generalises).
#
# Generates 24,000 seeded stress strings (gen_stress.py) and collects the real captions of the shared data
# folder (collect_real.py; FLAMINGO_SHARED_DATA, ../shared/data/real or ../../shared/data/real), tokenizes them with pycocoevalcap's
# own PTBTokenizer (one Java process over one file, as the COCO evaluation calls it) and with
# `flamingo-eval tokenize ptb`, and fails on any difference. A second, smaller set holds captions with the
# line terminators pycocoevalcap cannot handle (\r \v \f U+2028 U+2029): ours must equal Java's output on the
# same captions with those characters replaced by spaces. Strings that still differ are listed in
# known_differences.txt (both outputs); any other difference fails, and so does a listed string that no longer
# differs (PTB_WRITE_KNOWN=1 rewrites the list after a fix).
# Installs what it needs when missing: Java (Debian default-jre-headless) and the pycocoevalcap 1.2 wheel
# (PyPI, unpacked under .cache/pycocoevalcap: the tokenizer module and its jar).
set -euo pipefail
seed=12
if [ "${1:-}" = "--seed" ]; then seed="$2"; shift 2; fi
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/scripts/ptb_differential"
bin="${1:-${CARGO_TARGET_DIR:-$repo/target}/debug/flamingo-eval}"
cache="$repo/.cache"
work="$cache/ptbdiff"
if [ "$seed" != 12 ]; then work="$cache/ptbdiff-seed$seed"; fi
mkdir -p "$work"
# any Python 3 with pip: the exporter's venv where it exists (scripts/test.sh makes it), else python3
if [ -x "$repo/export/.venv/bin/python" ]; then py="$repo/export/.venv/bin/python"; else py="$(command -v python3)"; fi

if ! command -v java >/dev/null 2>&1; then
  echo "== installing Java (Debian default-jre-headless) for the PTB differential test"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq default-jre-headless >/dev/null
fi
pkg="$cache/pycocoevalcap"
if [ ! -f "$pkg/pycocoevalcap/tokenizer/stanford-corenlp-3.4.1.jar" ]; then
  echo "== fetching pycocoevalcap 1.2 from PyPI (its tokenizer and the CoreNLP 3.4.1 jar)"
  mkdir -p "$pkg"
  "$py" -m pip download -q --no-deps --no-cache-dir pycocoevalcap==1.2 -d "$pkg"
  "$py" - "$pkg" <<'PY'
import sys, zipfile, glob
d = sys.argv[1]
z = zipfile.ZipFile(glob.glob(d + "/pycocoevalcap-1.2-*.whl")[0])
z.extractall(d, [n for n in z.namelist() if n in ("pycocoevalcap/__init__.py",) or n.startswith("pycocoevalcap/tokenizer/")])
PY
  rm -f "$pkg"/pycocoevalcap-1.2-*.whl
fi
echo "2fcb91bb7a111f93d71e264f4ee0e3afd19ba0dde6d21b38605088df9e940399  $pkg/pycocoevalcap/tokenizer/stanford-corenlp-3.4.1.jar" \
  | sha256sum -c --quiet - || { echo "ptb differential: unexpected stanford-corenlp-3.4.1.jar in $pkg (delete it to refetch)" >&2; exit 1; }

shared="${FLAMINGO_SHARED_DATA:-}"
if [ -z "$shared" ]; then
  for d in "$repo/../shared/data/real" "$repo/../../shared/data/real"; do
    if [ -f "$d/SOURCES.md" ]; then shared="$d"; break; fi
  done
fi
: >"$work/real.txt"
if [ -n "$shared" ] && [ -d "$shared" ]; then
  echo "== real captions from $shared"
  "$py" "$here/collect_real.py" "$shared" "$work/real.txt"
else
  echo "== shared data folder not found (set FLAMINGO_SHARED_DATA): generated strings only"
fi
"$py" "$here/gen_stress.py" "$work/stress.txt" --seed "$seed" --count 24000 --terminators "$work/term.txt"
{ cat "$work/stress.txt"; if [ -s "$work/real.txt" ]; then printf '\n'; cat "$work/real.txt"; fi; } >"$work/all.txt"
cat "$work/term.txt" >"$work/term_all.txt"
if [ -s "$work/real.txt.terminators" ]; then printf '\n' >>"$work/term_all.txt"; cat "$work/real.txt.terminators" >>"$work/term_all.txt"; fi

t0=$(date +%s%N)
# Java's output depends only on its input (and the pinned jar): reuse it while the input file is unchanged
java_ref() {  # IN OUT [--terminators-as-spaces]
  local sum; sum="$(cat "$1" "$here/java_reference.py" | sha256sum | cut -d' ' -f1) ${3:-}"
  if [ -f "$2" ] && [ "$(cat "$2.input-sha256" 2>/dev/null)" = "$sum" ]; then return 0; fi
  PYTHONPATH="$pkg" "$py" "$here/java_reference.py" "$1" "$2" ${3:-} 2>>"$work/java.stderr"
  printf '%s' "$sum" >"$2.input-sha256"
}
: >"$work/java.stderr"
java_ref "$work/all.txt" "$work/all.java"
java_ref "$work/term_all.txt" "$work/term_all.java" --terminators-as-spaces
t1=$(date +%s%N)
"$bin" tokenize ptb "$work/all.txt" >"$work/all.rust"
"$bin" tokenize ptb "$work/term_all.txt" >"$work/term_all.rust"
t2=$(date +%s%N)
echo "   Java (pycocoevalcap) $(( (t1 - t0) / 1000000 )) ms, flamingo-eval tokenize ptb $(( (t2 - t1) / 1000000 )) ms"
known=(--known "$here/known_differences.txt" ${PTB_WRITE_KNOWN:+--write-known})
if [ "$seed" != 12 ]; then known=(); echo "   seed $seed: known_differences.txt (seed 12) not used"; fi
"$py" "$here/compare.py" "${known[@]}" "$work/all.txt" "$work/all.java" "$work/all.rust" "$work/term_all.txt" "$work/term_all.java" "$work/term_all.rust"
