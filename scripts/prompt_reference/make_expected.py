#!/usr/bin/env python3
"""Expected prompt strings for flamingo-eval's byte-exact prompt tests, produced by OpenFlamingo's OWN
prompt code.

OpenFlamingo's code is not part of this repository. Fetch it yourself (tag 2.0.1, commit 655f693), e.g.
    git clone https://github.com/mlfoundations/open_flamingo && git -C open_flamingo checkout 655f693
then, from the flamingo-eval repository root:
    python3 scripts/prompt_reference/make_expected.py /path/to/open_flamingo
It writes tests/fixtures/data/expected_prompts/*.json (committed; `cargo test` reads only those).

How OpenFlamingo's code is used, without torch/PIL/open_clip installed: the prompt methods of
`open_flamingo/eval/models/open_flamingo.py` (get_vqa_prompt, get_caption_prompt, get_imagenet_prompt,
get_hateful_memes_prompt), `compute_effective_num_shots` from `eval/utils.py`, the post-processing
functions of `eval/vqa_metric.py` / `eval/coco_metric.py`, and — for the prompt assembly itself — the
per-sample loop of `evaluate_vqa`, `evaluate_captioning` and `evaluate_classification` in
`eval/evaluate.py` (with `prompt_fn` from the same function) are extracted with `ast` and executed
unchanged on records read here. "Images" are stand-in strings (`D:<id>` for demonstrations, `Q:<id>`
for the query), so OpenFlamingo's `batch_images` gives the media order too.

The records are this repository's files (data/demo, tests/fixtures/data); demonstrations for each case
are chosen here with Python's `random.Random(<case name>)` and written out by id, so the Rust test
rebuilds the same prompt from the same ids.
"""
import argparse, ast, json, os, random, re, sys, textwrap

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests/fixtures/data/expected_prompts")


def load_source(of_root, rel):
    path = os.path.join(of_root, rel)
    with open(path) as f:
        src = f.read()
    return src, ast.parse(src)


def function_defs(tree):
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def extract_of(of_root):
    """Returns a namespace of OpenFlamingo's functions and code objects."""
    ns = {"re": re}
    src, tree = load_source(of_root, "open_flamingo/eval/models/open_flamingo.py")
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "EvalModel")
    methods = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name.endswith("_prompt")]
    assert {m.name for m in methods} >= {"get_vqa_prompt", "get_caption_prompt", "get_imagenet_prompt", "get_hateful_memes_prompt"}
    body = "class PromptModel:\n" + textwrap.indent("\n\n".join(ast.get_source_segment(src, m) for m in methods), "    ")
    exec(compile(body, "open_flamingo/eval/models/open_flamingo.py", "exec"), ns)

    for rel, name in (("open_flamingo/eval/utils.py", "compute_effective_num_shots"),
                      ("open_flamingo/eval/vqa_metric.py", "postprocess_vqa_generation"),
                      ("open_flamingo/eval/coco_metric.py", "postprocess_captioning_generation")):
        s, t = load_source(of_root, rel)
        exec(compile(ast.get_source_segment(s, function_defs(t)[name]), rel, "exec"), ns)

    src, tree = load_source(of_root, "open_flamingo/eval/evaluate.py")
    fns = function_defs(tree)
    loops = {}
    for fname in ("evaluate_vqa", "evaluate_captioning", "evaluate_classification"):
        loop = next(n for n in ast.walk(fns[fname]) if isinstance(n, ast.For)
                    and ast.unparse(n.iter) == "range(len(batch['image']))")
        loops[fname] = compile(ast.Module(body=[loop], type_ignores=[]), "open_flamingo/eval/evaluate.py", "exec")
    prompt_fns = [n for n in ast.walk(fns["evaluate_classification"]) if isinstance(n, ast.Assign)
                  and ast.unparse(n.targets[0]) == "prompt_fn"]
    ns["prompt_fn_src"] = {("imagenet" if "imagenet" in ast.unparse(n.value) else "hateful_memes"): ast.unparse(n.value) for n in prompt_fns}
    ns["loops"] = loops
    return ns


def run_loop(of, fname, query_batch, demos, num_shots, effective, prompt_fn_key=None):
    """Execute OpenFlamingo's per-sample prompt loop for a batch of one query."""
    model = of["PromptModel"]()
    env = {
        "batch": query_batch,
        "batch_demo_samples": [demos],
        "num_shots": num_shots,
        "effective_num_shots": effective,
        "eval_model": model,
        "batch_images": [],
        "batch_text": [],
        "use_prompt_ensembling": False,
        "random": random,
    }
    if prompt_fn_key:
        env["prompt_fn"] = eval(of["prompt_fn_src"][prompt_fn_key], env)
    exec(of["loops"][fname], env)
    return env["batch_text"][0], env["batch_images"][0]


def read_json(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return json.load(f)


def vqa_records(qrel, arel):
    anns = {a["question_id"]: a for a in read_json(arel)["annotations"]}
    return [{"id": str(q["question_id"]), "question": q["question"],
             "answers": [x["answer"] for x in anns[q["question_id"]]["answers"]]}
            for q in read_json(qrel)["questions"]]


def karpathy_records(rel, split):
    return [{"id": str(im["cocoid"]), "caption": im["sentences"][0]["raw"]}
            for im in read_json(rel)["images"] if im["split"] == split]


def jsonl_records(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return [{"id": str(r["id"]), "ocr": r["text"], "class_name": "yes" if r["label"] == 1 else "no"}
                for r in map(json.loads, f) if r]


def imagenet_records(rel, classnames):
    out = []
    for wnid_i, wnid in enumerate(sorted(os.listdir(os.path.join(ROOT, rel)))):
        for f in sorted(os.listdir(os.path.join(ROOT, rel, wnid))):
            out.append({"id": f"{wnid}/{f}", "class_name": classnames[wnid_i]})
    return out


def videoqa_records(rel):
    return [{"id": str(r["id"]), "question": r["question"], "answers": [r["answer"]]} for r in read_json(rel)]


FAMILIES = {
    # family: (benchmark file used by the Rust test, OF loop, prompt_fn key)
    "vqa": ("benchmarks/demo_vqa.yaml", "evaluate_vqa", None),
    "caption": ("tests/fixtures/data/bench_caption.yaml", "evaluate_captioning", None),
    "imagenet": ("tests/fixtures/data/bench_imagenet.yaml", "evaluate_classification", "imagenet"),
    "hateful_memes": ("tests/fixtures/data/bench_hateful.yaml", "evaluate_classification", "hateful_memes"),
    "video_qa": ("tests/fixtures/data/bench_videoqa.yaml", "evaluate_vqa", None),
}


def records(family):
    if family == "vqa":
        return (vqa_records("data/demo/vqa_val_questions.json", "data/demo/vqa_val_annotations.json"),
                vqa_records("data/demo/vqa_train_questions.json", "data/demo/vqa_train_annotations.json"))
    if family == "caption":
        k = "tests/fixtures/data/karpathy_coco_real/dataset_coco.json"
        return karpathy_records(k, "test"), karpathy_records(k, "train")
    if family == "imagenet":
        with open(os.path.join(ROOT, "tests/fixtures/data/imagenet/classnames.txt")) as f:
            names = [l.rstrip("\n") for l in f if l.strip()]
        return (imagenet_records("tests/fixtures/data/imagenet/val", names),
                imagenet_records("tests/fixtures/data/imagenet/train", names))
    if family == "hateful_memes":
        return jsonl_records("tests/fixtures/data/hateful_memes/dev.jsonl"), jsonl_records("tests/fixtures/data/hateful_memes/train.jsonl")
    if family == "video_qa":
        return videoqa_records("tests/fixtures/data/msrvtt_qa/test_qa.json"), videoqa_records("tests/fixtures/data/msrvtt_qa/train_qa.json")
    raise KeyError(family)


def query_batch(family, q):
    img = "Q:" + q["id"]
    if family in ("vqa", "video_qa"):
        return {"image": [img], "question": [q["question"]]}
    if family == "caption":
        return {"image": [img]}
    # OF's classification loop reads batch["ocr"] for ImageNet too (ImageNet records have no "ocr": in
    # OF that path would fail; the ImageNet prompt ignores it).
    return {"image": [img], "ocr": [q.get("ocr")]}


def demo_record(family, d):
    r = dict(d)
    r["image"] = "D:" + d["id"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("of_root", help="path of an OpenFlamingo checkout at commit 655f693 (tag 2.0.1)")
    ap.add_argument("--write-imagenet-classnames", metavar="FILE", help="also write OF's 1000 ImageNet class names, one per line")
    args = ap.parse_args()
    of = extract_of(args.of_root)
    if args.write_imagenet_classnames:
        s, t = load_source(args.of_root, "open_flamingo/eval/classification_utils.py")
        env = {}
        exec(compile(s, "classification_utils.py", "exec"), env)
        with open(args.write_imagenet_classnames, "w") as f:
            f.write("\n".join(env["IMAGENET_CLASSNAMES"]) + "\n")
    os.makedirs(OUT, exist_ok=True)
    for family, (bench, loop, pf) in FAMILIES.items():
        queries, pool = records(family)
        cases = []
        for shots in (0, 4, 32):
            effective = of["compute_effective_num_shots"](shots, "open_flamingo")
            for qi in (0, len(queries) - 1):
                q = queries[qi]
                name = f"{family}-{shots}-{q['id']}"
                demos = random.Random(name).sample(pool, effective)
                text, images = run_loop(of, loop, query_batch(family, q), [demo_record(family, d) for d in demos], shots, effective, pf)
                cases.append({"shots": shots, "query_id": q["id"], "demo_ids": [d["id"] for d in demos],
                              "prompt": text, "of_media": images})
        with open(os.path.join(OUT, f"{family}.json"), "w") as f:
            json.dump({"generated_by": "scripts/prompt_reference/make_expected.py with open_flamingo 655f693 (2.0.1)",
                       "benchmark": bench, "cases": cases}, f, indent=1, ensure_ascii=False)
            f.write("\n")
    # Post-processing reference outputs.
    samples = ["yes", "yes, it is", " blue Question: what", "2 Answer:3", "Short answer: cat", "red, white, blue",
               "a dog,running", "QuestionAnswer", "", "cat Short", "no\nQuestion:", "Answer"]
    caps = ["A man riding a horse.Output: a", "\"A cat\" on a mat", "Output:", "two dogs \"playing\" Output \"x\"", "plain"]
    with open(os.path.join(OUT, "postprocess.json"), "w") as f:
        json.dump({"generated_by": "scripts/prompt_reference/make_expected.py with open_flamingo 655f693 (2.0.1)",
                   "vqa": [[s, of["postprocess_vqa_generation"](s)] for s in samples],
                   # evaluate_captioning applies .replace('"', "") after postprocess_captioning_generation
                   "caption": [[s, of["postprocess_captioning_generation"](s).replace('"', "")] for s in caps]},
                  f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
