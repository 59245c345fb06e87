"""OK-VQA post-processing: flamingo-eval against OpenFlamingo's own code (open_flamingo.eval.ok_vqa_utils with
nltk 3.10.4 and inflection 0.5.1) on tests/fixtures/okvqa/answers.txt. Both read the same nltk_data folder,
made from packaged data by okvqa_oracle.py (Debian's WordNet; a tagger model trained there with nltk's
trainer, since nltk's English model ships in no package). WordNet reaches flamingo-eval through its built-in
tables (data/wordnet, derived from the same Debian files: checked here too)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO
from .test_metric_oracles import EXE

ANSWERS = REPO / "tests/fixtures/okvqa/answers.txt"
# Where nltk's word_tokenize would first split sentences (Punkt): not done by flamingo-eval (documented limit)
SENTENCE_BREAK = re.compile(r"[.?!]\s+\S")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    if not Path("/usr/share/wordnet/index.sense").exists():
        pytest.fail("Debian packages wordnet-base and wordnet-sense-index are needed (scripts/test.sh installs them)")
    d = tmp_path_factory.mktemp("okvqa")
    nd = d / "nltk_data"
    nd.mkdir()
    out = d / "oracle.json"
    env = {**os.environ, "NLTK_DATA": str(nd)}
    r = subprocess.run([sys.executable, str(Path(__file__).with_name("okvqa_oracle.py")), str(nd), str(ANSWERS), str(out)],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return nd, json.loads(out.read_text())


def fe_lines(nd, *args):
    r = subprocess.run([str(EXE), *args, str(ANSWERS)], capture_output=True, text=True,
                       env={**os.environ, "NLTK_DATA": str(nd)})
    assert r.returncode == 0, r.stderr
    return r.stdout.split("\n")[:-1]


def test_wordnet_tables_are_derived_from_the_debian_package():
    r = subprocess.run([sys.executable, str(REPO / "scripts/okvqa_reference/make_wordnet_verbs.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_okvqa_stemming_matches_openflamingo(oracle):
    nd, ref = oracle
    stemmed = fe_lines(nd, "normalize", "okvqa")
    seen = fe_lines(nd, "normalize", "vqa", "--mode", "openflamingo", "--okvqa")
    assert len(stemmed) == len(seen) == len(ref)
    compared, skipped, diffs = 0, [], []
    for r, s, m in zip(ref, stemmed, seen):
        if SENTENCE_BREAK.search(r["answer"]):
            skipped.append(r["answer"])
            continue
        compared += 1
        if (s, m) != (r["stemmed"], r["metric_sees"]):
            diffs.append((r["answer"], r["stemmed"], s, r["metric_sees"], m))
    print(f"OK-VQA stemming: {compared} answers compared, {len(diffs)} differences; "
          f"{len(skipped)} with a sentence break left out: {skipped}")
    assert compared >= 400 and len(skipped) <= 10
    assert not diffs, diffs[:20]
    # the stemming really happens (plurals, -ing verbs, the manual table), so the comparison has teeth
    changed = sum(r["stemmed"] != r["answer"] for r in ref)
    assert changed >= 150, changed


def test_missing_tagger_model_is_a_clear_error(tmp_path):
    r = subprocess.run([str(EXE), "normalize", "okvqa"], input="dogs\n", capture_output=True, text=True,
                       env={**os.environ, "NLTK_DATA": str(tmp_path), "HOME": str(tmp_path)})
    assert r.returncode != 0
    assert "averaged_perceptron_tagger_eng" in r.stderr and "nltk.downloader" in r.stderr and str(tmp_path) in r.stderr
