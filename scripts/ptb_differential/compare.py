"""Compare Java's and our PTB tokenization line by line; exit 1 on any difference.

    python3 compare.py [--known FILE [--write-known]] INPUT JAVA OURS [INPUT2 JAVA2 OURS2 ...]

Each triple: the captions (one per line), pycocoevalcap's output and `flamingo-eval tokenize ptb`'s output.
Prints the number of captions compared and differing, and the differences in full. Exit 1 on any
difference, except with --known: FILE lists (JSON lines: caption, java, ours) the strings known to differ
still; then exit 1 on a difference not listed there and on a listed string that no longer differs (the list
can only shrink). --write-known rewrites FILE with the differences found.
"""
import json
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
    known_path = None
    write = False
    if a and a[0] == "--known":
        known_path = a[1]
        a = a[2:]
        if a and a[0] == "--write-known":
            write = True
            a = a[1:]
    total = 0
    bad = []
    for k in range(0, len(a), 3):
        inp, java, ours = read(a[k]), read(a[k + 1]), read(a[k + 2])
        if not (len(inp) == len(java) == len(ours)):
            sys.exit(f"compare.py: line counts differ: {a[k]} {len(inp)}, {a[k+1]} {len(java)}, {a[k+2]} {len(ours)}")
        total += len(inp)
        bad.extend((a[k], i, c, j, o) for i, (c, j, o) in enumerate(zip(inp, java, ours)) if j != o)
    print(f"PTB differential: {total} captions compared, {len(bad)} differ from pycocoevalcap's Java tokenizer")
    if write:
        with open(known_path, "w", encoding="utf-8") as f:
            for _, _, c, j, o in bad:
                f.write(json.dumps({"caption": c, "java": j, "ours": o}, ensure_ascii=True) + "\n")
        print(f"  wrote {len(bad)} known differences to {known_path}")
        return
    known = set()
    if known_path:
        with open(known_path, encoding="utf-8") as f:
            known = {json.loads(line)["caption"] for line in f if line.strip()}
    new = [b for b in bad if b[2] not in known]
    fixed = known - {b[2] for b in bad}
    if known_path:
        print(f"  {len(bad) - len(new)} of them listed in {known_path.rsplit('/', 1)[-1]} (known, not yet matched); "
              f"{len(new)} new; {len(fixed)} listed but now identical")
    for f, i, c, j, o in (new if known_path else bad)[:60]:
        print(f"  {f.rsplit('/', 1)[-1]}:{i + 1} {c!r}\n    java {j!r}\n    ours {o!r}")
    for c in sorted(fixed)[:20]:
        print(f"  now identical (remove it from the list): {c!r}")
    sys.exit(1 if new or fixed else 0)


if __name__ == "__main__":
    main()
