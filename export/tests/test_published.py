"""The published LM families and the --preset path, against MosaicML's ORIGINAL model code (test oracle: the
otter-ai==0.0.0a8 wheel, fetched from PyPI by export/tiny/oracle.py into .cache/oracle/).

* mosaic_gpt (OF-3B): converted to native MPT + QK LayerNorm equals the original classes; loading it into
  native MPT without QK LayerNorm (what transformers alone would do) does not.
* remote-code MPT (OF-9B): native MptForCausalLM with auto_map stripped equals the remote code; settings native
  MPT would silently ignore are refused.
* the preset path from the files a user downloads, offline from a Hugging Face cache layout, and its bad inputs.
"""
import hashlib
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from export import families
from export.checkpoint import load_state_dict_file
from export.config import ExportError
from export.export_openflamingo import export_preset
from export.tiny import published

from .conftest import REPO

CONFIGS = REPO / "export" / "tiny" / "configs"


def spec(name):
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["published"]


def nothing_left(out):
    assert not out.exists(), f"{out} was created"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temporary dir left behind"


def _logits(lm, ids, mask):
    with torch.no_grad():
        return lm(input_ids=ids, attention_mask=mask.bool()).logits


def _batch():
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 2000, (2, 9), generator=g)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :3] = 0  # left padding
    return ids, mask


def _original(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), trust_remote_code=True, local_files_only=True).eval()


def _native(folder):
    from transformers import MptForCausalLM

    return MptForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()


@pytest.fixture(scope="module")
def mosaic_folder(tmp_path_factory):
    return published.make_lm_folder(spec("tiny-of3b-mpt1b"), tmp_path_factory.mktemp("of3b"))


@pytest.fixture(scope="module")
def mpt_folder(tmp_path_factory):
    return published.make_lm_folder(spec("tiny-of9b-mpt7b"), tmp_path_factory.mktemp("of9b"))


def test_mosaic_gpt_conversion_equals_the_original_code(mosaic_folder, tmp_path):
    ids, mask = _batch()
    ref = _logits(_original(mosaic_folder), ids, mask)
    fam = families.get("mosaic_gpt")
    conv = fam.prepare_lm_dir(mosaic_folder, tmp_path)
    assert not list(conv.glob("*.py")), "the remote code must not travel into the converted folder"
    lm = _native(conv)
    naive = _logits(lm, ids, mask)
    fam.after_build(lm, conv)
    got = _logits(lm, ids, mask)
    real = mask.bool()
    assert (got - ref)[real].abs().max() < 1e-5
    # the trap: transformers' native MPT accepts qk_ln in its config and never applies it
    assert (naive - ref)[real].abs().max() > 1e-2


def test_remote_mpt_loaded_natively_equals_the_remote_code(mpt_folder, tmp_path):
    ids, mask = _batch()
    ref = _logits(_original(mpt_folder), ids, mask)
    d = families.get("mpt").prepare_lm_dir(mpt_folder, tmp_path)
    assert "auto_map" not in json.loads((d / "config.json").read_text()) and not list(d.glob("*.py"))
    got = _logits(_native(d), ids, mask)
    assert (got - ref)[mask.bool()].abs().max() < 1e-5


@pytest.mark.parametrize("edit,msg", [
    (lambda c: c["attn_config"].update(qk_ln=True), r"attn_config.qk_ln: true.*silently give wrong logits"),
    (lambda c: c["attn_config"].update(clip_qkv=6), r"attn_config.clip_qkv: 6"),
    (lambda c: c.update(logit_scale=0.5), r"logit_scale: 0.5"),
    (lambda c: c["attn_config"].update(alibi=False), r"attn_config.alibi: false"),
])
def test_remote_mpt_refuses_what_native_mpt_ignores(mpt_folder, tmp_path, edit, msg):
    d = tmp_path / "lm"
    shutil.copytree(mpt_folder, d)
    c = json.loads((d / "config.json").read_text())
    edit(c)
    (d / "config.json").write_text(json.dumps(c))
    with pytest.raises(ExportError, match=msg):
        families.get("mpt").prepare_lm_dir(d, tmp_path / "w")


def test_mosaic_gpt_refusals(mosaic_folder, tmp_path):
    fam = families.get("mosaic_gpt")
    d = tmp_path / "lm"
    shutil.copytree(mosaic_folder, d)
    c = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**c, "n_heads": 8, "attn_clip_qkv": 4}))
    with pytest.raises(ExportError, match=r"cannot be converted: attn_clip_qkv: 4"):
        fam.prepare_lm_dir(d, tmp_path / "w1")
    (d / "config.json").write_text(json.dumps(c))
    sd = torch.load(d / "pytorch_model.bin")
    sd["transformer.blocks.0.attn.rotary.weight"] = torch.zeros(2)
    del sd["transformer.blocks.1.attn.q_ln.weight"]
    torch.save(sd, d / "pytorch_model.bin")
    with pytest.raises(ExportError, match=r"1 parameter\(s\) of an unknown mosaic_gpt layout: "
                                          r"transformer.blocks.0.attn.rotary.weight"):
        fam.prepare_lm_dir(d, tmp_path / "w2")
    del sd["transformer.blocks.0.attn.rotary.weight"]
    torch.save(sd, d / "pytorch_model.bin")
    with pytest.raises(ExportError, match=r"1 parameter\(s\) missing from the weights: "
                                          r"transformer.blocks.1.attn.q_ln.weight"):
        fam.prepare_lm_dir(d, tmp_path / "w3")
    # a mosaic_gpt folder given as lang.family mpt
    with pytest.raises(ExportError, match=r"model_type 'mosaic_gpt' does not match lang.family mpt.*use "
                                          r"lang.family mosaic_gpt"):
        families.get("mpt").prepare_lm_dir(mosaic_folder, tmp_path / "w4")


# ------------------------------------------------------------------------------------------------------
# the preset path, from the downloads
# ------------------------------------------------------------------------------------------------------

def _downloads(name, root: Path):
    pub = spec(name)
    every = {"tiny-of3b-mpt1b": 1, "tiny-of9b-mpt7b": 4}[name]
    lm = published.make_lm_folder(pub, root)
    cj, clip = published.make_clip(pub, root)
    orig = published.original_flamingo(pub, lm, pub["clip_model"], clip, every)
    sd = published.trainable_state_dict(orig.model)
    torch.save(sd, root / "checkpoint.pt")
    return {"checkpoint": root / "checkpoint.pt", "lm": lm, "clip": clip, "clip_model": str(cj), "sd": sd}


@pytest.fixture(scope="module")
def of3b(tmp_path_factory):
    return _downloads("tiny-of3b-mpt1b", tmp_path_factory.mktemp("dl3b"))


@pytest.fixture(scope="module")
def of9b(tmp_path_factory):
    return _downloads("tiny-of9b-mpt7b", tmp_path_factory.mktemp("dl9b"))


def _export(preset, files, out, **kw):
    args = {k: files[k] for k in ("checkpoint", "lm", "clip", "clip_model")}
    args.update(kw)
    return export_preset(preset, out, max_new_tokens=4, log=lambda s: None, **args)


def test_checkpoint_forms_load_the_same(of3b, tmp_path):
    sd = of3b["sd"]
    forms = {"raw": sd, "module": {f"module.{k}": v for k, v in sd.items()},
             "wrapped": {"model_state_dict": sd},
             "wrapped_module": {"model_state_dict": {f"module.{k}": v for k, v in sd.items()}}}
    for name, obj in forms.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        got = load_state_dict_file(tmp_path / f"{name}.pt")
        assert sorted(got) == sorted(sd), name
    mixed = dict(forms["module"])
    mixed["perceiver.latents"] = sd["perceiver.latents"]
    torch.save(mixed, tmp_path / "mixed.pt")
    with pytest.raises(ExportError, match=r"mixed.pt: \d+ key\(s\) carry the `module.` prefix and 1 do not"):
        load_state_dict_file(tmp_path / "mixed.pt")
    torch.save({"model_state_dict": {}}, tmp_path / "empty.pt")
    with pytest.raises(ExportError, match=r"empty.pt holds no parameters"):
        load_state_dict_file(tmp_path / "empty.pt")


def test_checkpoint_of_another_preset(of3b, of9b, tmp_path):
    out = tmp_path / "out"
    files = dict(of3b, checkpoint=of9b["checkpoint"])
    with pytest.raises(ExportError, match=r"checkpoint\.pt does not fit preset OpenFlamingo-3B-vitl-mpt1b: gated "
                                          r"cross-attention every 4 layer\(s\).*this looks like "
                                          r"OpenFlamingo-9B-vitl-mpt7b: use --preset OpenFlamingo-9B-vitl-mpt7b"):
        _export("OpenFlamingo-3B-vitl-mpt1b", files, out)
    nothing_left(out)


def test_truncated_checkpoint(of3b, tmp_path):
    data = of3b["checkpoint"].read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"checkpoint .*checkpoint.pt cannot be read.*truncated.*download it again"):
        _export("OpenFlamingo-3B-vitl-mpt1b", dict(of3b, checkpoint=tmp_path / "checkpoint.pt"), out)
    nothing_left(out)


def test_missing_lm_file(of3b, tmp_path):
    lm = tmp_path / "mpt-1b-redpajama-200b"
    shutil.copytree(of3b["lm"], lm)
    (lm / "pytorch_model.bin").unlink()
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"LM folder .*mpt-1b-redpajama-200b has no weights.*incomplete"):
        _export("OpenFlamingo-3B-vitl-mpt1b", dict(of3b, lm=lm), out)
    nothing_left(out)


def test_wrong_open_clip_weights(of3b, of9b, tmp_path):
    out = tmp_path / "out"
    # the 9B fixture's 64-px tower given for the 3B fixture's 32-px model config
    with pytest.raises(ExportError, match=r"open_clip weights .*tiny-vit-b16-64.pt are not 'tiny-vit-b8-32' "
                                          r"weights: .*shape mismatch.*--clip"):
        _export("OpenFlamingo-3B-vitl-mpt1b", dict(of3b, clip=of9b["clip"]), out)
    nothing_left(out)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ExportError, match=r"open_clip weights .*junk.pt cannot be read.*truncated"):
        _export("OpenFlamingo-3B-vitl-mpt1b", dict(of3b, clip=tmp_path / "junk.pt"), out)
    nothing_left(out)


def test_unknown_key_layout(of3b, tmp_path):
    sd = {k.replace("lang_encoder.transformer.blocks.", "lang_encoder.decoder.h."): v for k, v in of3b["sd"].items()}
    sd["adapter.lora_A.weight"] = torch.zeros(2, 2)
    torch.save(sd, tmp_path / "checkpoint.pt")
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"1 key\(s\) of no OpenFlamingo layout \(adapter.lora_A.weight\); its "
                                          r"decoder layers are lang_encoder.decoder.h.N \(unknown\).*matches no "
                                          r"published preset"):
        _export("OpenFlamingo-3B-vitl-mpt1b", dict(of3b, checkpoint=tmp_path / "checkpoint.pt"), out)
    nothing_left(out)


def test_wrong_cross_attn_interval_says_what_the_keys_imply(tmp_path):
    """--config path: a wrong cross_attn_every_n_layers is not '22 missing keys'."""
    from export.export_openflamingo import export_model
    from export.tiny.make_tiny import build_tiny
    from export.build import canonical_state_dict

    cfg, built = build_tiny("tiny-mpt", tmp_path / "b")
    torch.save(canonical_state_dict(built.model), tmp_path / "ck.pt")
    raw = yaml.safe_load((CONFIGS / "tiny-mpt.yaml").read_text())
    raw["cross_attn_every_n_layers"] = 3
    raw["tokenizer"]["path"] = str(REPO / "export" / "tiny" / "base_tokenizer")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ExportError, match=r"gated cross-attention before layers 0, 1, 2, i.e. "
                                          r"cross_attn_every_n_layers = 1, but .*c.yaml.* says 3; give 1 or leave it out"):
        export_model(tmp_path / "c.yaml", tmp_path / "ck.pt", tmp_path / "out")
    del raw["cross_attn_every_n_layers"]  # inferred
    raw["lang"]["family"] = "MPT"  # names are normalised
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    rep = export_model(tmp_path / "c.yaml", tmp_path / "ck.pt", tmp_path / "out", max_new_tokens=3, log=lambda s: None)
    assert yaml.safe_load((tmp_path / "out" / "model.yaml").read_text())["lang"]["cross_attn_every_n_layers"] == 1
    assert rep["parity"]["greedy_tokens_identical"]


def _fake_hf_cache(root: Path, repo: str, files: dict) -> Path:
    """A Hugging Face hub cache entry (models--ORG--NAME/refs/main, snapshots/REV/...) holding `files`."""
    rev = "0123456789abcdef0123456789abcdef01234567"
    base = root / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(rev)
    snap = base / "snapshots" / rev
    snap.mkdir(parents=True)
    for name, src in files.items():
        shutil.copyfile(src, snap / name)
    return snap


def test_offline_preset_export_from_the_hugging_face_cache_layout(of3b, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub"
    _fake_hf_cache(cache, "openflamingo/OpenFlamingo-3B-vitl-mpt1b", {"checkpoint.pt": of3b["checkpoint"]})
    lm_snap = _fake_hf_cache(cache, "anas-awadalla/mpt-1b-redpajama-200b",
                             {p.name: p for p in Path(of3b["lm"]).iterdir() if p.is_file()})
    out = tmp_path / "out"
    rep = export_preset("OpenFlamingo-3B-vitl-mpt1b", out, clip=of3b["clip"], clip_model=of3b["clip_model"],
                        cache_dir=cache, max_new_tokens=4, log=lambda s: None)
    assert rep["parity"]["beam3_tokens_identical"]
    m = yaml.safe_load((out / "model.yaml").read_text())
    assert m["lang"]["family"] == "mosaic_gpt" and m["name"] == "OpenFlamingo-3B-vitl-mpt1b"
    # the preset is recorded (reports match published rows by it with the checkpoint's hash, never by name)
    assert m["source"]["preset"] == "OpenFlamingo-3B-vitl-mpt1b"
    assert m["source"]["checkpoint_sha256"] == hashlib.sha256(Path(of3b["checkpoint"]).read_bytes()).hexdigest()
    assert lm_snap.is_dir()
    # what is not cached is an error that says how to get it (no network use offline)
    with pytest.raises(ExportError, match=r"the LM folder anas-awadalla/mpt-7b is not in the Hugging Face cache.*"
                                          r"--lm DIR, or --download"):
        export_preset("OpenFlamingo-9B-vitl-mpt7b", tmp_path / "o2", checkpoint=of3b["checkpoint"],
                      clip=of3b["clip"], cache_dir=cache, log=lambda s: None)
    with pytest.raises(ExportError, match=r"open_clip weights ViT-L-14/openai are not at .*ViT-L-14.pt; pass "
                                          r"--clip FILE, or --download"):
        export_preset("OpenFlamingo-3B-vitl-mpt1b", tmp_path / "o3", cache_dir=cache, log=lambda s: None)
    nothing_left(tmp_path / "o2")
    nothing_left(tmp_path / "o3")


def test_cli_preset_from_any_cwd_is_quiet(of9b, tmp_path):
    script = REPO / "export" / "export_openflamingo.py"
    r = subprocess.run([sys.executable, str(script), "--list-presets"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "OpenFlamingo-3B-vitl-mpt1b" in r.stdout and "OpenFlamingo-9B-vitl-mpt7b" in r.stdout
    env = {**os.environ, "FLAMINGO_EXPORT_THREADS": "1"}
    args = [sys.executable, str(script), "--preset", "OpenFlamingo-9B-vitl-mpt7b", "--checkpoint",
            str(of9b["checkpoint"]), "--lm", str(of9b["lm"]), "--clip", str(of9b["clip"]), "--clip-model",
            of9b["clip_model"], "--out", "model", "--max-new-tokens", "4"]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["parity"]["greedy_tokens_identical"]
    assert (tmp_path / "model" / "model.yaml").is_file()
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert all(x.startswith("[export]") for x in lines), lines  # no warning pages
    assert any("parity ok" in x for x in lines) and any("auto_map stripped" in x for x in lines)
    # errors still reach the user, with the exit code
    r = subprocess.run(args[:-4] + ["--out", "model", "--lm", str(tmp_path / "nope")], cwd=tmp_path,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "export_openflamingo: error: --lm" in r.stderr and "nope does not exist" in r.stderr


def _openai_style_archive(path: Path, clip_name: str):
    """A TorchScript archive holding an open_clip CLIP's parameters under OpenAI's names, as the 'openai'
    ViT-L-14.pt file does (torch.jit archive, not a state dict)."""
    import open_clip
    from torch import nn

    class Node(nn.Module):
        def forward(self, x):
            return x

    torch.manual_seed(5)
    sd = open_clip.create_model(clip_name).state_dict()
    root = Node()
    for name, t in sd.items():
        *mods, leaf = name.split(".")
        node = root
        for m in mods:
            if not hasattr(node, m):
                node.add_module(m, Node())
            node = getattr(node, m)
        node.register_parameter(leaf, nn.Parameter(t.clone(), requires_grad=False))
    torch.jit.save(torch.jit.script(root), str(path))


def test_openai_torchscript_clip_file(of3b, tmp_path):
    """The 'openai' weights are a TorchScript archive: loaded with open_clip's OpenAI loader (QuickGELU), never
    through torch.load as a state dict; a tower of other dimensions is refused."""
    import open_clip

    from export.build import _openai_visual, is_torchscript

    conf = {"embed_dim": 32, "quick_gelu": True,
            "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "head_width": 64, "layers": 2},
            "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 64, "heads": 1, "layers": 1}}
    cj = tmp_path / "tiny-openai-32.json"
    cj.write_text(json.dumps(conf))
    open_clip.add_model_config(str(cj))
    arch = tmp_path / "tiny-openai-32.pt"
    _openai_style_archive(arch, "tiny-openai-32")
    assert is_torchscript(arch) and not is_torchscript(of3b["clip"])
    visual = _openai_visual(arch, "tiny-openai-32")
    ref = open_clip.load_openai_model(str(arch), precision="fp32", device="cpu").visual
    assert type(ref.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    ref.output_tokens = True
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(visual(x)[1], ref(x)[1])
    other = dict(conf, vision_cfg=dict(conf["vision_cfg"], image_size=64, patch_size=16))
    (tmp_path / "tiny-openai-64.json").write_text(json.dumps(other))
    open_clip.add_model_config(str(tmp_path / "tiny-openai-64.json"))
    with pytest.raises(ExportError, match=r"tiny-openai-32.pt are not tiny-openai-64 weights: patch_size 8 "
                                          r"\(expected 16\), image_size 32 \(expected 64\)"):
        _openai_visual(arch, "tiny-openai-64")


def test_gpt_neox_checkpoint_given_to_the_3b_preset_says_4b(of3b, gptneox_checkpoint, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"does not fit preset OpenFlamingo-3B-vitl-mpt1b: its decoder layers are "
                                          r"lang_encoder.gpt_neox.layers.N \(GPT-NeoX\).*this looks like "
                                          r"OpenFlamingo-4B-vitl-rpj3b or OpenFlamingo-4B-vitl-rpj3b-langinstruct: "
                                          r"use --preset OpenFlamingo-4B-vitl-rpj3b"):
        _export("OpenFlamingo-3B-vitl-mpt1b", dict(of3b, checkpoint=gptneox_checkpoint[0]), out)
    nothing_left(out)


def test_download_goes_through_huggingface_hub_and_open_clip(tmp_path, monkeypatch):
    """--download: the same resolution, allowed to fetch (no network here: the fetchers are stand-ins that
    record how they were called)."""
    import huggingface_hub
    from open_clip import pretrained as ocp

    from export import presets

    calls = []
    (tmp_path / "ck.pt").write_bytes(b"x")
    (tmp_path / "lm").mkdir()
    (tmp_path / "ViT-L-14.pt").write_bytes(b"x")

    def hf_file(repo, filename, cache_dir=None, local_files_only=False):
        calls.append(("file", repo, filename, local_files_only))
        return str(tmp_path / "ck.pt")

    def hf_snapshot(repo, cache_dir=None, local_files_only=False):
        calls.append(("snapshot", repo, local_files_only))
        return str(tmp_path / "lm")

    def clip_dl(url, cache_dir=None):
        calls.append(("clip", url.rsplit("/", 1)[-1]))
        return str(tmp_path / "ViT-L-14.pt")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_file)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hf_snapshot)
    monkeypatch.setattr(ocp, "download_pretrained_from_url", clip_dl)
    p = presets.get("OpenFlamingo-9B-vitl-mpt7b")
    got = presets.resolve_files(p, download=True, cache_dir=tmp_path / "hub")
    assert got == {"checkpoint": tmp_path / "ck.pt", "lm": tmp_path / "lm", "clip": tmp_path / "ViT-L-14.pt"}
    assert calls == [("file", "openflamingo/OpenFlamingo-9B-vitl-mpt7b", "checkpoint.pt", False),
                     ("snapshot", "anas-awadalla/mpt-7b", False), ("clip", "ViT-L-14.pt")]
    calls.clear()
    with pytest.raises(ExportError, match=r"open_clip weights ViT-L-14/openai are not at"):
        presets.resolve_files(p, cache_dir=tmp_path / "hub")  # offline: cache only
    assert calls == [("file", "openflamingo/OpenFlamingo-9B-vitl-mpt7b", "checkpoint.pt", True),
                     ("snapshot", "anas-awadalla/mpt-7b", True)]


def test_lm_folder_weights_that_transformers_would_not_load(of9b, tmp_path):
    """from_pretrained only LOGS missing weights and initialises them at random: here that is an error."""
    lm = tmp_path / "mpt-7b"
    shutil.copytree(of9b["lm"], lm)
    sd = torch.load(lm / "pytorch_model.bin")
    sd["transformer.blocks.0.norm_one.weight"] = sd.pop("transformer.blocks.0.norm_1.weight")
    torch.save(sd, lm / "pytorch_model.bin")
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"LM folder .*mpt-7b: 1 weight\(s\) the model needs are not in it "
                                          r"\(transformer.blocks.0.norm_1.weight\).*at random; 1 weight\(s\) in it "
                                          r"belong to no parameter \(transformer.blocks.0.norm_one.weight\)"):
        _export("OpenFlamingo-9B-vitl-mpt7b", dict(of9b, lm=lm), out)
    nothing_left(out)
