"""Check the expected outputs of src/metrics/ptb.rs's unit tests against the Java tokenizer.

    python3 scripts/ptb_differential/check_unit_tests.py

Every `assert_eq!(t("INPUT"), "OUTPUT")` in the test module (t = raw, lower-cased tokens of one line alone)
is run through pycocoevalcap's jar (PTBTokenizer -preserveLines -lowerCase, one run, a blank line between
inputs so that no input sees the next one) and compared with OUTPUT. Needs Java and the jar that run.sh
fetches. Exit 1 on any difference. (Asserts written otherwise, e.g. over several lines, are not checked.)
"""
import os
import re
import subprocess
import sys
import tempfile

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
jar = os.path.join(repo, ".cache/pycocoevalcap/pycocoevalcap/tokenizer/stanford-corenlp-3.4.1.jar")
src = open(os.path.join(repo, "src/metrics/ptb.rs"), encoding="utf-8").read()
tests = src[src.index("mod tests"):]


def unescape(s):
    s = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda m: chr(int(m.group(1), 16)), s)
    return s.replace('\\"', '"').replace("\\'", "'").replace("\\t", "\t").replace("\\n", "\n").replace("\\\\", "\\")


pairs = re.findall(r'assert_eq!\(\s*t\("((?:[^"\\]|\\.)*)"\),\s*"((?:[^"\\]|\\.)*)"\s*\)', tests)
inputs = [unescape(a) for a, _ in pairs]
expected = [unescape(b) for _, b in pairs]
if any("\n" in i for i in inputs):
    sys.exit("check_unit_tests.py: an input holds a line break; write such tests with ptb_tokenize_lines")
if not os.path.exists(jar):
    sys.exit(f"check_unit_tests.py: {jar} missing (run scripts/ptb_differential/run.sh once)")
with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
    f.write("\n\n".join(inputs) + "\n")
try:
    out = subprocess.run(
        ["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", f.name],
        capture_output=True, stdin=subprocess.DEVNULL, check=True,
    ).stdout.decode("utf-8").split("\n")
finally:
    os.unlink(f.name)
bad = 0
for k, (i, e) in enumerate(zip(inputs, expected)):
    j = out[2 * k] if 2 * k < len(out) else "<missing>"
    if j != e:
        bad += 1
        print(f"differs: {i!r}\n   java {j!r}\n   test {e!r}")
print(f"{len(pairs)} unit-test expectations checked against the Java tokenizer, {bad} differ")
sys.exit(1 if bad else 0)
