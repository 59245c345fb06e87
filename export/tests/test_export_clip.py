"""export_clip: an open_clip image encoder for RICES (`encoder: clip_onnx`), checked against open_clip."""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from .conftest import REPO

IMAGES = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from export.tiny.make_tiny_clip import write_weights

    return write_weights(tmp_path_factory.mktemp("clipw"))


def _ort(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(["image_embedding"], {"pixels": x})[0]


def _open_clip_reference(model, transform):
    import torch
    from PIL import Image

    x = torch.stack([transform(Image.open(REPO / "tests" / "fixtures" / "images" / n)) for n in IMAGES])
    with torch.no_grad():
        return x.numpy(), model.encode_image(x).numpy()


def _no_leftovers(out):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_openai_torchscript_archive(weights, tmp_path):
    """The OpenAI layout (TorchScript): exported == open_clip.load_openai_model's encode_image, QuickGELU."""
    import open_clip

    from export.export_clip import export_clip

    out = tmp_path / "clip"
    rep = export_clip(str(weights["config"]), weights["torchscript"], out, log=lambda s: None)
    assert rep["parity"]["max_abs_diff"] <= 1e-4 and rep["weights_format"] == "torchscript" and rep["quick_gelu"]
    m = yaml.safe_load((out / "clip.yaml").read_text())
    assert set(m) == {"clip_format_version", "exporter_version", "opset", "name", "source", "component",
                      "preprocess", "embed_dim"}
    assert m["clip_format_version"] == 1 and m["embed_dim"] == 32 and m["name"] == "tiny-clip"
    assert m["source"]["quick_gelu"] is True and m["source"]["weights_format"] == "torchscript"
    import hashlib

    assert hashlib.sha256((out / m["component"]["file"]).read_bytes()).hexdigest() == m["component"]["sha256"]
    assert hashlib.sha256(weights["torchscript"].read_bytes()).hexdigest() == m["source"]["weights_sha256"]
    ref = open_clip.load_openai_model(str(weights["torchscript"]), precision="fp32", device="cpu")
    transform = open_clip.image_transform(ref.visual.image_size, is_train=False)
    assert m["preprocess"] == {"image_size": 64, "resize": "shortest_side", "interpolation": "bicubic",
                               "crop": "center", "mean": list(open_clip.OPENAI_DATASET_MEAN),
                               "std": list(open_clip.OPENAI_DATASET_STD)}
    x, want = _open_clip_reference(ref, transform)
    assert np.abs(_ort(out / "clip_image_encoder.onnx", x) - want).max() <= 1e-4


def test_state_dict_and_quick_gelu(weights, tmp_path):
    """A plain state dict goes through open_clip's own loader; the activation comes from the config or the flag."""
    from export.export_clip import export_clip

    ts = tmp_path / "ts"
    export_clip(str(weights["config"]), weights["torchscript"], ts, log=lambda s: None)
    on = tmp_path / "on"
    rep = export_clip(str(weights["config"]), weights["state_dict"], on, quick_gelu=True, log=lambda s: None)
    assert rep["weights_format"] == "state_dict" and rep["quick_gelu"] is True
    off = tmp_path / "off"
    rep = export_clip(str(weights["config"]), weights["state_dict"], off, log=lambda s: None)  # config: GELU
    assert rep["quick_gelu"] is False
    assert yaml.safe_load((off / "clip.yaml").read_text())["source"]["quick_gelu"] is False
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    a, b, c = (_ort(d / "clip_image_encoder.onnx", x) for d in (ts, on, off))
    assert np.abs(a - b).max() <= 1e-5  # same weights, same activation: same encoder
    assert np.abs(a - c).max() > 1e-3   # GELU instead of QuickGELU is another encoder


def test_open_clip_config_json_with_preprocess_cfg(weights, tmp_path):
    """The hub layout {model_cfg, preprocess_cfg}: its mean/std are what open_clip's transform uses."""
    from export.export_clip import export_clip

    cfg = json.loads(weights["config"].read_text())
    hub = tmp_path / "open_clip_config.json"
    hub.write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 1.0]}}))
    out = tmp_path / "hub"
    export_clip(str(hub), weights["state_dict"], out, log=lambda s: None)
    pre = yaml.safe_load((out / "clip.yaml").read_text())["preprocess"]
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["std"] == [0.25, 0.5, 1.0]


def test_bad_inputs_name_the_problem_and_write_nothing(weights, tmp_path, monkeypatch):
    from export import export_clip as ec
    from export.config import ExportError

    out = tmp_path / "out"
    with pytest.raises(ExportError, match="neither an open_clip model name.*did you mean.*ViT-L-14"):
        ec.export_clip("ViT-L-41", weights["state_dict"], out, log=lambda s: None)
    # weights of another architecture: the shapes are named
    other = tmp_path / "wide.json"
    cfg = json.loads(weights["config"].read_text())
    cfg["vision_cfg"]["width"] = 128
    other.write_text(json.dumps(cfg))
    for f in ("state_dict", "torchscript"):
        with pytest.raises(ExportError, match=r"does not hold weights of --model wide: .*shape mismatches: "
                                              r"visual\.\S+ \[64.*\(config: \[128"):
            ec.export_clip(str(other), weights[f], out, log=lambda s: None)
    junk = tmp_path / "junk.pt"
    junk.write_text("not weights")
    with pytest.raises(ExportError, match="junk.pt: cannot be read as a PyTorch state dict"):
        ec.export_clip(str(weights["config"]), junk, out, log=lambda s: None)
    with pytest.raises(ExportError, match="weights file not found"):
        ec.export_clip(str(weights["config"]), tmp_path / "nope.pt", out, log=lambda s: None)
    with pytest.raises(ExportError, match="TorchScript archive.*QuickGELU"):
        ec.export_clip(str(weights["config"]), weights["torchscript"], out, quick_gelu=False, log=lambda s: None)
    _no_leftovers(out)
    # a parity failure writes nothing
    real = ec.onnx_embed
    monkeypatch.setattr(ec, "onnx_embed", lambda p, x: real(p, x) + 1e-3)
    with pytest.raises(ExportError, match="parity failed.*nothing was written"):
        ec.export_clip(str(weights["config"]), weights["state_dict"], out, log=lambda s: None)
    _no_leftovers(out)
    monkeypatch.setattr(ec, "onnx_embed", real)
    # an output directory with other files is refused unless --overwrite
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        ec.export_clip(str(weights["config"]), weights["state_dict"], out, log=lambda s: None)
    assert (out / "keep.txt").exists()


def test_cli(weights, tmp_path):
    cmd = [sys.executable, "-m", "export.export_clip", "--model", str(weights["config"]), "--pretrained",
           str(weights["torchscript"]), "--out", str(tmp_path / "cli")]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["parity"]["max_abs_diff"] <= 1e-4
    r = subprocess.run(cmd[:5] + ["--pretrained", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "cli2")], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "export_clip: error:" in r.stderr and "missing.pt" in r.stderr
    assert "Traceback" not in r.stderr


def test_committed_fixture_is_current(weights):
    """tests/fixtures/clip/tiny-clip is the export of these weights (make_fixtures.sh rebuilds it)."""
    import hashlib

    import open_clip

    d = REPO / "tests" / "fixtures" / "clip" / "tiny-clip"
    m = yaml.safe_load((d / "clip.yaml").read_text())
    assert hashlib.sha256((d / m["component"]["file"]).read_bytes()).hexdigest() == m["component"]["sha256"]
    g = json.loads((d / "golden.json").read_text())
    ref = open_clip.load_openai_model(str(weights["torchscript"]), precision="fp32", device="cpu")
    x, want = _open_clip_reference(ref, open_clip.image_transform(ref.visual.image_size, is_train=False))
    assert g["images"] == IMAGES and np.abs(np.array(g["image_embedding"]) - want).max() <= 1e-6
    assert np.abs(_ort(d / m["component"]["file"], x) - want).max() <= 1e-4
