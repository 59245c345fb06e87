"""Seeded procedural "shapes" data: small images of shapes with colours, counts and sizes, and the four demo
tasks built on them (captions, VQA, a HatefulMemes-layout classification, a few-shot fast-binding task).

The same code renders the held-out benchmark data (written to data/shapes/ by `--out`) and the training
stream of export/demo_model/train_tiny.py, so the two have the same distribution; they are drawn from
different seeds.

    export/.venv/bin/python -m export.demo_model.shapes --out data/shapes      # rewrite data/shapes/ (byte-identical)

An image: a 32x32 RGB PNG, light background, 1-4 identical shapes (circle / square / triangle) of one colour
and one size, each in its own quadrant with jitter.

Tasks (all in the official layouts that src/benchmark/datasets.rs reads):
* captions (Karpathy json + COCO caption references): "two small red circles" (+ 3 paraphrases as references);
* VQA (VQAv2 questions / annotations, 10 answers): colour, shape, count, size, "is there a ..." questions;
* classification (HatefulMemes jsonl): a text written "on" the image; label 1 ("yes") iff the text names a
  colour or shape that is NOT in the image;
* fast binding (VQA layout, "What is it called?"): the answer is a nonce name bound to the image's colour.
  In training the colour -> name binding is drawn anew for every sequence, so no name means anything by
  itself; the benchmark's split uses one fixed draw. Only the demonstrations can tell the answer: 0 shots
  cannot score, and more shots show more of the binding.
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

SIZE = 32
COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (40, 80, 220),
    "yellow": (225, 195, 30),
    "purple": (145, 55, 190),
}
SHAPES = ["circle", "square", "triangle"]
SIZES = {"small": 3.2, "large": 6.2}
NUMBERS = {1: "a", 2: "two", 3: "three", 4: "four"}
BACKGROUND = (236, 236, 232)
# Nonce names for the binding task (made-up words from the developmental-psychology literature and similar).
NONCE = ["dax", "wug", "blick", "fep", "toma", "zup", "kiki", "bouba", "modi", "tufa", "gazz", "lorp",
         "mib", "zorb", "plim", "vonk", "rilt", "snev", "quib", "jent"]
BINDING_QUESTION = "What is it called?"


def plural(shape: str, n: int) -> str:
    return shape if n == 1 else shape + "s"


# ----------------------------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------------------------

def sample_scene(rng: np.random.RandomState) -> dict:
    n = int(rng.randint(1, 5))
    cells = sorted(rng.permutation(4)[:n].tolist())
    size = ["small", "large"][rng.randint(2)]
    r = SIZES[size]
    centres = []
    for c in cells:
        x0, y0 = (c % 2) * 16, (c // 2) * 16
        lo, hi = r + 1.0, 16 - r - 1.0
        centres.append((x0 + lo + rng.rand() * (hi - lo), y0 + lo + rng.rand() * (hi - lo)))
    return {"count": n, "colour": list(COLOURS)[rng.randint(len(COLOURS))],
            "shape": SHAPES[rng.randint(len(SHAPES))], "size": size, "centres": centres}


def render(scene: dict) -> np.ndarray:
    """uint8 [32, 32, 3]."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = BACKGROUND
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    r = SIZES[scene["size"]]
    for cx, cy in scene["centres"]:
        if scene["shape"] == "circle":
            m = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
        elif scene["shape"] == "square":
            h = r * 0.85
            m = (np.abs(xs - cx) <= h) & (np.abs(ys - cy) <= h)
        else:
            t = (ys - (cy - r)) / (2 * r)
            m = (t >= 0) & (t <= 1) & (np.abs(xs - cx) <= r * t)
        img[m] = COLOURS[scene["colour"]]
    return img


def png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# texts
# ----------------------------------------------------------------------------------------------------------

def captions(s: dict) -> list:
    n, sz, col, sh = s["count"], s["size"], s["colour"], plural(s["shape"], s["count"])
    be = "is" if n == 1 else "are"
    return [f"{NUMBERS[n]} {sz} {col} {sh}",
            f"{NUMBERS[n]} {col} {sh}",
            f"there {be} {NUMBERS[n]} {sz} {col} {sh}",
            f"{NUMBERS[n]} {sz} {sh} in {col}"]


def vqa_items(s: dict, rng: np.random.RandomState) -> list:
    """All question kinds for a scene: (question, answer, answer_type, question_type)."""
    n = s["count"]
    one = n == 1
    other_col = [c for c in COLOURS if c != s["colour"]][rng.randint(len(COLOURS) - 1)]
    other_sh = [x for x in SHAPES if x != s["shape"]][rng.randint(len(SHAPES) - 1)]
    truth = rng.randint(2) == 1
    ask_col = s["colour"] if truth or rng.randint(2) else other_col
    ask_sh = s["shape"] if truth or ask_col != s["colour"] else other_sh
    present = ask_col == s["colour"] and ask_sh == s["shape"]
    ask_size = ["small", "large"][rng.randint(2)]
    return [
        ("What color is the shape?" if one else "What color are the shapes?", s["colour"], "other", "what color is the"),
        ("What shape is it?" if one else "What shape are they?", s["shape"], "other", "what"),
        ("How many shapes are there?", str(n), "number", "how many"),
        (f"Is the shape {ask_size}?" if one else f"Are the shapes {ask_size}?",
         "yes" if ask_size == s["size"] else "no", "yes/no", "is the" if one else "are the"),
        (f"Is there a {ask_col} {ask_sh}?", "yes" if present else "no", "yes/no", "is there a"),
    ]


def ten_answers(answer: str, rng: np.random.RandomState) -> list:
    """10 annotator answers: mostly the answer, sometimes one annotator writes a variant."""
    variants = {"purple": "violet", "circle": "circles", "square": "squares", "triangle": "triangles",
                "1": "one", "2": "two", "3": "three", "4": "four"}
    out = [answer] * 10
    if answer in variants and rng.rand() < 0.4:
        out[int(rng.randint(10))] = variants[answer]
    return out


def meme_item(s: dict, rng: np.random.RandomState) -> tuple:
    """(text, label): label 1 iff the text names a colour or shape that is not in the image."""
    mismatch = rng.randint(2) == 1
    col, sh = s["colour"], s["shape"]
    if mismatch:
        if rng.randint(2):
            col = [c for c in COLOURS if c != col][rng.randint(len(COLOURS) - 1)]
        else:
            sh = [x for x in SHAPES if x != sh][rng.randint(len(SHAPES) - 1)]
    forms = [f"i only like {col} {sh}s", f"nothing but {col} {sh}s here", f"look at my {col} {sh}s",
             f"{col} {sh}s are the best"]
    return forms[rng.randint(len(forms))], int(mismatch)


# ----------------------------------------------------------------------------------------------------------
# the benchmark data (data/shapes)
# ----------------------------------------------------------------------------------------------------------

SEED_DEMOS = 1001  # demonstration pool ("train" split of the benchmarks)
SEED_TEST = 2002   # evaluated queries (held out: never used for training)
SEED_BINDING = 3003
N_DEMOS = 64
N_TEST = 48
# The training stream (train_tiny.py) uses its own seed; see there.


def write_benchmark_data(out: Path) -> dict:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    files = {}
    splits = {}
    for split, seed, n in (("train", SEED_DEMOS, N_DEMOS), ("test", SEED_TEST, N_TEST)):
        rng = np.random.RandomState(seed)
        recs = []
        for i in range(n):
            s = sample_scene(rng)
            iid = (1 if split == "train" else 2) * 100000 + i
            name = f"shapes_{split}_{iid:06d}.png"
            files[f"images/{name}"] = png_bytes(render(s))
            recs.append({"id": iid, "file": name, "scene": s, "vqa": vqa_items(s, rng), "rng": int(rng.randint(2**31))})
        splits[split] = recs

    # captions: Karpathy json (both splits) + COCO-layout references for the test split
    kimages = []
    refs = {"images": [], "annotations": []}
    ann_id = 1
    for split in ("train", "test"):
        for r in splits[split]:
            caps = captions(r["scene"])
            kimages.append({"filename": r["file"], "cocoid": r["id"], "split": split,
                            "sentences": [{"raw": c, "tokens": c.split()} for c in caps]})
            if split == "test":
                refs["images"].append({"id": r["id"], "file_name": r["file"]})
                for c in caps:
                    refs["annotations"].append({"image_id": r["id"], "id": ann_id, "caption": c})
                    ann_id += 1
    files["captions_karpathy.json"] = _json({"images": kimages, "dataset": "shapes"})
    files["captions_test_refs.json"] = _json(refs)

    # VQA: 3 of the 5 question kinds per image (all 5 kinds appear equally often over the split)
    for split in ("train", "test"):
        qs, anns = [], []
        for k, r in enumerate(splits[split]):
            rng = np.random.RandomState(r["rng"])
            for j in range(3):
                kind = (k + j * 2) % 5
                q, a, at, qt = r["vqa"][kind]
                qid = r["id"] * 10 + j
                qs.append({"image_id": r["id"], "question": q, "question_id": qid})
                anns.append({"image_id": r["id"], "question_id": qid, "question_type": qt, "answer_type": at,
                             "multiple_choice_answer": a,
                             "answers": [{"answer": x, "answer_confidence": "yes", "answer_id": i + 1}
                                         for i, x in enumerate(ten_answers(a, rng))]})
        files[f"vqa_{split}_questions.json"] = _json({"questions": qs, "data_type": "shapes", "data_subtype": split})
        files[f"vqa_{split}_annotations.json"] = _json({"annotations": anns, "data_type": "shapes", "data_subtype": split})

    # classification: one text per image, balanced labels
    for split in ("train", "test"):
        lines = []
        for r in splits[split]:
            rng = np.random.RandomState(r["rng"] + 1)
            text, label = meme_item(r["scene"], rng)
            lines.append(json.dumps({"id": r["id"], "img": f"img/{r['file']}", "label": label, "text": text}))
        files[f"memes_{split}.jsonl"] = ("\n".join(lines) + "\n").encode()

    # fast binding: one fixed colour -> nonce draw for this split
    rng = np.random.RandomState(SEED_BINDING)
    names = [NONCE[i] for i in rng.permutation(len(NONCE))[:len(COLOURS)]]
    binding = dict(zip(COLOURS, names))
    for split in ("train", "test"):
        qs, anns = [], []
        for r in splits[split]:
            a = binding[r["scene"]["colour"]]
            qid = r["id"] * 10 + 9
            qs.append({"image_id": r["id"], "question": BINDING_QUESTION, "question_id": qid})
            anns.append({"image_id": r["id"], "question_id": qid, "question_type": "what is", "answer_type": "other",
                         "multiple_choice_answer": a,
                         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)]})
        files[f"binding_{split}_questions.json"] = _json({"questions": qs, "data_type": "shapes", "data_subtype": split})
        files[f"binding_{split}_annotations.json"] = _json({"annotations": anns, "data_type": "shapes", "data_subtype": split})
    files["binding.json"] = _json({"binding": binding, "note": "one fixed draw for this split; training draws anew per sequence"})

    for rel, data in sorted(files.items()):
        (out / rel).write_bytes(data)
    return {"files": len(files), "bytes": sum(len(v) for v in files.values())}


def _json(obj) -> bytes:
    return (json.dumps(obj, sort_keys=True) + "\n").encode()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "data" / "shapes"))
    a = ap.parse_args(argv)
    print(json.dumps(write_benchmark_data(Path(a.out))))


if __name__ == "__main__":
    main()
