"""The trained demo model (export/demo_model/): CI never retrains. These tests check that the committed data,
tokenizer, weights and model directory belong together, and run a few training steps as a smoke test."""
import hashlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "export" / "demo_model"
MODEL = REPO / "models" / "shapes-flamingo"


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_weights_are_the_exported_model():
    manifest = yaml.safe_load((MODEL / "model.yaml").read_text())
    assert manifest["name"] == "shapes-flamingo"
    assert manifest["source"]["checkpoint_sha256"] == sha(DEMO / "weights.safetensors"), (
        "models/shapes-flamingo was not exported from export/demo_model/weights.safetensors: run "
        "export/.venv/bin/python -m export.demo_model.export_demo")
    # every graph / tokenizer file matches the hash the manifest gives it (the runtime re-checks on load)
    text = (MODEL / "model.yaml").read_text()
    for f in sorted(MODEL.iterdir()):
        if f.name != "model.yaml":
            assert sha(f) in text, f"{f} does not match its hash in {MODEL / 'model.yaml'}"


def test_shapes_data_regenerates_byte_identically(tmp_path):
    from export.demo_model.shapes import write_benchmark_data

    write_benchmark_data(tmp_path / "shapes")
    assert tree(tmp_path / "shapes") == tree(REPO / "data" / "shapes")


def test_tokenizer_regenerates_byte_identically(tmp_path):
    from export.demo_model.tokenizer import train

    train(tmp_path / "tok")
    assert tree(tmp_path / "tok") == tree(DEMO / "tokenizer")


def test_training_smoke_is_deterministic(tmp_path):
    """A few steps of the real training loop (tiny batches): a finite loss, the same seed gives a
    byte-identical weights file, another seed does not, and the tensors are those of the committed weights."""
    import math

    from export.demo_model.train_tiny import train

    kw = dict(steps=3, batch_size=2, max_images=3, log=lambda s: None)
    a = train(out=tmp_path / "a.safetensors", **kw)
    b = train(out=tmp_path / "b.safetensors", **kw)
    c = train(out=tmp_path / "c.safetensors", seed=1, **kw)
    assert math.isfinite(a["final_loss_ema"])
    assert a["sha256"] == b["sha256"] == sha(tmp_path / "a.safetensors")
    assert c["sha256"] != a["sha256"]
    from safetensors.torch import load_file

    sd = load_file(str(tmp_path / "a.safetensors"))
    ref = load_file(str(DEMO / "weights.safetensors"))
    assert sorted(sd) == sorted(ref) and all(sd[k].shape == ref[k].shape for k in sd)
