#!/usr/bin/env python3
"""Builds the bundled demo data set (data/demo/) from the real photos in /work/shared/data/real.

Images are real (see LICENSES.md); every question, answer, caption, meme text and label here was
written by hand for this project. Run from the repository root:
    python3 data/demo/make_demo_data.py /work/shared/data/real
Needs ffmpeg (images are downscaled to at most 256 px, videos are 2-second slideshows).
"""
import json, os, subprocess, sys

REAL = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/real"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)))

# (coco-style id, split, source file, [ (question, answers(10), answer_type, question_type) x3 ], [captions x3], meme text, meme label)
def a(*xs):
    """10 annotator answers: the given ones, the first repeated to fill 10."""
    xs = list(xs)
    return xs + [xs[0]] * (10 - len(xs))

IMAGES = [
 (1, "train", "photos/astronaut.png",
  [("What is the woman wearing?", a("space suit", "spacesuit", "suit", "space suit", "orange suit"), "other", "what is the"),
   ("Is there a flag in the picture?", a("yes"), "yes/no", "is there a"),
   ("How many people are there?", a("1", "one"), "number", "how many")],
  ["A woman in an orange space suit smiles in front of a flag.", "An astronaut poses for a portrait holding a helmet.", "A smiling astronaut in a flight suit."],
  "when the coffee machine at the office finally works", 0),
 (2, "train", "photos/coffee.png",
  [("What drink is in the cup?", a("coffee", "coffee", "latte", "coffee", "cappuccino"), "other", "what is the"),
   ("What color is the cup?", a("white"), "other", "what color is the"),
   ("Is there a saucer under the cup?", a("yes", "yes", "no"), "yes/no", "is there a")],
  ["A cup of coffee sits on a saucer on a table.", "A white cup filled with coffee and foam.", "Close up of a coffee cup on a wooden surface."],
  "monday morning fuel", 0),
 (3, "train", "photos/grace_hopper.jpg",
  [("What is the person wearing?", a("uniform", "military uniform", "uniform", "navy uniform"), "other", "what is the"),
   ("Is this a black and white photo?", a("no"), "yes/no", "is this a"),
   ("What color is the background?", a("gray", "grey", "gray", "black"), "other", "what color is the")],
  ["A portrait of a woman in a navy uniform.", "An older woman in uniform poses for a photo.", "A woman with short hair wearing a dark uniform."],
  "trust me, i am an expert", 1),
 (4, "train", "photos/hubble_deep_field.jpg",
  [("What is shown in the picture?", a("galaxies", "stars", "galaxies", "space"), "other", "what is shown"),
   ("Is it daytime?", a("no"), "yes/no", "is it"),
   ("What color is the background?", a("black"), "other", "what color is the")],
  ["Many galaxies of different colors against a black sky.", "A deep space image full of small galaxies.", "Colorful points of light scattered across dark space."],
  "me looking for my keys", 0),
 (5, "train", "photos/motorcycle_left.png",
  [("What vehicle is this?", a("motorcycle", "motorbike", "motorcycle", "bike"), "other", "what"),
   ("What color is the motorcycle?", a("red", "red", "red and black"), "other", "what color is the"),
   ("Is anyone riding it?", a("no"), "yes/no", "is"),],
  ["A red motorcycle parked in front of a wall.", "Side view of a parked sport motorcycle.", "A shiny motorbike standing on its kickstand."],
  "weekend plans", 0),
 (6, "train", "photos/rocket.jpg",
  [("What is taking off?", a("rocket", "space shuttle", "rocket", "rocket", "shuttle"), "other", "what is"),
   ("Is there smoke?", a("yes"), "yes/no", "is there"),
   ("What color is the sky?", a("blue"), "other", "what color is the")],
  ["A rocket lifts off leaving a trail of smoke.", "A launch vehicle rising into a clear sky.", "A space launch with bright flames and white smoke."],
  "when someone says the deadline moved up", 1),
 (7, "train", "vqav2_sample/COCO_train2014_000000458752.jpg",
  [("What sport is being played?", a("baseball"), "other", "what sport is"),
   ("What color is the players shirt?", a("orange"), "other", "what color is the"),
   ("Is the man throwing the ball?", a("yes"), "yes/no", "is the man")],
  ["A baseball pitcher in an orange shirt throws a pitch.", "A player on the mound winding up to throw.", "A pitcher seen through the netting behind home plate."],
  "that feeling when you finally get it right", 0),
 (8, "train", "flickr30k_sample/images/100652400.jpg",
  [("What is the person wearing?", a("safety vest", "vest", "safety vest", "orange vest"), "other", "what is the"),
   ("Is this a street?", a("yes"), "yes/no", "is this a"),
   ("How many people are there?", a("1", "one", "1", "2"), "number", "how many")],
  ["A worker in a safety vest stands on a city street.", "A man in orange stands near a painted red arrow.", "A street crossing with a worker standing by the curb."],
  "directions unclear", 1),
 (9, "train", "flickr30k_sample/images/1016887272.jpg",
  [("What are the people doing?", a("climbing", "rock climbing", "climbing"), "other", "what are the"),
   ("Is the rock wall tall?", a("yes"), "yes/no", "is the"),
   ("How many climbers are on the wall?", a("5", "6", "5", "4"), "number", "how many")],
  ["Several people climb a tall rock face.", "Climbers in a line going up a cliff.", "A group of rock climbers on a steep wall."],
  "stairs? never heard of them", 0),
 (10, "train", "flickr30k_sample/images/101958970.jpg",
  [("Where are they?", a("store", "grocery store", "supermarket", "store"), "other", "where are the"),
   ("What color is the cart?", a("pink"), "other", "what color is the"),
   ("Is the child sitting in the cart?", a("yes"), "yes/no", "is the")],
  ["A man pushes a girl in a pink shopping cart.", "A father and daughter in a grocery store.", "A child sits in a shopping cart next to a man."],
  "shopping with the boss", 0),
 (11, "train", "flickr30k_sample/images/3359636318.jpg",
  [("What kind of shop is shown?", a("phone shop", "mobile phone store", "phone store", "electronics"), "other", "what kind of"),
   ("Is it raining?", a("no"), "yes/no", "is it"),
   ("How many people are walking?", a("5", "4", "6", "5"), "number", "how many")],
  ["People walk past a row of shops on a street.", "A busy sidewalk in front of a phone store.", "Pedestrians on a city street lined with stores."],
  "city life, every single day", 1),
 (12, "train", "flickr30k_sample/images/6959556104.jpg",
  [("What color are the balloons?", a("red and white", "red", "red white and black", "red and white"), "other", "what color are the"),
   ("Is there a banner?", a("yes"), "yes/no", "is there a"),
   ("Are the people cheering?", a("yes"), "yes/no", "are the")],
  ["A crowd cheers behind a banner with balloons.", "People celebrate with red and white balloons.", "A group of people holding a banner and balloons."],
  "when the pizza arrives", 0),
 (13, "val", "vqav2_sample/COCO_val2014_000000262148.jpg",
  [("What is the man riding?", a("skateboard"), "other", "what is the man"),
   ("Is he on a table?", a("yes", "yes", "no"), "yes/no", "is he"),
   ("Are people watching?", a("yes"), "yes/no", "are")],
  ["A skateboarder doing a trick on a picnic table.", "A man riding a skateboard on top of a table.", "A skater performs for a crowd in a park."],
  "nobody: me at 3 am:", 1),
 (14, "val", "vqav2_sample/COCO_val2014_000000393225.jpg",
  [("What food is in the bowl?", a("soup", "noodle soup", "noodles", "soup", "ramen"), "other", "what food is"),
   ("What color is the bowl?", a("white", "white and blue", "white"), "other", "what color is the"),
   ("Are there chopsticks?", a("yes"), "yes/no", "are there")],
  ["A bowl of noodle soup with shrimp and carrots.", "Chopsticks rest next to a bowl of soup.", "A white bowl of broth with noodles and vegetables."],
  "diet starts tomorrow", 0),
 (15, "val", "photos/chelsea.png",
  [("What animal is this?", a("cat", "cat", "kitten", "cat"), "other", "what animal is"),
   ("What color is the cat?", a("orange", "brown", "orange and white", "tabby"), "other", "what color is the"),
   ("Is the cat sleeping?", a("no"), "yes/no", "is the")],
  ["A tabby cat looks to the side.", "Close up of an orange striped cat.", "A cat with green eyes sitting indoors."],
  "i am the manager here", 1),
 (16, "val", "flickr30k_sample/images/7162685234.jpg",
  [("Where are the children?", a("beach", "beach", "on the beach", "sand"), "other", "where are the"),
   ("How many children are there?", a("2", "two", "2"), "number", "how many"),
   ("Are they playing in the sand?", a("yes"), "yes/no", "are they")],
  ["Two boys play in the sand on a beach.", "Children digging in the sand near the waves.", "A boy kneels in the sand by the ocean."],
  "building my future, one grain at a time", 0),
]

def coco_name(split, image_id):
    return f"COCO_{split}2014_{image_id:012d}.jpg"

def run(cmd):
    subprocess.run(cmd, check=True)

def main():
    img_dir = os.path.join(OUT, "images")
    os.makedirs(img_dir, exist_ok=True)
    for image_id, split, src, *_ in IMAGES:
        os.makedirs(os.path.join(img_dir, f"{split}2014"), exist_ok=True)
        dst = os.path.join(img_dir, f"{split}2014", coco_name(split, image_id))
        if not os.path.exists(dst):
            run(["ffmpeg", "-v", "error", "-y", "-i", os.path.join(REAL, src),
                 "-vf", "scale=256:256:force_original_aspect_ratio=decrease", "-q:v", "4", dst])

    info = {"description": "flamingo-eval demo data (hand-written annotations over real photos)", "version": "1.0"}
    lic = {"name": "see data/demo/LICENSES.md"}
    for split in ("train", "val"):
        qs, anns = [], []
        for image_id, s, _src, qas, *_ in IMAGES:
            if s != split:
                continue
            for k, (q, answers, atype, qtype) in enumerate(qas):
                qid = image_id * 1000 + k
                qs.append({"image_id": image_id, "question": q, "question_id": qid})
                counts = {}
                for x in answers:
                    counts[x] = counts.get(x, 0) + 1
                mca = max(counts, key=lambda x: counts[x])
                anns.append({"question_id": qid, "image_id": image_id, "question_type": qtype,
                             "answer_type": atype, "multiple_choice_answer": mca,
                             "answers": [{"answer": x, "answer_confidence": "yes", "answer_id": i + 1}
                                         for i, x in enumerate(answers)]})
        sub = f"{split}2014"
        common = {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": sub, "license": lic}
        # annotations are written in reverse order on purpose: loaders must join by question_id
        with open(os.path.join(OUT, f"vqa_{split}_questions.json"), "w") as f:
            json.dump({**common, "questions": qs}, f, indent=1)
        with open(os.path.join(OUT, f"vqa_{split}_annotations.json"), "w") as f:
            json.dump({**common, "annotations": list(reversed(anns))}, f, indent=1)

    # Karpathy-style captioning split: train images are demonstrations, val images are the test split.
    images, sid = [], 0
    refs = {"info": info, "licenses": [], "type": "captions", "images": [], "annotations": []}
    for image_id, split, _src, _qas, caps, *_ in IMAGES:
        sents = []
        for c in caps:
            sents.append({"raw": c, "tokens": c.lower().rstrip(".").split(), "imgid": image_id - 1, "sentid": sid})
            if split == "val":
                refs["annotations"].append({"image_id": image_id, "id": sid, "caption": c})
            sid += 1
        images.append({"filepath": f"{split}2014", "filename": coco_name(split, image_id), "imgid": image_id - 1,
                       "split": "train" if split == "train" else "test", "sentids": [s["sentid"] for s in sents],
                       "cocoid": image_id, "sentences": sents})
        if split == "val":
            refs["images"].append({"id": image_id, "file_name": coco_name(split, image_id)})
    with open(os.path.join(OUT, "karpathy_coco.json"), "w") as f:
        json.dump({"images": images, "dataset": "coco"}, f, indent=1)
    with open(os.path.join(OUT, "captions_test_refs.json"), "w") as f:
        json.dump(refs, f, indent=1)

    # HatefulMemes-style jsonl (texts and labels are synthetic and harmless).
    for split, want in (("train", "train"), ("dev", "val")):
        with open(os.path.join(OUT, f"memes_{split}.jsonl"), "w") as f:
            for image_id, s, _src, _qas, _caps, text, label in IMAGES:
                if s == want:
                    f.write(json.dumps({"id": f"{image_id:05d}", "img": f"img/{coco_name(s, image_id)}",
                                        "label": label, "text": text}) + "\n")

    # MSRVTT-QA-style video QA: 2-second slideshows of two photos each.
    vid_dir = os.path.join(OUT, "videos")
    os.makedirs(vid_dir, exist_ok=True)
    videos = [(7010, ["photos/rocket.jpg", "photos/hubble_deep_field.jpg"]),
              (7011, ["photos/chelsea.png", "photos/coffee.png"]),
              (7012, ["vqav2_sample/COCO_train2014_000000458752.jpg", "vqav2_sample/COCO_val2014_000000262148.jpg"]),
              (7013, ["photos/motorcycle_left.png", "flickr30k_sample/images/1016887272.jpg"])]
    for vid, (a_src, b_src) in videos:
        dst = os.path.join(vid_dir, f"video{vid}.mp4")
        if os.path.exists(dst):
            continue
        run(["ffmpeg", "-v", "error", "-y",
             "-loop", "1", "-t", "1", "-i", os.path.join(REAL, a_src),
             "-loop", "1", "-t", "1", "-i", os.path.join(REAL, b_src),
             "-filter_complex",
             "[0:v]scale=128:96:force_original_aspect_ratio=decrease,pad=128:96:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=10[a];"
             "[1:v]scale=128:96:force_original_aspect_ratio=decrease,pad=128:96:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=10[b];"
             "[a][b]concat=n=2:v=1[v]",
             "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "30", dst])
    qa = {
        "train": [("what is launched into the sky?", "rocket", 7010), ("what animal is shown?", "cat", 7011),
                  ("what sport is played?", "baseball", 7012), ("what vehicle is shown?", "motorcycle", 7013),
                  ("what drink is shown?", "coffee", 7011), ("what fills the night sky?", "galaxies", 7010)],
        "test": [("what is shown first?", "rocket", 7010), ("what does the man ride?", "skateboard", 7012),
                 ("what are the people climbing?", "rock", 7013), ("what is in the cup?", "coffee", 7011)],
    }
    next_id = 0
    for split, items in qa.items():
        rows = []
        for q, ans, vid in items:
            rows.append({"question": q, "answer": ans, "category_id": 0, "video_id": vid, "id": next_id})
            next_id += 1
        with open(os.path.join(OUT, f"videoqa_{split}.json"), "w") as f:
            json.dump(rows, f, indent=1)

if __name__ == "__main__":
    main()
