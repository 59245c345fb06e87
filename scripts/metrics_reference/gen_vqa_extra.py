"""Expected values from the VQA evaluators' own code for `flamingo-eval normalize vqa` and for questions with
fewer than 10 answers (tests/metrics_vqa_extra.rs; OpenFlamingo's copy is also checked live by
export/tests/test_metric_oracles.py, from the installed open_flamingo package).

Run through regen.sh (VQA_EVAL_PY, OF_VQA_METRIC_PY), or directly:
  VQA_EVAL_PY=.../vqaEval.py OF_VQA_METRIC_PY=.../vqa_metric.py python3 gen_vqa_extra.py tests/fixtures/metrics
Only the standard library is needed. Writes vqa/normalize_expected.json and vqa/few_answers_expected.json.
"""
import contextlib
import copy
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


from vqa_evaluators import Holder, load_of_vqaeval as load_of, load_official_vqaeval as load_official  # noqa: E402


def evaluator(cls, qa=None, res=None):
    ids = list(qa) if qa else [1]
    return cls(Holder(qa or {}, ids), Holder(res or {}, ids), n=2)


def score(cls, answers, prediction):
    qa = {1: {"question_id": 1, "question_type": "what", "answer_type": "other",
              "answers": [{"answer": a, "answer_id": i + 1, "answer_confidence": "yes"} for i, a in enumerate(answers)]}}
    res = {1: {"question_id": 1, "answer": prediction}}
    ev = evaluator(cls, copy.deepcopy(qa), res)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    return ev.evalQA[1]


def main(out):
    official, of = load_official(), load_of()
    answers = [l for l in open(os.path.join(HERE, "tricky_answers.txt"), encoding="utf-8").read().split("\n") if l != ""]
    eo, ef = evaluator(official), evaluator(of)
    norm = []
    for a in answers:
        # what vqaEval.py does to every answer first (newline/tab to space, strip) ...
        cleaned = a.replace("\n", " ").replace("\t", " ").strip()
        # ... and then, when the ground truths are not unanimous, to prediction and ground truths alike
        norm.append({"answer": a, "official_unanimous": cleaned,
                     "official": eo.processDigitArticle(eo.processPunctuation(cleaned)),
                     "openflamingo": ef.processDigitArticle(ef.processPunctuation(cleaned))})
    few = []
    for k in range(1, 11):
        for gts in (["dog"] * k, (["dog", "cat"] * k)[:k]):
            for pred in ("dog", "Dog", "cat", "bird"):
                few.append({"answers": gts, "prediction": pred,
                            "official": score(official, gts, pred), "openflamingo": score(of, gts, pred)})
    os.makedirs(os.path.join(out, "vqa"), exist_ok=True)
    for name, obj in (("normalize_expected.json", norm), ("few_answers_expected.json", few)):
        with open(os.path.join(out, "vqa", name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
