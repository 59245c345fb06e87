"""Synthetic VQAv2- and COCO-layout datasets and their benchmark YAMLs for the speed benchmark.

    python -m export.perf.make_data --out .cache/perf/data --queries 8 --pool 64

Images are seeded random JPEGs (shapes on a background, 375–640 px sides, like COCO photos); text comes from
small word lists. `--pool` train images are the demonstration pool (VQA: two questions per image; COCO: five
captions per image, Karpathy `train` split); `--queries` val images are the evaluated samples (VQA: one
question each; COCO: Karpathy `test` split). Every VQA answer list holds one answer ten times, so
OpenFlamingo's demo answer (`answers[0]`) and the official `multiple_choice_answer` agree. Deterministic.
"""
import argparse
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = ["red", "blue", "green", "yellow", "white", "black", "orange", "brown", "gray", "pink"]
NOUNS = ["cat", "dog", "man", "woman", "car", "bus", "train", "plate", "pizza", "horse", "bird", "boat",
         "table", "kite", "truck", "giraffe", "child", "bench", "clock", "bike"]
VERBS = ["sitting on", "standing next to", "riding", "parked near", "looking at", "lying on", "flying over",
         "walking past"]
PLACES = ["a street", "the grass", "a table", "the beach", "a field", "a kitchen", "the water", "a sidewalk"]
SIZES = [(640, 480), (480, 640), (500, 375), (427, 640), (640, 427), (612, 612)]


def _image(rng: random.Random, path: Path):
    w, h = rng.choice(SIZES)
    img = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randrange(4, 12)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(20, w // 2), y0 + rng.randrange(20, h // 2)
        fill = tuple(rng.randrange(256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=90)


def _caption(rng):
    return f"A {rng.choice(COLORS)} {rng.choice(NOUNS)} {rng.choice(VERBS)} {rng.choice(PLACES)}."


def _qa(rng):
    n = rng.choice(NOUNS)
    kind = rng.randrange(3)
    if kind == 0:
        return f"What color is the {n}?", rng.choice(COLORS), "what color is the", "other"
    if kind == 1:
        return f"Is there a {n} in the picture?", rng.choice(["yes", "no"]), "is there a", "yes/no"
    return f"How many {n}s are there?", str(rng.randrange(1, 6)), "how many", "number"


def make(out: Path, queries: int, pool: int, seed: int = 0):
    rng = random.Random(seed)
    out = Path(out).resolve()
    img_dir = out / "images"
    splits = {"train2014": list(range(1, pool + 1)), "val2014": list(range(100001, 100001 + queries))}
    for split, ids in splits.items():
        for i in ids:
            p = img_dir / split / f"COCO_{split}_{i:012d}.jpg"
            if not p.exists():
                _image(random.Random(f"{seed}-{split}-{i}"), p)
    # VQAv2 layout
    vqa = out / "vqav2"
    vqa.mkdir(parents=True, exist_ok=True)
    for split, per_image in (("train2014", 2), ("val2014", 1)):
        qs, anns = [], []
        for i in splits[split]:
            for k in range(per_image):
                q, a, qtype, atype = _qa(rng)
                qid = i * 10 + k
                qs.append({"image_id": i, "question": q, "question_id": qid})
                anns.append({"question_id": qid, "image_id": i, "question_type": qtype, "answer_type": atype,
                             "multiple_choice_answer": a,
                             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                                         for j in range(10)]})
        head = {"info": {"description": "flamingo-eval speed benchmark (synthetic)"}, "task_type": "Open-Ended",
                "data_type": "mscoco", "data_subtype": split, "license": {"name": "synthetic"}}
        (vqa / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps({**head, "questions": qs}))
        (vqa / f"v2_mscoco_{split}_annotations.json").write_text(json.dumps({**head, "annotations": anns}))
    # COCO / Karpathy layout
    coco = out / "coco"
    coco.mkdir(parents=True, exist_ok=True)
    images, refs, ref_images = [], [], []
    sid = 0
    for split, karpathy_split in (("train2014", "train"), ("val2014", "test")):
        for i in splits[split]:
            sents = []
            for _ in range(5):
                c = _caption(rng)
                sents.append({"raw": c, "tokens": c.lower().rstrip(".").split(), "imgid": len(images), "sentid": sid})
                if karpathy_split == "test":
                    refs.append({"image_id": i, "id": sid, "caption": c})
                sid += 1
            if karpathy_split == "test":
                ref_images.append({"id": i, "file_name": f"COCO_{split}_{i:012d}.jpg"})
            images.append({"filepath": split, "filename": f"COCO_{split}_{i:012d}.jpg", "imgid": len(images),
                           "split": karpathy_split, "sentids": [s["sentid"] for s in sents], "cocoid": i,
                           "sentences": sents})
    (coco / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    (coco / "captions_val2014.json").write_text(json.dumps(
        {"info": {"description": "synthetic"}, "licenses": [], "type": "captions", "images": ref_images,
         "annotations": refs}))
    # Benchmarks (flamingo-eval side): OpenFlamingo's prompts, generation settings and post-processing.
    repo = Path(__file__).resolve().parents[2]
    common = f"""trials:
  seeds: [42]
query_set_size: {{qs}}
demo_selection:
  method: random
zero_shot:
  policy: text_only_demos
  demos: 2
"""
    (out / "bench_vqav2.yaml").write_text(f"""# generated by export/perf/make_data.py
name: perf_vqav2
task: generate
template: {repo}/prompts/openflamingo_vqa.yaml
dataset:
  layout: vqa
  query:
    questions: {vqa}/v2_OpenEnded_mscoco_val2014_questions.json
    annotations: {vqa}/v2_mscoco_val2014_annotations.json
    images: {img_dir}/val2014
    pattern: "COCO_val2014_{{image_id:012}}.jpg"
  demos:
    questions: {vqa}/v2_OpenEnded_mscoco_train2014_questions.json
    annotations: {vqa}/v2_mscoco_train2014_annotations.json
    images: {img_dir}/train2014
    pattern: "COCO_train2014_{{image_id:012}}.jpg"
shots: [0, 4, 32]
{common.format(qs=2 * pool)}generation:
  max_new_tokens: 5
  num_beams: 3
  length_penalty: 0.0
postprocess: vqa_openflamingo
metric:
  name: vqa_accuracy
  mode: official
""")
    (out / "bench_coco.yaml").write_text(f"""# generated by export/perf/make_data.py
name: perf_coco
task: generate
template: {repo}/prompts/openflamingo_caption.yaml
dataset:
  layout: karpathy
  query:
    karpathy: {coco}/dataset_coco.json
    splits: [test]
    images: {img_dir}
    references: {coco}/captions_val2014.json
  demos:
    karpathy: {coco}/dataset_coco.json
    splits: [train]
    images: {img_dir}
shots: [0, 4, 32]
{common.format(qs=pool)}generation:
  max_new_tokens: 20
  num_beams: 3
  length_penalty: 0.0
postprocess: caption_openflamingo
metric:
  name: cider
  mode: official
""")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--pool", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(make(Path(a.out), a.queries, a.pool, a.seed))


if __name__ == "__main__":
    main()
