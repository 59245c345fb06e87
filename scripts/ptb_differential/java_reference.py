"""Tokenize every line of a file with pycocoevalcap's own PTBTokenizer (Stanford CoreNLP 3.4.1 in Java).

    python3 java_reference.py IN OUT [--terminators-as-spaces]

IN: UTF-8, one caption per line. OUT: one line per caption, exactly the string pycocoevalcap hands to its
scorers. pycocoevalcap (on PYTHONPATH) is called as the COCO caption evaluation calls it: all captions in
one `PTBTokenizer().tokenize(dict)` call, so Java lexes them as one stream, in file order. With
--terminators-as-spaces, \\r \\v \\f U+2028 U+2029 in a caption are replaced by spaces first (the Java
tool would break the caption into several lines there; our policy is to read them as spaces).
"""
import sys

from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer


def main():
    src, dst = sys.argv[1], sys.argv[2]
    as_spaces = "--terminators-as-spaces" in sys.argv[3:]
    with open(src, encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    if as_spaces:
        for t in ("\r", "\x0b", "\x0c", "\u2028", "\u2029"):
            lines = [s.replace(t, " ") for s in lines]
    # one image per caption: keys are inserted in file order, which is the order Java sees them in
    captions = {k: [{"caption": s}] for k, s in enumerate(lines)}
    out = PTBTokenizer().tokenize(captions)
    if len(out) != len(lines):
        sys.exit(f"java_reference.py: Java returned {len(out)} of {len(lines)} captions (a line terminator inside one?)")
    with open(dst, "w", encoding="utf-8", newline="\n") as f:
        for k in range(len(lines)):
            f.write(out[k][0] + "\n")


if __name__ == "__main__":
    main()
