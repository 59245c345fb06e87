#!/usr/bin/env bash
# Regenerate tests/fixtures/metrics/** with the real reference tools:
#   pycocoevalcap 1.2 (Java PTB tokenizer + Bleu/Rouge/Cider scorers), scikit-learn, and the VQA
#   evaluators' own source files (GT-Vision-Lab/VQA vqaEval.py at a013f00, OpenFlamingo vqa_metric.py at
#   655f693), which are loaded from disk at run time, not copied into this project.
# Needs: python3, Java 17, network access to PyPI; the evaluator sources via VQA_EVAL_PY / OF_VQA_METRIC_PY
# (default: fetched from GitHub raw URLs at the pinned commits); the shared data folder via SHARED_DATA.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${METRICSREF_VENV:-/tmp/metricsref-venv}"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
work="$(mktemp -d)"
fetch() { # url dest
  if [ ! -f "$2" ]; then curl -fsSL "$1" -o "$2"; fi
}
VQA_EVAL_PY="${VQA_EVAL_PY:-$work/vqaEval.py}"
OF_VQA_METRIC_PY="${OF_VQA_METRIC_PY:-$work/vqa_metric.py}"
fetch https://raw.githubusercontent.com/GT-Vision-Lab/VQA/a013f0043c1e2cdc995922dfe257f7149aa9af06/PythonEvaluationTools/vqaEvaluation/vqaEval.py "$VQA_EVAL_PY"
fetch https://raw.githubusercontent.com/mlfoundations/open_flamingo/655f693/open_flamingo/eval/vqa_metric.py "$OF_VQA_METRIC_PY"
export VQA_EVAL_PY OF_VQA_METRIC_PY
export SHARED_DATA="${SHARED_DATA:-$repo/../shared/data/real}"
"$venv/bin/python" "$here/gen_expected.py" "$repo/tests/fixtures/metrics"
"$venv/bin/python" "$here/gen_vqa_extra.py" "$repo/tests/fixtures/metrics"
