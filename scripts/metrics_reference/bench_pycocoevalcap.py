"""Baseline for BENCH.md: pycocoevalcap 1.2 (Java PTB tokenizer + Bleu/Rouge/Cider) on a COCO-layout
annotation file and results file, selecting images as the official demo does (pycocotools loadRes)."""
import json
import sys
import time

from pycocotools.coco import COCO
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

t0 = time.time()
coco = COCO(sys.argv[1])
res = coco.loadRes(sys.argv[2])
ids = res.getImgIds()
gts = {i: coco.imgToAnns[i] for i in ids}
rs = {i: res.imgToAnns[i] for i in ids}
tok = PTBTokenizer()
gts, rs = tok.tokenize(gts), tok.tokenize(rs)
out = {}
b, _ = Bleu(4).compute_score(gts, rs, verbose=0)
for k in range(4):
    out["Bleu_%d" % (k + 1)] = b[k]
out["ROUGE_L"] = float(Rouge().compute_score(gts, rs)[0])
out["CIDEr"] = float(Cider().compute_score(gts, rs)[0])
out["num_images"] = len(ids)
out["seconds"] = time.time() - t0
print(json.dumps(out, indent=1))
