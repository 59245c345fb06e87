"""Bad inputs give a clear error (naming the file/key and the fix) and leave no half-written model behind."""
import copy
import subprocess
import sys

import pytest
import torch
import yaml

from export.config import ExportError, load_config, normalise_config
from export.export_openflamingo import export_model

from .conftest import REPO

CFG = REPO / "export" / "tiny" / "configs" / "tiny-gptneox.yaml"


def cfg_with(tmp_path, edit):
    raw = yaml.safe_load(CFG.read_text())
    edit(raw)
    raw["tokenizer"]["path"] = str(REPO / "export" / "tiny" / "base_tokenizer")
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def nothing_left(out):
    assert not out.exists(), f"{out} was created"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temporary dir left behind"


def test_unknown_lm_family(tmp_path, gptneox_checkpoint):
    def edit(c):
        c["lang"]["family"] = "opt"
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"unknown LM family `lang.family: opt`.*supported: gpt_neox, .*mpt"):
        export_model(cfg_with(tmp_path, edit), gptneox_checkpoint[0], out)
    nothing_left(out)


def test_family_config_mismatch(tmp_path):
    def edit(c):
        c["lang"]["family"] = "mpt"
    with pytest.raises(ExportError, match=r"lang.config.model_type.*'gpt_neox'.*needs 'mpt'"):
        load_config(cfg_with(tmp_path, edit))


def test_unknown_config_key(tmp_path):
    def edit(c):
        c["lang"]["n_layer"] = 3
    with pytest.raises(ExportError, match=r"unknown key `lang.n_layer`"):
        load_config(cfg_with(tmp_path, edit))


def test_missing_checkpoint_key(tmp_path, gptneox_checkpoint):
    _, sd = gptneox_checkpoint
    sd = dict(sd)
    del sd["perceiver.latents"]
    ck = tmp_path / "ck.pt"
    torch.save(sd, ck)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"ck.pt: 1 missing key\(s\): perceiver.latents.*pretrained"):
        export_model(CFG, ck, out)
    nothing_left(out)


def test_unexpected_checkpoint_key(tmp_path, gptneox_checkpoint):
    _, sd = gptneox_checkpoint
    sd = dict(sd)
    sd["lang_encoder.gpt_neox.layers.9.decoder_layer.mlp.dense_h_to_4h.weight"] = torch.zeros(1)
    ck = tmp_path / "ck.pt"
    torch.save(sd, ck)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"1 unexpected key\(s\): lang_encoder.gpt_neox.layers.9.*check lang.family"):
        export_model(CFG, ck, out)
    nothing_left(out)


def test_checkpoint_shape_mismatch(tmp_path, gptneox_checkpoint):
    _, sd = gptneox_checkpoint
    sd = dict(sd)
    sd["lang_encoder.gpt_neox.embed_in.weight"] = torch.zeros(2048, 64)
    ck = tmp_path / "ck.pt"
    torch.save(sd, ck)
    with pytest.raises(ExportError, match=r"embed_in.weight has shape \(2048, 64\).*expects \(2051, 64\).*tokenizer"):
        export_model(CFG, ck, tmp_path / "out")


def test_tokenizer_without_special_tokens(tmp_path, gptneox_checkpoint):
    def edit(c):
        c["tokenizer"]["add_special_tokens"] = False  # the base tokenizer lacks them
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"has no special token '<\|endofchunk\|>'.*add_special_tokens: true"):
        export_model(cfg_with(tmp_path, edit), gptneox_checkpoint[0], out)
    nothing_left(out)


@pytest.fixture
def open_clip_2_23(monkeypatch):
    """Simulate open_clip >= 2.23, whose VisionTransformer applies ln_post to the patch tokens too."""
    from open_clip.transformer import VisionTransformer

    from export.wrappers import visual_tokens_without_ln_post

    def forward(self, x):
        pooled, tokens = visual_tokens_without_ln_post(self, x)
        return pooled, self.ln_post(tokens)
    monkeypatch.setattr(VisionTransformer, "forward", forward)


def test_open_clip_ln_post_change_without_compensation(tmp_path, gptneox_checkpoint, open_clip_2_23):
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"applies ln_post to the patch tokens.*open_clip_torch==2.20.0.*"
                                          r"compensate_ln_post: true"):
        export_model(CFG, gptneox_checkpoint[0], out)
    nothing_left(out)


def test_open_clip_ln_post_change_with_compensation(tmp_path, gptneox_checkpoint, open_clip_2_23):
    import numpy as np

    from export.build import build_model
    from export.ortrun import OrtModel

    def edit(c):
        c["vision"]["compensate_ln_post"] = True
    out = tmp_path / "out"
    rep = export_model(cfg_with(tmp_path, edit), gptneox_checkpoint[0], out, max_new_tokens=4)
    assert rep["parity"]["max_abs_diff"] <= 1e-4
    m = yaml.safe_load((out / "model.yaml").read_text())
    assert m["source"]["patch_tokens_ln_post"] is False
    # the exported tokens are the pre-ln_post ones (what open_clip 2.20 / OpenFlamingo training saw)
    built = build_model(load_config(CFG), tmp_path / "w")
    built.model.load_state_dict(gptneox_checkpoint[1], strict=False)
    from export.wrappers import visual_tokens_without_ln_post
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, want = visual_tokens_without_ln_post(built.model.vision_encoder, x)
    got, _ = OrtModel(out).encode_images(x.numpy())
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_out_dir_with_a_different_model(tmp_path, gptneox_checkpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.yaml").write_text("name: something-else\nsource: {checkpoint_sha256: abc}\n")
    (out / "keep.txt").write_text("x")
    with pytest.raises(ExportError, match=r"already holds a different model.*something-else.*--overwrite"):
        export_model(CFG, gptneox_checkpoint[0], out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "model.yaml"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_out_dir_not_a_model(tmp_path, gptneox_checkpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("x")
    with pytest.raises(ExportError, match=r"not empty and holds no model.yaml"):
        export_model(CFG, gptneox_checkpoint[0], out)


def test_parity_failure_is_loud_and_leaves_nothing(tmp_path, gptneox_checkpoint, monkeypatch):
    import export.wrappers as w

    # a wrong graph: tokens attend to media index+1 (clamped), i.e. the wrong image
    real = w.media_locations_from_index
    monkeypatch.setattr(w, "media_locations_from_index",
                        lambda mi: real(torch.clamp(mi + (mi > 0).long(), max=3)))
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"parity check failed.*prefill_logits="):
        export_model(CFG, gptneox_checkpoint[0], out, max_new_tokens=4)
    nothing_left(out)


def test_cli_reports_error_and_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "export.export_openflamingo", "--config", str(CFG), "--checkpoint",
                        str(tmp_path / "nope.pt"), "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert "export_openflamingo: error: checkpoint" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "out").exists()


def test_family_spelling_and_clip_config_file(tmp_path):
    import json

    raw = yaml.safe_load(CFG.read_text())
    (tmp_path / "clip.json").write_text(json.dumps(raw["vision"]["clip_config"]))

    def edit(c):
        c["lang"]["family"] = "gpt-neox"
        c["vision"]["clip_config"] = str(tmp_path / "clip.json")
    cfg = load_config(cfg_with(tmp_path, edit))
    assert cfg["lang"]["family"] == "gpt_neox" and cfg["vision"]["clip_config"] == raw["vision"]["clip_config"]

    def missing(c):
        c["vision"]["clip_config"] = "nope.json"
    with pytest.raises(ExportError, match=r"`vision.clip_config` file .*nope.json does not exist"):
        load_config(cfg_with(tmp_path, missing))
