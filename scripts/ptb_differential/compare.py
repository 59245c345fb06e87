"""Compare Java's and our PTB tokenization line by line; exit 1 on any difference.

    python3 compare.py INPUT JAVA OURS [INPUT2 JAVA2 OURS2 ...]

Each triple: the captions (one per line), pycocoevalcap's output and `flamingo-eval tokenize ptb`'s output.
Prints the number of captions compared and differing, and the first differences in full.
"""
import sys


def read(p, n=None):
    with open(p, encoding="utf-8", newline="\n") as f:
        s = f.read()
    lines = s.split("\n")
    if s.endswith("\n"):
        lines.pop()
    return lines


def main():
    a = sys.argv[1:]
    total = 0
    bad = []
    for k in range(0, len(a), 3):
        inp, java, ours = read(a[k]), read(a[k + 1]), read(a[k + 2])
        if not (len(inp) == len(java) == len(ours)):
            sys.exit(f"compare.py: line counts differ: {a[k]} {len(inp)}, {a[k+1]} {len(java)}, {a[k+2]} {len(ours)}")
        total += len(inp)
        bad.extend((a[k], i, c, j, o) for i, (c, j, o) in enumerate(zip(inp, java, ours)) if j != o)
    print(f"PTB differential: {total} captions compared, {len(bad)} differ from pycocoevalcap's Java tokenizer")
    for f, i, c, j, o in bad[:40]:
        print(f"  {f.rsplit('/', 1)[-1]}:{i + 1} {c!r}\n    java {j!r}\n    ours {o!r}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
