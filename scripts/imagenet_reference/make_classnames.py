"""Write data/imagenet/classnames.txt: the 1000 ImageNet-1k class names, one per line in class-index (sorted
wnid) order, exactly as OpenFlamingo evaluates with them (`IMAGENET_CLASSNAMES` in
open_flamingo/eval/classification_utils.py, OpenAI CLIP's curated names; both MIT-licensed).

Run with the exporter venv (it has open_flamingo 2.0.1 installed):
    export/.venv/bin/python scripts/imagenet_reference/make_classnames.py [--check]
"""
import sys
from pathlib import Path

from open_flamingo.eval.classification_utils import IMAGENET_CLASSNAMES

OUT = Path(__file__).resolve().parents[2] / "data" / "imagenet" / "classnames.txt"

if __name__ == "__main__":
    assert len(IMAGENET_CLASSNAMES) == 1000
    assert all("\n" not in n and n == n.strip() for n in IMAGENET_CLASSNAMES)
    text = "\n".join(IMAGENET_CLASSNAMES) + "\n"
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else f"{OUT} differs from OpenFlamingo's IMAGENET_CLASSNAMES")
    OUT.write_text(text, encoding="utf-8")
    print("wrote", OUT)
