"""Derive the WordNet 3.0 verb tables that OpenFlamingo's OK-VQA stemmer needs (nltk's WordNetLemmatizer is only
called with pos=VERB there) from the Debian package `wordnet-base` (dict files under /usr/share/wordnet):

  data/wordnet/verb_lemmas.txt  every lemma of index.verb (one per line, file order)
  data/wordnet/verb.exc         verb.exc as shipped (inflected form, then its base forms)

WordNet's licence allows redistribution with its notice: data/wordnet/LICENSE. Run:
  apt-get install wordnet-base && python3 scripts/okvqa_reference/make_wordnet_verbs.py [--check]
"""
import sys
from pathlib import Path

SRC = Path("/usr/share/wordnet")
OUT = Path(__file__).resolve().parents[2] / "data" / "wordnet"


def derive():
    lemmas = []
    for line in (SRC / "index.verb").read_text(encoding="utf-8").splitlines():
        if line.startswith(" ") or not line.strip():
            continue  # licence header
        lemmas.append(line.split()[0])
    return {"verb_lemmas.txt": "\n".join(lemmas) + "\n", "verb.exc": (SRC / "verb.exc").read_text(encoding="utf-8")}


if __name__ == "__main__":
    files = derive()
    if "--check" in sys.argv:
        bad = [n for n, t in files.items() if (OUT / n).read_text(encoding="utf-8") != t]
        sys.exit(f"out of date: {bad}" if bad else 0)
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    print("wrote", ", ".join(files), "to", OUT)
