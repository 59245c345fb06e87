"""Graphs over 2 GiB keep their tensors in `<graph>.onnx.data` (one ONNX protobuf cannot exceed 2 GiB). Forced
on a tiny model (FLAMINGO_EXPORT_EXTERNAL_DATA=1): the export passes its parity check, model.yaml lists and
hashes the data files, and flamingo-eval (built by `cargo test`, which .ci/run runs first) generates exactly what
it generates with the committed single-file fixture."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import FIXTURES, REPO
from .test_determinism import ENV

GRAPHS = ("vision_encoder", "perceiver", "lang_decoder", "xattn_kv")


EXE = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "flamingo-eval"


def _generate(model_dir):
    exe = EXE
    assert exe.exists(), f"{exe} missing: run `cargo build` (scripts/test.sh does) before the exporter tests"
    r = subprocess.run([str(exe), "generate", "--model", str(model_dir), "--num-beams", "3", "--max-new-tokens", "8",
                        "--image", str(REPO / "data/demo/images/val2014/COCO_val2014_000000000013.jpg"),
                        "--prompt", "<image>Question: What is in the room? Short answer:", "--json"],
                       capture_output=True, text=True, env={**os.environ, "ORT_DYLIB_PATH": os.environ.get(
                           "ORT_DYLIB_PATH", str(REPO / ".ort" / "libonnxruntime.so.1.32.0"))})
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_external_data_export_loads_and_generates_the_same(tmp_path):
    name = "tiny-gptneox"
    r = subprocess.run([sys.executable, "-m", "export.tiny.make_tiny", name, "--out-root", str(tmp_path)], cwd=REPO,
                       env={**os.environ, **ENV, "FLAMINGO_EXPORT_EXTERNAL_DATA": "1"}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    d = tmp_path / name
    m = yaml.safe_load((d / "model.yaml").read_text())
    for g in GRAPHS:
        comp = m["components"][g]
        x = comp["external_data"]
        assert x["file"] == comp["file"] + ".data"
        data = (d / x["file"]).read_bytes()
        assert len(data) > 0 and hashlib.sha256(data).hexdigest() == x["sha256"]
        # the graph itself no longer carries the weights
        assert (d / comp["file"]).stat().st_size < (FIXTURES / name / comp["file"]).stat().st_size
    assert "external_data" not in m["components"]["tokenizer"]
    assert _generate(d) == _generate(FIXTURES / name)
    # A changed data file is refused by its hash.
    p = d / m["components"]["lang_decoder"]["external_data"]["file"]
    p.write_bytes(p.read_bytes()[:-4] + b"\0\0\0\0")
    r = subprocess.run([str(EXE), "model", "inspect", str(d)], capture_output=True, text=True)
    assert r.returncode != 0 and "lang_decoder.onnx.data" in r.stderr, r.stderr
