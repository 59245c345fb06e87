"""Produce the expected-value fixtures for tests/metrics_*.rs with the real reference tools.

Run through regen.sh (which pins the tool versions). Inputs: the shared real data (SHARED_DATA), the
evaluator sources (VQA_EVAL_PY, OF_VQA_METRIC_PY). Outputs go to the folder given as argv[1].
Synthetic predictions are drawn with a fixed seed so the fixtures are reproducible.
"""
import json
import os
import random
import re
import sys

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
import pycocoevalcap.tokenizer.ptbtokenizer as ptbmod

OUT = sys.argv[1] if __name__ == "__main__" else None
DATA = os.environ.get("SHARED_DATA", "")
HERE = os.path.dirname(os.path.abspath(__file__))


def dump(rel, obj, compact=False):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if compact:
            json.dump(obj, f, separators=(",", ":"), ensure_ascii=False)
        else:
            json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def load(rel):
    with open(os.path.join(DATA, rel)) as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------------- PTB
def java_raw_lines(sentences):
    """The Java tokenizer's raw output lines, run exactly as pycocoevalcap runs it."""
    import subprocess
    import tempfile
    jar_dir = os.path.dirname(os.path.abspath(ptbmod.__file__))
    tmp = tempfile.NamedTemporaryFile(delete=False, dir=jar_dir)
    tmp.write("\n".join(s.replace("\n", " ") for s in sentences).encode())
    tmp.close()
    cmd = ["java", "-cp", ptbmod.STANFORD_CORENLP_3_4_1_JAR, "edu.stanford.nlp.process.PTBTokenizer",
           "-preserveLines", "-lowerCase", os.path.basename(tmp.name)]
    out = subprocess.run(cmd, cwd=jar_dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    os.remove(tmp.name)
    return out.split("\n")[: len(sentences)]


def filtered(line):
    return " ".join(w for w in line.rstrip().split(" ") if w not in ptbmod.PUNCTUATIONS)


def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode():
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return "%08x" % h


def gen_ptb():
    with open(os.path.join(HERE, "tricky_captions.txt")) as f:
        tricky = f.read().split("\n")
    tricky = [t for t in tricky if t != ""] + ["", "   "]
    raw = java_raw_lines(tricky)
    dump("ptb/tricky.json", [{"caption": c, "java_raw": r.rstrip(), "filtered": filtered(r)} for c, r in zip(tricky, raw)])
    caps = [a["caption"] for a in load("coco_captions/captions_val2014_subset4800.json")["annotations"]]
    raw = java_raw_lines(caps)
    with open(os.path.join(OUT, "ptb/coco_subset4800_filtered_fnv1a32.txt"), "w") as f:
        for r in raw:
            f.write(fnv1a32(filtered(r)) + "\n")
    # the captions with anything beyond letters, digits, spaces and a final period, in full
    interesting = [{"caption": c, "java_raw": r.rstrip(), "filtered": filtered(r)}
                   for c, r in zip(caps, raw) if re.search(r"[^A-Za-z0-9 ,'.]", c) or re.search(r"\.\S", c)]
    dump("ptb/coco_interesting.json", interesting, compact=True)


# ------------------------------------------------------------------------------------------ captions
def coco_like_order(ann, results):
    """pycocotools loadRes: image set = result images, in the annotation file's `images` order."""
    res_ids = {r["image_id"] for r in results}
    order = [im["id"] for im in ann["images"] if im["id"] in res_ids]
    gts = {i: [] for i in order}
    for a in ann["annotations"]:
        if a["image_id"] in gts:
            gts[a["image_id"]].append({"caption": a["caption"]})
    res = {i: [] for i in order}
    for r in results:
        res[r["image_id"]].append({"caption": r["caption"]})
    return order, gts, res


def score_captions(ann, results, per_image=True):
    order, gts, res = coco_like_order(ann, results)
    tok = PTBTokenizer()
    g = tok.tokenize(gts)
    r = tok.tokenize(res)
    out = {"image_ids": order}
    b, bs = Bleu(4).compute_score(g, r, verbose=0)
    for k in range(4):
        out["Bleu_%d" % (k + 1)] = b[k]
    rouge, rs = Rouge().compute_score(g, r)
    cider, cs = Cider().compute_score(g, r)
    out["ROUGE_L"] = float(rouge)
    out["CIDEr"] = float(cider)
    if per_image:
        out["per_image"] = {
            "Bleu": [[float(bs[k][i]) for k in range(4)] for i in range(len(order))],
            "ROUGE_L": [float(x) for x in rs],
            "CIDEr": [float(x) for x in cs],
        }
    return out


def synthetic_caption_results(ann, rng):
    refs = {}
    for a in ann["annotations"]:
        refs.setdefault(a["image_id"], []).append(a["caption"])
    ids = [im["id"] for im in ann["images"] if im["id"] in refs]
    out = []
    for i in ids:
        u = rng.random()
        if u < 0.25:
            cap = rng.choice(refs[rng.choice(ids)])  # a caption of some other image
        else:
            words = rng.choice(refs[i]).split()
            kept = [w for w in words if rng.random() > 0.2] or words[:1]
            cap = " ".join(kept)
            if u > 0.9:
                cap = cap.upper()
        out.append({"image_id": i, "caption": cap})
    rng.shuffle(out)
    return out


def gen_captions():
    rng = random.Random(4)
    fc_ann = load("derived/fakecap134/annotations.json")
    fc_res = load("derived/fakecap134/results.json")
    dump("caption/fakecap134_expected.json", score_captions(fc_ann, fc_res))
    sub_ann = load("derived/results_subset/annotations.json")
    sub_res = synthetic_caption_results(sub_ann, rng)
    dump("caption/subset150_results.json", sub_res, compact=True)
    dump("caption/subset150_expected.json", score_captions(sub_ann, sub_res))
    full_ann = load("coco_captions/captions_val2014_subset4800.json")
    full_res = synthetic_caption_results(full_ann, rng)
    dump("caption/full4800_results.json", full_res, compact=True)
    e = score_captions(full_ann, full_res, per_image=False)
    del e["image_ids"]
    dump("caption/full4800_expected.json", e)
    # nlg-eval example: hypothesis i against line i of each reference file
    d = os.path.join(DATA, "nlgeval_example")
    hyp = open(os.path.join(d, "hyp.txt")).read().strip().split("\n")
    r1 = open(os.path.join(d, "ref1.txt")).read().strip().split("\n")
    r2 = open(os.path.join(d, "ref2.txt")).read().strip().split("\n")
    ann = {"images": [{"id": i} for i in range(len(hyp))],
           "annotations": [{"image_id": i, "caption": c} for i in range(len(hyp)) for c in (r1[i], r2[i])]}
    res = [{"image_id": i, "caption": h} for i, h in enumerate(hyp)]
    dump("caption/nlgeval_annotations.json", ann)
    dump("caption/nlgeval_results.json", res)
    dump("caption/nlgeval_expected.json", score_captions(ann, res))


# ----------------------------------------------------------------------------------------------- VQA
from vqa_evaluators import Holder, load_of_vqaeval, load_official_vqaeval  # noqa: E402


NUM = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "10": "ten"}


def synthetic_answers(anns, rng):
    pool = [a["answers"][0]["answer"] for a in anns]
    out = []
    for a in anns:
        gt = rng.choice(a["answers"])["answer"]
        u = rng.random()
        if u < 0.35:
            p = gt
        elif u < 0.45:
            p = gt.capitalize()
        elif u < 0.52:
            p = gt + "."
        elif u < 0.58:
            p = "the " + gt
        elif u < 0.62:
            p = NUM.get(gt, gt + "!")
        elif u < 0.66:
            p = gt.replace(" ", "-")
        elif u < 0.68:
            p = ""
        elif u < 0.70:
            p = " " + gt + "\t"
        else:
            p = rng.choice(pool)
        out.append({"question_id": a["question_id"], "answer": p})
    return out


def run_vqa(evalcls, anns, results, keep_none=False):
    import copy
    qa = {a["question_id"]: copy.deepcopy(a) for a in anns}
    rqa = {r["question_id"]: r for r in results}
    ids = [r["question_id"] for r in results]
    ev = evalcls(Holder(qa, ids), Holder(rqa, ids), n=2)
    import io, contextlib
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    acc = ev.accuracy
    pat = {k: v for k, v in acc["perAnswerType"].items() if k is not None}
    return {"overall": acc["overall"], "perQuestionType": acc["perQuestionType"], "perAnswerType": pat,
            "per_question": [ev.evalQA[i] for i in ids]}


def gen_vqa():
    rng = random.Random(5)
    official = load_official_vqaeval()
    of = load_of_vqaeval()
    for name, rel in [("textvqa", "textvqa/val_annotations_vqa_format.json"),
                      ("vizwiz", "vizwiz/val_annotations_vqa_format.json")]:
        anns = load(rel)["annotations"]
        res = synthetic_answers(anns, rng)
        dump("vqa/%s_results.json" % name, res, compact=True)
        exp = {"official": run_vqa(official, anns, res), "openflamingo": run_vqa(of, anns, res)}
        dump("vqa/%s_expected.json" % name, exp, compact=True)
        # a small self-contained subset (first 150 questions) with its own expected values
        sub = anns[:150]
        qs = load(rel.replace("annotations", "questions"))
        sub_ids = {a["question_id"] for a in sub}
        qsub = dict(qs)
        qsub["questions"] = [q for q in qs["questions"] if q["question_id"] in sub_ids]
        dump("vqa/%s_sub150_annotations.json" % name, {"annotations": sub}, compact=True)
        dump("vqa/%s_sub150_questions.json" % name, qsub, compact=True)
        sres = [r for r in res if r["question_id"] in sub_ids]
        dump("vqa/%s_sub150_results.json" % name, sres, compact=True)
        dump("vqa/%s_sub150_expected.json" % name,
             {"official": run_vqa(official, sub, sres), "openflamingo": run_vqa(of, sub, sres)}, compact=True)
    # VQAv2 sample (with question/answer types): every prediction variant of every answer
    anns = load("derived/vqav2_sample/annotations_derived.json")["annotations"]
    cases = []
    for a in anns:
        for ans in sorted({x["answer"] for x in a["answers"]}):
            for p in [ans, ans.upper(), ans + ".", "the " + ans, NUM.get(ans, ans + "!"), "a " + ans + " ,", "nonsense"]:
                cases.append((a, p))
    out = []
    for a, p in cases:
        r = [{"question_id": a["question_id"], "answer": p}]
        out.append({"question_id": a["question_id"], "prediction": p,
                    "official": run_vqa(official, [a], r)["per_question"][0],
                    "openflamingo": run_vqa(of, [a], r)["per_question"][0]})
    dump("vqa/vqav2_sample_cases.json", out)
    res = [{"question_id": a["question_id"], "answer": a["answers"][3]["answer"].upper()} for a in anns]
    dump("vqa/vqav2_sample_results.json", res)
    dump("vqa/vqav2_sample_expected.json", {"official": run_vqa(official, anns, res), "openflamingo": run_vqa(of, anns, res)})


# ---------------------------------------------------------------------------------------- classification
def gen_classification():
    import numpy as np
    from sklearn.metrics import roc_auc_score, top_k_accuracy_score
    rng = np.random.default_rng(6)
    cases = []
    for n, levels in [(10, 3), (200, 5), (1000, 0), (57, 2), (500, 20)]:
        labels = rng.integers(0, 2, n)
        labels[0], labels[1] = 0, 1
        scores = rng.random(n) if levels == 0 else rng.integers(0, levels, n) / levels
        cases.append({"labels": labels.tolist(), "scores": scores.tolist(),
                      "roc_auc": float(roc_auc_score(labels, scores))})
    topk = []
    for n, c, levels in [(100, 10, 0), (300, 7, 3), (50, 16, 2), (200, 5, 4)]:
        y = rng.integers(0, c, n)
        s = rng.random((n, c)) if levels == 0 else rng.integers(0, levels, (n, c)) / levels
        topk.append({"labels": y.tolist(), "scores": s.tolist(),
                     "top1": float(top_k_accuracy_score(y, s, k=1, labels=list(range(c)))),
                     "top5": float(top_k_accuracy_score(y, s, k=5, labels=list(range(c))))})
    dump("classification/sklearn_expected.json", {"roc_auc": cases, "top_k": topk}, compact=True)


if __name__ == "__main__":
    gen_ptb()
    gen_captions()
    gen_vqa()
    gen_classification()
    print("fixtures written to", OUT)
