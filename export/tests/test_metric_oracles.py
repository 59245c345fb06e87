"""flamingo-eval's metrics and inputs against the reference implementations, run live: scikit-learn's
roc_auc_score, Pillow. The oracle packages are listed in export/requirements-oracles.txt (scripts/test.sh
installs them into the exporter venv). flamingo-eval is the debug binary `cargo test` builds."""
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO

EXE = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "flamingo-eval"


def fe(*args, stdin=None):
    assert EXE.exists(), f"{EXE} missing: run `cargo build` (scripts/test.sh does) before the exporter tests"
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, input=stdin)


# ------------------------------------------------------------------------------------------- ROC-AUC
def ulp_near_ties(seed, n):
    """Scores where positives and negatives sit 1-2 ulps apart: the AUC depends on the last bit."""
    rng = np.random.default_rng(seed)
    labels, scores = [], []
    for _ in range(n // 2):
        base = float(rng.random())
        k = int(rng.integers(1, 3))
        up = base
        for _ in range(k):
            up = float(np.nextafter(up, 2.0))
        pos_high = bool(rng.integers(0, 2))
        labels += [1, 0] if pos_high else [0, 1]
        scores += [up, base]
    return labels, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_on_one_ulp_near_ties_matches_sklearn(tmp_path, seed):
    from sklearn.metrics import roc_auc_score

    labels, scores = ulp_near_ties(seed, 400)
    want = float(roc_auc_score(labels, scores))
    recs = [{"id": str(i), "label": l, "score": s} for i, (l, s) in enumerate(zip(labels, scores))]
    f = tmp_path / "scores.json"
    f.write_text(json.dumps(recs))  # Python writes the shortest repr that reads back to the same double
    csv = tmp_path / "scores.csv"
    csv.write_text("id,label,score\n" + "".join(f"{i},{l},{s!r}\n" for i, (l, s) in enumerate(zip(labels, scores))))
    for path in (f, csv):
        r = fe("score", "classification", "--input", path, "--format", "json", "--bootstrap", "0")
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)["roc_auc"]
        assert got == want, f"{path.name}: flamingo-eval {got!r}, scikit-learn {want!r}"


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0, 0]])
def test_roc_auc_single_class_is_undefined_as_in_sklearn(tmp_path, labels):
    import sklearn
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_auc_score

    scores = [0.1 * (i + 1) for i in range(len(labels))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = roc_auc_score(labels, scores)
    # what the message claims about scikit-learn: NaN, with an UndefinedMetricWarning
    assert math.isnan(ref) and any(issubclass(w.category, UndefinedMetricWarning) for w in caught)
    f = tmp_path / "one_class.json"
    f.write_text(json.dumps([{"id": str(i), "label": l, "score": s} for i, (l, s) in enumerate(zip(labels, scores))]))
    r = fe("score", "classification", "--input", f)
    assert r.returncode == 0, r.stderr
    assert "undefined" in r.stdout and not any(c.isdigit() for c in r.stdout.split("undefined")[0].split(":")[-1])
    assert f"scikit-learn's roc_auc_score ({sklearn.__version__}) returns NaN" in r.stderr, r.stderr
    r = fe("score", "classification", "--input", f, "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["roc_auc"] is None and "undefined" in out["roc_auc_undefined"]


# --------------------------------------------------------------------------------------------- images
def test_truncated_jpeg_expectations_are_what_pillow_does():
    """tests/preprocess_truncated.rs holds flamingo-eval to these; here Pillow is held to them too."""
    script = REPO / "tests/fixtures/images/truncated/make_expected.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------------------------------------ VQA
def test_normalize_vqa_openflamingo_is_what_openflamingos_metric_compares():
    """`normalize vqa --mode openflamingo` against the installed open_flamingo's own VQAEval steps (the
    official vqaEval.py is checked by tests/metrics_vqa_extra.rs from committed expectations)."""
    from open_flamingo.eval.vqa_metric import VQAEval

    class Empty:
        def getQuesIds(self):
            return []

    ev = VQAEval(Empty(), Empty())
    answers = (REPO / "scripts/metrics_reference/tricky_answers.txt").read_text(encoding="utf-8").split("\n")
    answers = [a for a in answers if a != ""]
    answers += ["Two Dogs.", "the 3 cats", "isnt it", "5,000 people", "hot dog; bun", "  x  "]
    want = []
    for a in answers:
        a = a.replace("\n", " ").replace("\t", " ").strip()  # OpenFlamingo's evaluate() does this first
        want.append(ev.processDigitArticle(ev.processPunctuation(a)))
    r = fe("normalize", "vqa", "--mode", "openflamingo", stdin="".join(a + "\n" for a in answers))
    assert r.returncode == 0, r.stderr
    got = r.stdout.split("\n")[:-1]
    assert got == want


# ------------------------------------------------------------------------------------------- ImageNet
def test_shipped_imagenet_class_names_are_openflamingos():
    from open_flamingo.eval.classification_utils import IMAGENET_CLASSNAMES

    shipped = (REPO / "data/imagenet/classnames.txt").read_text(encoding="utf-8").split("\n")
    assert shipped[-1] == "" and shipped[:-1] == list(IMAGENET_CLASSNAMES)
    assert len(IMAGENET_CLASSNAMES) == 1000


def test_ensemble_order_count_is_openflamingos_formula():
    """OpenFlamingo's own expression for the number of orders (evaluate_classification's num_permutations,
    evaluated here from its source) and its effective shot count, against the counts
    tests/engine_rank.rs requires of flamingo-eval: min(6, k!) with k = 2 text-only demos at 0 shots."""
    import ast
    import importlib.util
    import math

    from open_flamingo.eval.utils import compute_effective_num_shots

    src_path = Path(importlib.util.find_spec("open_flamingo.eval").submodule_search_locations[0]) / "evaluate.py"
    src = src_path.read_text()
    tree = ast.parse(src)
    exprs = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "num_permutations" for t in n.targets)]
    assert len(exprs) == 1
    code = compile(ast.Expression(exprs[0]), "evaluate.py", "eval")
    assert "torch.mean(torch.stack(logprobs, dim=-1), dim=-1)" in src  # the per-class mean over orders
    ours = {0: 2, 2: 2, 3: 6, 4: 6, 8: 6}  # what the engine test asserts (shots -> orders), extended
    for shots, want in ours.items():
        k = compute_effective_num_shots(shots, "open_flamingo")
        n = eval(code, {"math": math, "effective_num_shots": k, "use_prompt_ensembling": True})
        assert n == want == min(6, math.factorial(k)), (shots, k, n)
        assert eval(code, {"math": math, "effective_num_shots": k, "use_prompt_ensembling": False}) == 1


def test_openflamingo_top1_compares_class_names():
    """`mode: openflamingo` top-1 (src/engine/scoring.rs) compares class names, as evaluate_classification
    does: gt_label is the sample's class name, pred_label the top predicted name. With CLIP's list two
    classes share a name, so the modes can differ there."""
    import importlib.util

    from open_flamingo.eval.classification_utils import IMAGENET_CLASSNAMES

    src_path = Path(importlib.util.find_spec("open_flamingo.eval").submodule_search_locations[0]) / "evaluate.py"
    src = " ".join(src_path.read_text().split())
    assert 'int(pred["gt_label"] == pred["pred_label"])' in src
    assert '"gt_label": y_i' in src and 'y_i = batch["class_name"][i]' in src and '"pred_label": topk[0]' in src
    dup = sorted({n for n in IMAGENET_CLASSNAMES if IMAGENET_CLASSNAMES.count(n) > 1})
    assert dup == ["missile", "sunglasses"]
