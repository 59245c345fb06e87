"""The committed fixture models follow export/CONTRACT.md exactly."""
import hashlib
import json

import numpy as np
import onnx
import pytest
import yaml

from .conftest import FIXTURES, TINY

MANIFEST_KEYS = {
    "contract_version": None, "exporter_version": None, "opset": None, "name": None,
    "source": {"checkpoint_sha256", "open_flamingo_version", "open_clip_version", "patch_tokens_ln_post"},
    "components": {"vision_encoder", "perceiver", "lang_decoder", "xattn_kv", "tokenizer"},
    "preprocess": {"image_size", "resize", "interpolation", "crop", "mean", "std"},
    "vision": {"patch_size", "num_patches", "width", "embed_dim"},
    "perceiver": {"num_latents", "depth", "heads", "dim_head", "max_frames", "frame_embeddings"},
    "lang": {"family", "n_layers", "n_heads", "head_dim", "hidden", "vocab_size", "max_positions",
             "uses_position_ids", "cross_attn_every_n_layers"},
    "special_tokens": {"image", "endofchunk", "pad", "eos", "bos"},
    "tokenizer": {"add_bos", "padding_side", "clean_up_tokenization_spaces"},
    "cross_attn_cache": {"layers", "width"},
}
OPTIONAL_KEYS = {"source": {"added_head_seed", "preset"}}
# the LLaMA fixture: its tokenizer prepends BOS (<s> = 1), its head rows of the added tokens come from a seed
LLAMA = {"tiny-llama"}
F, I = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64


def io(path):
    m = onnx.load(str(path), load_external_data=False)
    def sig(vs):
        return {v.name: (v.type.tensor_type.elem_type, len(v.type.tensor_type.shape.dim)) for v in vs}
    return m, sig(m.graph.input), sig(m.graph.output)


def test_all_tiny_fixtures_present():
    assert TINY == ["tiny-gptneox", "tiny-llama", "tiny-mpt", "tiny-of3b-mpt1b", "tiny-of4b-rpj3b", "tiny-of9b-mpt7b",
                    "tiny-video"]
    for n in TINY:
        assert (FIXTURES / n / "model.yaml").is_file(), n


@pytest.mark.parametrize("name", TINY)
def test_manifest(name):
    d = FIXTURES / name
    m = yaml.safe_load((d / "model.yaml").read_text())
    assert set(m) == set(MANIFEST_KEYS)
    for k, sub in MANIFEST_KEYS.items():
        if sub is not None:
            assert sub <= set(m[k]) <= sub | OPTIONAL_KEYS.get(k, set()), k
    assert m["contract_version"] == 3 and m["opset"] == 17 and m["name"] == name
    assert m["source"]["patch_tokens_ln_post"] is False
    assert m["source"]["open_clip_version"] == "2.20.0" and m["source"]["open_flamingo_version"] == "2.0.1"
    for comp in m["components"].values():
        assert set(comp) == {"file", "sha256"}
        assert hashlib.sha256((d / comp["file"]).read_bytes()).hexdigest() == comp["sha256"]
    assert isinstance(m["lang"]["family"], str) and m["lang"]["family"]
    # the tiny fixtures: GPT-NeoX and LLaMA (rotary) and MPT (ALiBi)
    assert m["lang"]["uses_position_ids"] == (m["lang"]["family"] in ("gpt_neox", "llama"))
    assert m["lang"]["max_positions"] >= 2048
    assert m["lang"]["head_dim"] * m["lang"]["n_heads"] == m["lang"]["hidden"]
    if name in LLAMA:
        # LlamaTokenizerFast: BOS <s> prepended, clean-up off (LLaMA's tokenizer classes default to false);
        # the head rows of <|endofchunk|>, <image>, <PAD> are in no released file: drawn from the default seed
        assert m["special_tokens"]["bos"] == 1 and m["special_tokens"]["eos"] == 2
        assert m["tokenizer"] == {"add_bos": True, "padding_side": "left", "clean_up_tokenization_spaces": False}
        assert m["source"]["added_head_seed"] == 0
    else:
        assert m["special_tokens"]["bos"] is None and "added_head_seed" not in m["source"]
        # the tiny tokenizer adds no BOS and its config turns the clean-up on (transformers' default)
        assert m["tokenizer"] == {"add_bos": False, "padding_side": "left", "clean_up_tokenization_spaces": True}
    pre = m["preprocess"]
    assert pre["resize"] == "shortest_side" and pre["crop"] == "center" and pre["interpolation"] == "bicubic"
    assert m["vision"]["num_patches"] == (pre["image_size"] // m["vision"]["patch_size"]) ** 2
    assert (m["perceiver"]["max_frames"] > 1) == m["perceiver"]["frame_embeddings"]


@pytest.mark.parametrize("name", TINY)
def test_tokenizer_special_tokens(name):
    d = FIXTURES / name
    m = yaml.safe_load((d / "model.yaml").read_text())
    tok = json.loads((d / "tokenizer.json").read_text())
    added = {t["content"]: t for t in tok["added_tokens"]}
    st = m["special_tokens"]
    eos = "</s>" if name in LLAMA else "<|endoftext|>"
    for content, key in (("<|endofchunk|>", "endofchunk"), ("<image>", "image"), ("<PAD>", "pad"), (eos, "eos")):
        assert added[content]["id"] == st[key] and added[content]["special"], content
    assert max(t["id"] for t in tok["added_tokens"]) < m["lang"]["vocab_size"]
    assert tok["padding"] is None and tok["truncation"] is None


@pytest.mark.parametrize("name", TINY)
def test_graph_signatures(name):
    d = FIXTURES / name
    m = yaml.safe_load((d / "model.yaml").read_text())
    L = m["lang"]["n_layers"]
    _, i, o = io(d / "vision_encoder.onnx")
    assert i == {"pixels": (F, 4)}
    assert o == {"patch_tokens": (F, 3), "image_embedding": (F, 2)}
    _, i, o = io(d / "perceiver.onnx")
    assert i == {"patch_tokens": (F, 5)} and o == {"latents": (F, 4)}
    xl = m["cross_attn_cache"]["layers"]
    assert xl == [k for k in range(L) if (k + 1) % m["lang"]["cross_attn_every_n_layers"] == 0]
    kv_model, i, o = io(d / "xattn_kv.onnx")
    assert i == {"latents": (F, 4)} and o == {f"xattn_kv_{k}": (F, 4) for k in xl}
    kv_dims = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
               for v in list(kv_model.graph.input) + list(kv_model.graph.output)}
    assert kv_dims["latents"][2:] == [m["perceiver"]["num_latents"], m["vision"]["width"]]
    for k in xl:
        assert kv_dims[f"xattn_kv_{k}"][2:] == [m["perceiver"]["num_latents"], m["cross_attn_cache"]["width"]]
    model, i, o = io(d / "lang_decoder.onnx")
    want_in = {"input_ids": (I, 2), "attention_mask": (I, 2), "media_index": (I, 2), "logits_keep": (I, 1),
               **{f"xattn_kv_{k}": (F, 4) for k in xl}}
    if m["lang"]["uses_position_ids"]:
        want_in["position_ids"] = (I, 2)
    want_out = {"logits": (F, 3)}
    for k in range(L):
        want_in[f"past_key_{k}"] = want_in[f"past_value_{k}"] = (F, 4)
        want_out[f"present_key_{k}"] = want_out[f"present_value_{k}"] = (F, 4)
    assert i == want_in and o == want_out
    # static dims that the manifest promises
    dims = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in model.graph.input}
    assert dims["past_key_0"][1] == m["lang"]["n_heads"] and dims["past_key_0"][3] == m["lang"]["head_dim"]
    assert dims[f"xattn_kv_{xl[0]}"][2:] == [m["perceiver"]["num_latents"], m["cross_attn_cache"]["width"]]
    for g in ("vision_encoder", "perceiver", "lang_decoder", "xattn_kv"):
        onnx.checker.check_model(str(d / f"{g}.onnx"))


@pytest.mark.parametrize("name", TINY)
def test_sessions_at_every_optimisation_level(name):
    import onnxruntime as ort

    d = FIXTURES / name
    for lvl in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        so = ort.SessionOptions()
        so.graph_optimization_level = lvl
        for g in ("vision_encoder", "perceiver", "lang_decoder"):
            ort.InferenceSession(str(d / f"{g}.onnx"), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", TINY)
def test_goldens_are_self_describing(name):
    g = FIXTURES / name / "golden"
    doc = json.loads((g / "goldens.json").read_text())
    size = {"float32": 4, "int64": 8}
    for t in doc["tensors"].values():
        assert (g / t["file"]).stat().st_size == size[t["dtype"]] * int(np.prod(t["shape"]))
    names = set(doc["tensors"])
    want = {"preprocess_png", "preprocess_jpeg", "vision", "perceiver", "rices", "prefill_2shot", "generate_greedy",
            "generate_beam3", "loglik", "batch2_leftpad", "decode"}
    assert want <= set(doc["cases"])
    for key, case in doc["cases"].items():
        assert case["description"]
        for k, v in case.items():
            if k in ("logits", "pixels", "patch_tokens", "image_embedding", "latents", "normalized", "similarity",
                     "last_logits", "first_step_logits", "first_step_logits_generate"):
                assert v in names, (key, k)
        for k in ("image", "images", "frames"):
            if k in case:
                flat = case[k] if k != "images" or not case[k] or isinstance(case[k][0], str) else \
                    [x for row in case[k] for x in row]
                for f in ([flat] if isinstance(flat, str) else flat):
                    assert (FIXTURES.parent / "images" / f).is_file(), f
        if "input_ids" in case:
            for k in ("prompts", "attention_mask", "position_ids", "media_index", "num_media"):
                assert k in case, (key, k)
    assert doc["cases"]["preprocess_png"]["image"].endswith(".png")
    assert doc["cases"]["preprocess_jpeg"]["image"].endswith(".jpg")
    if name == "tiny-video":
        assert "perceiver_video" in doc["cases"]
