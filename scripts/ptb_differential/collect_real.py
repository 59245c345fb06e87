"""Collect the real captions of the shared data folder, one per line, for the PTB differential test.

    python3 collect_real.py SHARED_DATA_DIR OUT

Reads the COCO annotation and results files and the Flickr30k and nlg-eval samples found there (whatever
exists), replaces "\\n" inside a caption by a space (as pycocoevalcap does) and writes the captions in file
order. Captions holding a line terminator the Java tool would split at (\\r \\v \\f U+2028 U+2029) go to
OUT.terminators instead. Prints how many captions came from each file.
"""
import json
import os
import sys

TERMINATORS = ("\r", "\x0b", "\x0c", "\u2028", "\u2029")


def main():
    root, out = sys.argv[1], sys.argv[2]
    caps = []
    for rel in ("coco_captions/captions_val2014_subset4800.json", "coco_captions/captions_val2014_fakecap_results.json",
                "flickr30k_sample/captions_plain.json", "nlgeval_example/hyp.txt", "nlgeval_example/ref1.txt",
                "nlgeval_example/ref2.txt"):
        p = os.path.join(root, rel)
        if not os.path.exists(p):
            print(f"  (not found: {p})")
            continue
        if p.endswith(".txt"):
            with open(p, encoding="utf-8") as f:
                got = f.read().split("\n")
            got = [g for g in got if g != ""]
        else:
            with open(p, encoding="utf-8") as f:
                d = json.load(f)
            if isinstance(d, dict) and "annotations" in d:
                got = [a["caption"] for a in d["annotations"]]
            elif isinstance(d, list):
                got = [a["caption"] for a in d]
            else:
                got = [c for v in d.values() for c in v]
        print(f"  {len(got):6d} captions from {rel}")
        caps.extend(g.replace("\n", " ") for g in got)
    plain = [c for c in caps if not any(t in c for t in TERMINATORS)]
    term = [c for c in caps if any(t in c for t in TERMINATORS)]
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(plain))
    with open(out + ".terminators", "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(term))


if __name__ == "__main__":
    main()
