"""Baseline for BENCH.md: the official VQA evaluator (vqaEval.py, loaded from VQA_EVAL_PY as in
gen_expected.py) on questions/annotations/results files; prints overall and per-type accuracy."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_expected as g  # noqa: E402  (only its evaluator loader and run_vqa helper are used)

t0 = time.time()
questions = json.load(open(sys.argv[1]))
anns = json.load(open(sys.argv[2]))["annotations"]
results = json.load(open(sys.argv[3]))
out = g.run_vqa(g.load_official_vqaeval(), anns, results)
del out["per_question"]
out["seconds"] = time.time() - t0
print(json.dumps(out, indent=1))
