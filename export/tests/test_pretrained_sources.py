"""The path real checkpoints (OF-3B/4B/9B) take: base LM weights from a Hugging Face directory, CLIP weights
from open_clip's `pretrained` (a local file here), and an OpenFlamingo checkpoint holding only the trained
parameters (perceiver, gated cross-attention, embeddings)."""
import json

import pytest
import torch
import yaml

from export.build import build_model, canonical_state_dict
from export.config import ExportError, load_config
from export.export_openflamingo import export_model

from .conftest import REPO

CFG = REPO / "export" / "tiny" / "configs" / "tiny-gptneox.yaml"


@pytest.fixture(scope="module")
def real_style(tmp_path_factory):
    import open_clip
    from open_flamingo.src.helpers import GatedCrossAttentionBlock
    from transformers import AutoConfig, AutoModelForCausalLM

    d = tmp_path_factory.mktemp("real")
    raw = yaml.safe_load(CFG.read_text())
    torch.manual_seed(123)
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(**raw["lang"]["config"]))
    lm.save_pretrained(str(d / "lm"))
    (d / "clip").mkdir()
    (d / "clip" / "tiny-vit-b16-64.json").write_text(json.dumps(raw["vision"]["clip_config"]))
    open_clip.add_model_config(str(d / "clip" / "tiny-vit-b16-64.json"))
    clip = open_clip.create_model("tiny-vit-b16-64")
    torch.save(clip.state_dict(), d / "clip.pt")
    raw["lang"] = {"family": "gpt_neox", "path": str(d / "lm")}
    raw["vision"]["pretrained"] = str(d / "clip.pt")
    raw["tokenizer"]["path"] = str(REPO / "export" / "tiny" / "base_tokenizer")
    raw["name"] = "tiny-real-style"
    cfg_path = d / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    # an OpenFlamingo-style checkpoint: trained parameters only
    built = build_model(load_config(cfg_path), d / "w")
    with torch.no_grad():
        for m in built.model.modules():
            if isinstance(m, GatedCrossAttentionBlock):
                m.attn_gate.fill_(0.5)
                m.ff_gate.fill_(0.5)
    sd = {k: v for k, v in canonical_state_dict(built.model).items()
          if k.startswith("perceiver.") or "gated_cross_attn_layer" in k or "embed_in" in k or "embed_out" in k}
    assert not any(k.startswith("vision_encoder.") for k in sd)
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in sd.items()}}, d / "checkpoint.pt")
    return cfg_path, d / "checkpoint.pt", sd, built


def test_export_with_pretrained_sources(real_style, tmp_path):
    cfg_path, ckpt, sd, built = real_style
    out = tmp_path / "model"
    rep = export_model(cfg_path, ckpt, out, max_new_tokens=6)
    assert rep["parity"]["greedy_tokens_identical"] and rep["parity"]["beam3_tokens_identical"]
    m = yaml.safe_load((out / "model.yaml").read_text())
    import hashlib
    assert m["source"]["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    # the exported vision tower carries the pretrained CLIP weights, not a fresh random init
    from export.ortrun import OrtModel
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, _ = built.model.vision_encoder(x)[1], None
    got, _ = OrtModel(out).encode_images(x.numpy())
    assert abs(got - want.numpy()).max() < 1e-4


def test_gated_cross_attention_keys_never_come_from_pretrained(real_style, tmp_path):
    cfg_path, _, sd, _ = real_style
    sd = {k: v for k, v in sd.items() if "gated_cross_attn_layer.ff_gate" not in k}
    torch.save(sd, tmp_path / "ck.pt")
    with pytest.raises(ExportError, match=r"missing key\(s\): lang_encoder.gpt_neox.layers.1.gated_cross_attn_layer"
                                          r".ff_gate"):
        export_model(cfg_path, tmp_path / "ck.pt", tmp_path / "out")


def test_wrong_family_for_lang_path(real_style, tmp_path):
    cfg_path, ckpt, _, _ = real_style
    raw = yaml.safe_load(cfg_path.read_text())
    raw["lang"]["family"] = "mpt"
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    # the checkpoint's keys already say GPT-NeoX
    with pytest.raises(ExportError, match=r"keys are of a GPT-NeoX model.*lang.family mpt.*--preset"):
        export_model(p, ckpt, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # and the LM folder's config.json says so too
    from export import families
    lm_dir = yaml.safe_load(cfg_path.read_text())["lang"]["path"]
    with pytest.raises(ExportError, match=r"config.json: model_type 'gpt_neox' does not match lang.family mpt"):
        families.get("mpt").prepare_lm_dir(lm_dir, tmp_path / "w")
