"""OK-VQA post-processing: flamingo-eval against OpenFlamingo's own code (open_flamingo.eval.ok_vqa_utils with
nltk 3.10.4 and inflection 0.5.1) on tests/fixtures/okvqa/answers.txt. Both read the same nltk_data folder,
made from packaged data by okvqa_oracle.py (Debian's WordNet; a tagger model and Punkt parameters trained
there with nltk's own trainers, since nltk's English models ship in no package). WordNet reaches flamingo-eval through its built-in
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
SENTENCE_BREAK = re.compile(r"[.?!]\s+\S")  # where Punkt decides whether a sentence ends


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
    diffs = [(r["answer"], r["stemmed"], s, r["metric_sees"], m) for r, s, m in zip(ref, stemmed, seen)
             if (s, m) != (r["stemmed"], r["metric_sees"])]
    breaks = sum(bool(SENTENCE_BREAK.search(r["answer"])) for r in ref)
    print(f"OK-VQA stemming: {len(ref)} answers compared ({breaks} with a possible sentence break), {len(diffs)} differences")
    assert len(ref) >= 400 and breaks >= 15
    assert not diffs, diffs[:20]
    # Punkt really split some answers (a period detached from its word), so that path is exercised
    assert any(" ." in r["stemmed"] and "." in r["answer"][:-1] for r in ref)
    # the stemming really happens (plurals, -ing verbs, the manual table), so the comparison has teeth
    changed = sum(r["stemmed"] != r["answer"] for r in ref)
    assert changed >= 150, changed


def test_missing_tagger_model_is_a_clear_error(tmp_path):
    r = subprocess.run([str(EXE), "normalize", "okvqa"], input="dogs\n", capture_output=True, text=True,
                       env={**os.environ, "NLTK_DATA": str(tmp_path), "HOME": str(tmp_path)})
    assert r.returncode != 0
    assert "averaged_perceptron_tagger_eng" in r.stderr and "punkt_tab" in r.stderr and "nltk.downloader" in r.stderr
    assert str(tmp_path) in r.stderr
