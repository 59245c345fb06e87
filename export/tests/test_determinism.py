"""Same seed -> byte-identical files: re-create each tiny fixture from scratch (as export/make_fixtures.sh
does) into a temporary directory and compare every file with the committed one."""
import filecmp
import os
import subprocess
import sys

import pytest

from .conftest import FIXTURES, REPO, TINY

ENV = {"FLAMINGO_EXPORT_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE",
       "TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _same_tree(a, b):
    fa, fb = _files(a), _files(b)
    assert fa == fb, f"file lists differ: {set(fa) ^ set(fb)}"
    diff = [f for f in fa if not filecmp.cmp(a / f, b / f, shallow=False)]
    assert not diff, f"files differ from the committed fixture: {diff}"


@pytest.mark.parametrize("module,committed", [("train_tokenizer", "base_tokenizer"),
                                              ("train_llama_tokenizer", "llama_tokenizer")])
def test_tokenizer_retrains_identically(module, committed, tmp_path):
    subprocess.run([sys.executable, "-m", f"export.tiny.{module}", str(tmp_path / "tok")], cwd=REPO,
                   env={**os.environ, **ENV}, check=True, capture_output=True)
    _same_tree(REPO / "export" / "tiny" / committed, tmp_path / "tok")


@pytest.mark.parametrize("name", TINY)
def test_reexport_is_byte_identical(name, tmp_path):
    r = subprocess.run([sys.executable, "-m", "export.tiny.make_tiny", name, "--out-root", str(tmp_path),
                        "--summary"], cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    _same_tree(FIXTURES / name, tmp_path / name)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary directories left behind"


def test_clip_fixture_reexports_identically(tmp_path):
    r = subprocess.run([sys.executable, "-m", "export.tiny.make_tiny_clip", str(tmp_path / "w"), "--fixture", "--out",
                        str(tmp_path / "tiny-clip")], cwd=REPO, env={**os.environ, **ENV}, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    committed, fresh = REPO / "tests" / "fixtures" / "clip" / "tiny-clip", tmp_path / "tiny-clip"
    # The TorchScript archive's bytes are not reproducible across machines: its debug pickles record the absolute
    # paths of the open_clip / torch sources it was scripted from (the venv's location). So `source.weights_sha256`
    # may differ; it must then be the hash of the archive actually exported, and everything else (the ONNX graph,
    # golden.json, every other manifest line) must be byte-identical.
    import hashlib

    want = hashlib.sha256((tmp_path / "w" / "tiny-clip-openai.pt").read_bytes()).hexdigest()
    lines = lambda p: (p / "clip.yaml").read_text().splitlines()
    got = [ln for ln in lines(fresh) if "weights_sha256:" in ln]
    assert got == [f'  weights_sha256: "{want}"'], got
    strip = lambda p: [ln for ln in lines(p) if "weights_sha256:" not in ln]
    assert strip(committed) == strip(fresh)
    assert sorted(_files(committed)) == sorted(_files(fresh))
    diff = [f for f in _files(committed) if f != "clip.yaml"
            and not filecmp.cmp(committed / f, fresh / f, shallow=False)]
    assert not diff, f"files differ from the committed fixture: {diff}"
