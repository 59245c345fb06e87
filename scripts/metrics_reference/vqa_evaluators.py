"""The VQA evaluators' own code, loaded from the files regen.sh fetched (VQA_EVAL_PY: GT-Vision-Lab vqaEval.py,
OF_VQA_METRIC_PY: OpenFlamingo's vqa_metric.py), and the minimal VQA-object stand-in they read. Shared by
gen_expected.py and gen_vqa_extra.py; standard library only."""
import os
import re
import types


def load_official_vqaeval():
    src = open(os.environ["VQA_EVAL_PY"]).read()
    # Python 2 source: make the print statements calls; nothing else changes
    src = re.sub(r"print (\"[^\"]*\"|'[^']*')", r"print(\1)", src)
    # the official code requires answer_type (KeyError on TextVQA/VizWiz); group such questions under None
    src = src.replace("ansType     = gts[quesId]['answer_type']", "ansType     = gts[quesId].get('answer_type')")
    mod = types.ModuleType("vqaEval_official")
    exec(compile(src, "vqaEval.py", "exec"), mod.__dict__)
    return mod.VQAEval


def load_of_vqaeval():
    mod = types.ModuleType("of_vqa_metric")
    exec(compile(open(os.environ["OF_VQA_METRIC_PY"]).read(), "vqa_metric.py", "exec"), mod.__dict__)
    return mod.VQAEval


class Holder:
    def __init__(self, qa, ids):
        self.qa = qa
        self._ids = ids

    def getQuesIds(self):
        return list(self._ids)
