#!/usr/bin/env bash
# Probe the Java PTB tokenizer (CoreNLP 3.4.1, as pycocoevalcap runs it) against ours on hand-made inputs.
#
#   scripts/ptb_differential/probe.sh [FILE]      (one input per line; stdin without FILE)
#
# Prints, per line, the input (Python repr), Java's raw output (before pycocoevalcap's punctuation filter)
# and ours (`flamingo-eval tokenize ptb --unfiltered`), marking lines that differ. All lines go to one Java
# run, as in pycocoevalcap, so a line can see the start of the next one. Needs the jar that run.sh fetches.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${FLAMINGO_EVAL:-${CARGO_TARGET_DIR:-$repo/target}/debug/flamingo-eval}"
jar="$repo/.cache/pycocoevalcap/pycocoevalcap/tokenizer/stanford-corenlp-3.4.1.jar"
[ -f "$jar" ] || { echo "probe.sh: $jar missing (run scripts/ptb_differential/run.sh once)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat "${1:-/dev/stdin}" >"$tmp/in.txt"
java -cp "$jar" edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase "$tmp/in.txt" >"$tmp/java.txt" 2>"$tmp/java.err" </dev/null
"$bin" tokenize ptb --unfiltered "$tmp/in.txt" >"$tmp/ours.txt"
python3 - "$tmp/in.txt" "$tmp/java.txt" "$tmp/ours.txt" <<'PY'
import sys
def rd(p):
    s = open(p, encoding="utf-8", newline="\n").read()
    l = s.split("\n")
    if s.endswith("\n"):
        l.pop()
    return l
i, j, o = (rd(p) for p in sys.argv[1:4])
for k, c in enumerate(i):
    jj = j[k] if k < len(j) else "<missing>"
    oo = o[k] if k < len(o) else "<missing>"
    mark = "  " if jj == oo else "XX"
    print(f"{mark} {c!r}\n   java {jj!r}\n   ours {oo!r}")
if len(j) != len(i):
    print(f"!! Java printed {len(j)} lines for {len(i)} inputs")
PY
