"""Measure how pycocoevalcap's Java PTB tokenizer (CoreNLP 3.4.1) treats every BMP character, and write
the result as the Rust range table src/metrics/ptb_chars.rs.

    PYTHONPATH=.cache/pycocoevalcap python3 scripts/metrics_reference/ptb_char_table.py src/metrics/ptb_chars.rs

Each character c (outside ASCII) is probed as `a{c}b {c} x{c} {c}y` on its own line, as pycocoevalcap runs
the tool, and classed by the output: Word (`a{c}b` stays one token: c lexes like a letter), Sym (c is a token
of its own everywhere), Del (c disappears and separates its neighbours: untokenizable or space), or Special
(anything else: quotes, dashes, currency, fractions, ...; the lexer handles those characters by name).
This is observed behaviour, not derived from CoreNLP's source.
"""
import os
import subprocess
import sys
import tempfile

import pycocoevalcap.tokenizer.ptbtokenizer as ptbmod


def java_lines(lines):
    jar_dir = os.path.dirname(os.path.abspath(ptbmod.__file__))
    tmp = tempfile.NamedTemporaryFile(delete=False, dir=jar_dir)
    tmp.write("\n".join(lines).encode())
    tmp.close()
    cmd = ["java", "-cp", ptbmod.STANFORD_CORENLP_3_4_1_JAR, "edu.stanford.nlp.process.PTBTokenizer",
           "-preserveLines", "-lowerCase", os.path.basename(tmp.name)]
    out = subprocess.run(cmd, cwd=jar_dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    os.remove(tmp.name)
    return out.split("\n")


def main():
    cps = [c for c in range(0x80, 0x10000) if not 0xD800 <= c < 0xE000]
    out = java_lines(["zq%d a%sb %s x%s %sy" % (c, chr(c), chr(c), chr(c), chr(c)) for c in cps])
    seen = {}
    for line in out:
        t = line.split(" ")
        if t[0].startswith("zq") and t[0][2:].isdigit():
            seen[int(t[0][2:])] = " ".join(t[1:])
    kind = {}
    for c in cps:
        ch = chr(c)
        o = seen.get(c)  # None: a line terminator for the Java tool
        if o == "a b x y":
            kind[c] = "Del"
        elif o == f"a{ch}b {ch} x{ch} {ch}y".lower():
            kind[c] = "Word"
        elif o == f"a {ch} b {ch} x {ch} {ch} y".lower():
            kind[c] = "Sym"
        else:
            kind[c] = "Special"
    ranges = []
    for c in cps:
        k = kind[c]
        if ranges and ranges[-1][2] == k and ranges[-1][1] + 1 == c:
            ranges[-1][1] = c
        elif ranges and ranges[-1][2] == k and ranges[-1][1] == 0xD7FF and c == 0xE000:
            ranges[-1][1] = c
        else:
            ranges.append([c, c, k])
    ranges = [r for r in ranges if r[2] != "Del"]  # Del is the default
    with open(sys.argv[1], "w") as f:
        f.write("//! How the Java PTB tokenizer (CoreNLP 3.4.1, as pycocoevalcap runs it) treats each BMP character\n")
        f.write("//! above ASCII: measured by scripts/metrics_reference/ptb_char_table.py (do not edit by hand).\n")
        f.write("//! Characters not listed are deleted and separate their neighbours; astral characters too.\n\n")
        f.write("#[derive(Clone, Copy, Debug, PartialEq, Eq)]\npub enum CharKind {\n    /// Lexes like a letter.\n    Word,\n")
        f.write("    /// Always a token of its own.\n    Sym,\n    /// Deleted (untokenizable or space).\n    Del,\n")
        f.write("    /// Handled by name in the lexer.\n    Special,\n}\n\nuse CharKind::*;\n\n")
        f.write(f"/// (first, last, kind), sorted, not overlapping.\npub const RANGES: [(u32, u32, CharKind); {len(ranges)}] = [\n")
        line = "   "
        for a, b, k in ranges:
            item = f" (0x{a:04X}, 0x{b:04X}, {k}),"
            if len(line) + len(item) > 116:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n];\n\n")
        f.write("/// The kind of a character above ASCII.\npub fn kind(c: char) -> CharKind {\n    let u = c as u32;\n")
        f.write("    match RANGES.binary_search_by(|&(a, b, _)| if b < u { std::cmp::Ordering::Less } else if a > u { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Equal }) {\n")
        f.write("        Ok(k) => RANGES[k].2,\n        Err(_) => Del,\n    }\n}\n")
    # combining marks among the Word characters (Unicode general category M*, from Python's unicodedata):
    # the lexer needs them apart from letters (a mark after a digit, or after `-`/`_`, starts no word)
    import unicodedata
    marks = []
    for c in cps:
        if kind[c] == "Word" and unicodedata.category(chr(c)).startswith("M"):
            if marks and marks[-1][1] + 1 == c:
                marks[-1][1] = c
            else:
                marks.append([c, c])
    with open(sys.argv[1], "a") as f:
        f.write(f"\n/// Combining marks (general category M*, Unicode {unicodedata.unidata_version}) among the Word characters.\n")
        f.write(f"pub const MARKS: [(u32, u32); {len(marks)}] = [\n")
        line = "   "
        for a, b in marks:
            item = f" (0x{a:04X}, 0x{b:04X}),"
            if len(line) + len(item) > 116:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n];\n\n")
        f.write("/// Whether a character above ASCII is a combining mark that lexes like a letter.\npub fn is_mark(c: char) -> bool {\n    let u = c as u32;\n")
        f.write("    MARKS.binary_search_by(|&(a, b)| if b < u { std::cmp::Ordering::Less } else if a > u { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Equal }).is_ok()\n}\n")
    print(f"{len(ranges)} ranges; " + ", ".join(f"{k} {sum(1 for v in kind.values() if v == k)}" for k in ("Word", "Sym", "Del", "Special")))


if __name__ == "__main__":
    main()
