"""OpenFlamingo's own OK-VQA post-processing (open_flamingo.eval.ok_vqa_utils, installed open_flamingo 2.0.1,
nltk 3.10.4, inflection 0.5.1) on a list of answers, for export/tests/test_okvqa_stemmer.py.

    python okvqa_oracle.py NLTK_DATA_DIR ANSWERS_FILE OUT_JSON      (NLTK_DATA must be NLTK_DATA_DIR)

NLTK_DATA_DIR is made here from packaged data only (nothing is downloaded):
- corpora/wordnet: WordNet 3.0 dict files from Debian's wordnet-base (/usr/share/wordnet), plus `lexnames`
  (the standard lexicographer file list, which that package does not ship);
- taggers/averaged_perceptron_tagger_eng: a small model trained here with nltk's own trainer (nltk's English
  model ships in no package), on the answers tagged by simple rules; flamingo-eval loads the same files;
- tokenizers/punkt_tab/english: Punkt parameters trained here with nltk's PunktTrainer on the answers (Punkt's
  English model ships in no package either).
"""
import json
import random
import shutil
import sys
from pathlib import Path

LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body
noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive
noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation
noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication
verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception
verb.possession verb.social verb.stative verb.weather adj.ppl""".split()


def lexname_line(i, name):
    kind = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}[name.split(".")[0]]
    return f"{i:02d}\t{name}\t{kind}\n"


def rule_tag(w, rng):
    if w in ("the", "a", "an"):
        return "DT"
    if w in ("and", "or"):
        return "CC"
    if not any(c.isalnum() for c in w):
        return w if w in (".", ",", ":", "''", "``") else "SYM"
    if w[0].isdigit():
        return "CD"
    if w.lower().endswith("ing"):
        return "VBG" if rng.random() < 0.8 else "NN"
    if w.lower().endswith("s") and not w.lower().endswith("ss") and len(w) > 3:
        if w[0].isupper():
            return "NNPS"
        return "NNS" if rng.random() < 0.85 else "VBZ"
    return "NNP" if w[0].isupper() else ("JJ" if rng.random() < 0.2 else "NN")


def build(root, answers):
    wn = root / "corpora" / "wordnet"
    wn.mkdir(parents=True, exist_ok=True)
    for p in Path("/usr/share/wordnet").iterdir():
        if p.name.startswith(("index.", "data.")) or p.suffix == ".exc":  # index.sense: wordnet-sense-index
            shutil.copy(p, wn / p.name)
    (wn / "lexnames").write_text("".join(lexname_line(i, n) for i, n in enumerate(LEXNAMES)))
    from nltk.tokenize.punkt import PunktTrainer, save_punkt_params

    trainer = PunktTrainer()
    trainer.INCLUDE_ALL_COLLOCS = True
    trainer.train(" ".join(a.strip() + ("" if a.strip().endswith((".", "?", "!")) else ".") for a in answers), finalize=True)
    params = trainer.get_params()
    assert params.abbrev_types and params.ortho_context, "Punkt training gave empty parameters"
    pk = root / "tokenizers" / "punkt_tab" / "english"
    pk.parent.mkdir(parents=True, exist_ok=True)
    save_punkt_params(params, dir=str(pk))
    from nltk.tag.perceptron import PerceptronTagger
    from nltk.tokenize import word_tokenize

    rng = random.Random(12)
    sents = []
    for _ in range(3):
        for a in answers:
            toks = word_tokenize(a)
            if toks:
                sents.append([(t, rule_tag(t, rng)) for t in toks])
    random.seed(0)  # the trainer shuffles with the global generator
    tagger = PerceptronTagger(load=False)
    loc = root / "taggers" / "averaged_perceptron_tagger_eng"
    loc.mkdir(parents=True, exist_ok=True)
    tagger.train(sents, nr_iter=5)
    tagger.save_to_json(lang="eng", loc=str(loc))


def main(root, answers_file, out):
    root = Path(root)
    answers = Path(answers_file).read_text(encoding="utf-8").split("\n")[:-1]
    build(root, answers)
    from open_flamingo.eval.ok_vqa_utils import postprocess_ok_vqa_generation
    from open_flamingo.eval.vqa_metric import VQAEval

    class Empty:
        def getQuesIds(self):
            return []

    ev = VQAEval(Empty(), Empty())
    res = []
    for a in answers:
        stemmed = postprocess_ok_vqa_generation(a)
        c = stemmed.replace("\n", " ").replace("\t", " ").strip()
        res.append({"answer": a, "stemmed": stemmed, "metric_sees": ev.processDigitArticle(ev.processPunctuation(c))})
    Path(out).write_text(json.dumps(res, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main(*sys.argv[1:4])
