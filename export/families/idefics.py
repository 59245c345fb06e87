"""IDEFICS (transformers `IdeficsForVisionText2Text`): the second model family of the contract.

IDEFICS is not an OpenFlamingo checkpoint on top of an LM: one Hugging Face folder holds the whole model
(config.json, weight shards, tokenizer, preprocessor_config.json), so this module loads that folder with
transformers' own classes and exports the three contract graphs from their modules. What differs from
OpenFlamingo, each said explicitly in model.yaml (contract version 3, export/CONTRACT.md "Version 3: IDEFICS"):

* vision: IdeficsVisionTransformer (OpenCLIP ViT-H/14 in Hugging Face form). The perceiver gets
  `last_hidden_state`: all grid² + 1 tokens, CLS kept, no final LayerNorm (`vision.cls_token: kept`). The
  tower has no projection head: `image_embedding` is `pooler_output` (post_layernorm of CLS), which is not a CLIP
  embedding (`vision.image_embedding: pooled`); RICES must use a separate CLIP encoder (`encoder: clip_onnx`).
* preprocessing (IdeficsImageProcessor): RGBA/LA/P images composited onto white first (`convert_to_rgb`),
  resized to exactly image_size × image_size with PIL bicubic, no crop, CLIP mean/std
  (`preprocess.resize: exact`, `crop: none`, `alpha: composite_white`).
* perceiver: IdeficsPerceiverResampler (QK LayerNorms, ReLU MLP without biases), one frame per media.
* decoder: LLaMA layers; the gated cross-attention layer g runs BEFORE decoder layer i when
  i % cross_layer_interval == 0 (`cross_attention.first_layer: 0`; OpenFlamingo: after every n-th, i.e.
  before layer i when (i+1) % n == 0); decoupled embedding and LM head (32000 + 2 rows, run by the real modules).
* prompts (IdeficsProcessor): BOS written first; each image written
  `<fake_token_around_image><image><fake_token_around_image>`, one fake token shared by adjacent images; text
  items stripped of spaces; left padding with the pad token (`prompt_format`).
* which image a token attends to (`image_attention_mask`): the most recent `<image>`; a token after an EOS
  attends to none until the next image (`cross_attention.media_reset_after_eos: true`).
* a token that attends to no image (before the first image: BOS, instructions, left padding; after an EOS):
  transformers >= 4.36.0 zeroes its cross-attention output (`cross_attention.no_media: zero`, the default
  and what the published models should get); transformers <= 4.35 lets it attend to a uniform average of every
  image slot of the sample, padding images included (`no_media: uniform_all_media`, exported only with
  `--cross-attn-compat transformers-4.33` and checked against the venv's 4.33.3).

Parity: the fixed behaviour's reference is transformers 4.36.2 itself, run in a child process with its own
sys.path (.cache/transformers-4.36.2, fetched from PyPI by ensure_fixed_transformers; the pinned venv is not
touched); the compatibility mode's reference is the venv's transformers 4.33.3 in this process. Beam search is
compared with length_penalty 0 (as OpenFlamingo's eval calls it), where 4.33's division by prompt + generated
length and 4.36's by generated length agree.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..config import ExportError
from .base import full_rotary_tables, keep_last

REPO = Path(__file__).resolve().parent.parent.parent
FIXED_TRANSFORMERS = "4.36.2"
FIXED_TOKENIZERS = "0.15.2"   # transformers 4.36.2 needs tokenizers >= 0.14, < 0.19 (the venv has 0.13.3)
MODES = {"fixed": "zero", "transformers-4.33": "uniform_all_media"}
FAKE = "<fake_token_around_image>"
IMAGE = "<image>"
ORACLE = Path(__file__).resolve().parent / "idefics_oracle.py"


# --------------------------------------------------------------------------------------------------
# the folder a user downloads, checked against a preset
# --------------------------------------------------------------------------------------------------

def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ExportError(f"{path.parent}: no {path.name} ({what}); download the whole Hugging Face folder")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: not valid JSON ({e})")


def _dotted(conf: dict, key: str):
    node = conf
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def weight_keys(folder: Path) -> List[str]:
    from .base import INDEX_FILES, WEIGHT_FILES, weight_files

    for name in INDEX_FILES:
        if (folder / name).is_file():
            weight_files(folder)  # all shards present
            return sorted(_read_json(folder / name, "weight index")["weight_map"])
    files = weight_files(folder)
    if files[0].suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(files[0]), "pt") as f:
            return sorted(f.keys())
    from .base import load_weight_file

    return sorted(load_weight_file(files[0]))


def check_folder(folder: Path, preset=None) -> dict:
    """config.json, weights and preprocessor_config.json of an IDEFICS folder; with a preset, every field the
    preset fixes. Errors name the file and the field."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"IDEFICS folder {folder} does not exist")
    cj = folder / "config.json"
    conf = _read_json(cj, "the model config")
    if conf.get("model_type") != "idefics":
        raise ExportError(f"{cj}: model_type is {conf.get('model_type')!r}, not 'idefics': not an IDEFICS folder")
    if preset is not None:
        for key, want in preset.config_fields().items():
            got = _dotted(conf, key)
            if got != want:
                raise ExportError(f"{cj}: {key} is {got!r} but preset {preset.name} ({preset.repo}) has {want!r}: "
                                  f"this folder is another IDEFICS size or variant; use its own preset "
                                  f"(--list-presets) or download {preset.repo}")
    keys = weight_keys(folder)
    vis = [k for k in keys if k.startswith("model.vision_model.")]
    if not vis:
        raise ExportError(f"{folder}: the weights hold no vision tower (no key under model.vision_model.); the "
                          "download is incomplete or the folder is a text-only LM")
    if conf.get("use_resampler") and not any(k.startswith("model.perceiver_resampler.") for k in keys):
        raise ExportError(f"{folder}: config.json says use_resampler but the weights hold no "
                          "model.perceiver_resampler.* keys; the download is incomplete")
    pj = folder / "preprocessor_config.json"
    pre = _read_json(pj, "the image processor config")
    vc = conf.get("vision_config") or {}
    size = pre.get("image_size")
    if size != vc.get("image_size"):
        raise ExportError(f"{pj}: image_size is {size!r} but config.json vision_config.image_size is "
                          f"{vc.get('image_size')!r}: the processor config does not belong to this model")
    if preset is not None:
        for key, want in (("image_size", preset.image_size), ("image_mean", list(preset.image_mean)),
                          ("image_std", list(preset.image_std)), ("image_num_channels", 3)):
            got = pre.get(key, 3 if key == "image_num_channels" else None)
            if got != want:
                raise ExportError(f"{pj}: {key} is {got!r} but preset {preset.name} has {want!r} (IDEFICS' "
                                  "CLIP preprocessing); the folder's processor config was changed")
    for key in ("image_mean", "image_std"):
        v = pre.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            raise ExportError(f"{pj}: {key} must be a list of 3 numbers (got {v!r})")
    if any(x == 0 for x in pre["image_std"]):
        raise ExportError(f"{pj}: image_std contains 0")
    return {"config": conf, "preprocessor": pre, "weight_keys": len(keys)}


def folder_identity(folder: Path) -> str:
    """sha256 over the folder's weight files' own hashes (their names and contents), the source identity."""
    from ..build import sha256_file
    from .base import weight_files

    h = hashlib.sha256()
    for f in weight_files(folder):
        h.update(f"{f.name}:{sha256_file(f)}\n".encode())
    return h.hexdigest()


def load_folder(folder: Path):
    from transformers import AutoTokenizer, IdeficsForVisionText2Text, IdeficsImageProcessor

    model = IdeficsForVisionText2Text.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    proc = IdeficsImageProcessor.from_pretrained(str(folder))
    return model, tok, proc


# --------------------------------------------------------------------------------------------------
# ONNX wrappers around transformers' own modules
# --------------------------------------------------------------------------------------------------

class VisionOnnx(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.vm = model.model.vision_model

    def forward(self, pixels):
        out = self.vm(pixel_values=pixels)
        return out.last_hidden_state, out.pooler_output  # all tokens (CLS kept, no LayerNorm); post_layernorm(CLS)


class PerceiverOnnx(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.resampler = model.model.perceiver_resampler

    def forward(self, patch_tokens):  # [B,T,F=1,P,Dv]
        lat = self.resampler(patch_tokens.flatten(0, 2))
        return lat.reshape(patch_tokens.shape[0], patch_tokens.shape[1], lat.shape[1], lat.shape[2])


def whole_rotary_tables(layers):
    """IdeficsEmbedding slices its tables with a Python int, which a trace would freeze: hand each attention the
    whole tables (apply_rotary_pos_emb gathers the rows of position_ids: the same numbers)."""
    return full_rotary_tables(layer.self_attn.rotary_emb for layer in layers)


def decoupled_embedding(emb, input_ids):
    """IdeficsDecoupledEmbedding's lookup (rows >= num_embeddings from additional_embedding), as a selection
    instead of its in-place index assignment (which the legacy ONNX exporter cannot trace)."""
    n = emb.num_embeddings
    extra = input_ids >= n
    base = nn.functional.embedding(torch.where(extra, torch.zeros_like(input_ids), input_ids), emb.weight)
    if emb.num_additional_embeddings == 0:
        return base
    add = emb.additional_embedding(torch.clamp(input_ids - n, min=0))
    return torch.where(extra[..., None], add, base)


def cross_attention_mask(media_index, n_slots: int, n_latents: int, dtype):
    """IdeficsModel's inverted image_attention_mask from the contract's media_index: token -> one-hot of its
    media slot (none for 0), each slot repeated over its latents, then (1 - m) * finfo.min, [B,1,S,T*L]."""
    slots = torch.arange(1, n_slots + 1, device=media_index.device)
    onehot = (media_index[:, :, None] == slots[None, None, :]).to(dtype)
    m = onehot[:, :, :, None].expand(-1, -1, -1, n_latents).flatten(2)
    return (1.0 - m)[:, None] * torch.finfo(dtype).min


def gated_cross_attention_fixed(x, h, image_states, mask, attends):
    """IdeficsGatedCrossAttentionLayer.forward of transformers >= 4.36.0 with the 4.33 module: the same
    sub-modules in the same order, plus the 4.36 `cross_attention_gate` (tokens attending to no image get zero
    cross-attention output). The documented, minimal correction; checked against 4.36.2 itself."""
    residual = h
    y = x.input_layernorm(h)
    y = x.cross_attn(hidden_states=y, key_value_states=image_states, attention_mask=mask)[0]
    y = y * attends
    h = residual + x.act_cross_attn(x.alpha_cross_attn) * y
    residual = h
    y = x.mlp(x.post_attention_layernorm(h))
    return residual + x.act_dense(x.alpha_dense) * y


class DecoderOnnx(nn.Module):
    """lang_decoder.onnx of CONTRACT.md: IdeficsModel.forward's glue with explicit positions, media_index and
    KV cache; the real decoder, cross-attention, norm and head modules."""

    def __init__(self, model, no_media: str):
        super().__init__()
        self.model = model
        self.no_media = no_media
        self.interval = model.model.cross_layer_interval

    def forward(self, input_ids, attention_mask, position_ids, media_index, vision_latents, logits_keep, *past):
        base = self.model.model
        dtype = base.embed_tokens.weight.dtype
        h = decoupled_embedding(base.embed_tokens, input_ids)
        S = input_ids.shape[1]
        total = attention_mask.shape[1]
        q_pos = torch.arange(S, device=input_ids.device)[:, None] + (total - S)
        k_pos = torch.arange(total, device=input_ids.device)[None, :]
        allowed = (k_pos <= q_pos)[None, None] & attention_mask[:, None, None, :].to(torch.bool)
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        B, T, L, D = vision_latents.shape
        image_states = vision_latents.reshape(B, T * L, D)
        xmask = cross_attention_mask(media_index, T, L, dtype)
        attends = (media_index > 0).to(dtype)[:, :, None]
        presents = []
        with whole_rotary_tables(base.layers):
            for i, layer in enumerate(base.layers):
                if i % self.interval == 0:
                    x = base.gated_cross_attn_layers[i // self.interval]
                    if self.no_media == "zero":
                        h = gated_cross_attention_fixed(x, h, image_states, xmask, attends)
                    else:  # transformers 4.33's module as it is: no-image tokens average every slot uniformly
                        h = x(h, image_hidden_states=image_states, image_attention_mask=xmask, no_images=False)[0]
                out = layer(h, attention_mask=mask, position_ids=position_ids,
                            past_key_value=(past[2 * i], past[2 * i + 1]), use_cache=True)
                h = out[0]
                presents += list(out[-1])
        h = keep_last(base.norm(h), logits_keep)
        return (self.model.lm_head(h), *presents)


def dims(model) -> dict:
    c = model.config
    base = model.model
    vc = c.vision_config
    pc = c.perceiver_config
    rot = base.layers[0].self_attn.rotary_emb
    vocab = int(c.vocab_size + c.additional_vocab_size)
    grid = (vc.image_size // vc.patch_size) ** 2
    return {
        "vision": {"patch_size": int(vc.patch_size), "num_patches": int(grid + 1), "width": int(vc.embed_dim),
                   "embed_dim": int(vc.embed_dim), "image_size": int(vc.image_size)},
        "perceiver": {"num_latents": int(pc.resampler_n_latents), "depth": int(pc.resampler_depth),
                      "heads": int(pc.resampler_n_heads), "dim_head": int(pc.resampler_head_dim), "max_frames": 1,
                      "frame_embeddings": False},
        "lang": {"n_layers": int(c.num_hidden_layers), "n_heads": int(c.num_attention_heads),
                 "head_dim": int(c.hidden_size // c.num_attention_heads), "hidden": int(c.hidden_size),
                 "vocab_size": vocab, "max_positions": int(rot.cos_cached.shape[2])},
    }


def export_graphs(model, out_dir: Path, no_media: str) -> dict:
    from ..onnx_export import _export
    from ..wrappers import export_mode

    if not model.config.use_resampler:
        raise ExportError("config.json: use_resampler is false: IDEFICS without a perceiver is not supported by "
                          "the contract (perceiver.onnx)")
    d = dims(model)
    size, dv = d["vision"]["image_size"], d["vision"]["width"]
    P, L = d["vision"]["num_patches"], d["perceiver"]["num_latents"]
    g = torch.Generator().manual_seed(0)
    with export_mode(17):
        _export(VisionOnnx(model).eval(), (torch.randn(2, 3, size, size, generator=g),),
                out_dir / "vision_encoder.onnx", ["pixels"], ["patch_tokens", "image_embedding"],
                {"pixels": {0: "N"}, "patch_tokens": {0: "N"}, "image_embedding": {0: "N"}})
        _export(PerceiverOnnx(model).eval(), (torch.randn(2, 3, 1, P, dv, generator=g),), out_dir / "perceiver.onnx",
                ["patch_tokens"], ["latents"], {"patch_tokens": {0: "B", 1: "T", 2: "F"}, "latents": {0: "B", 1: "T"}})
        lang = d["lang"]
        B, S, Pk, T = 2, 4, 3, 2
        H, Dh, n = lang["n_heads"], lang["head_dim"], lang["n_layers"]
        args = [torch.randint(0, 100, (B, S), generator=g), torch.ones(B, Pk + S, dtype=torch.long),
                torch.arange(Pk, Pk + S).repeat(B, 1), torch.tensor([[1, 1, 2, 2], [0, 1, 1, 1]]),
                torch.randn(B, T, L, dv, generator=g), torch.tensor([2])]
        ins = ["input_ids", "attention_mask", "position_ids", "media_index", "vision_latents", "logits_keep"]
        outs = ["logits"]
        dyn = {"input_ids": {0: "B", 1: "S"}, "attention_mask": {0: "B", 1: "Pk+S"}, "position_ids": {0: "B", 1: "S"},
               "media_index": {0: "B", 1: "S"}, "vision_latents": {0: "B", 1: "T"}, "logits": {0: "B", 1: "K"}}
        for i in range(n):
            args += [torch.randn(B, H, Pk, Dh, generator=g), torch.randn(B, H, Pk, Dh, generator=g)]
            ins += [f"past_key_{i}", f"past_value_{i}"]
            outs += [f"present_key_{i}", f"present_value_{i}"]
            dyn[f"past_key_{i}"] = dyn[f"past_value_{i}"] = {0: "B", 2: "Pk"}
            dyn[f"present_key_{i}"] = dyn[f"present_value_{i}"] = {0: "B", 2: "Pk+S"}
        _export(DecoderOnnx(model, no_media).eval(), tuple(args), out_dir / "lang_decoder.onnx", ins, outs, dyn)
    return d


# --------------------------------------------------------------------------------------------------
# manifest (contract version 3)
# --------------------------------------------------------------------------------------------------

def special_ids(tok, vocab: int) -> dict:
    ids = {}
    for t in (FAKE, IMAGE):
        i = tok.convert_tokens_to_ids(t)
        if i is None or i == tok.unk_token_id or i >= vocab:
            raise ExportError(f"tokenizer: {t} has id {i}, not a token of the model's {vocab}-row head; the "
                              "tokenizer files do not belong to this IDEFICS folder")
        ids[t] = i
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(tok, attr) is None:
            raise ExportError(f"tokenizer: no {attr.replace('_id', '')} (IdeficsProcessor writes BOS, stops on EOS "
                              "and left-pads with the pad token)")
    return ids


END_OF_UTTERANCE = "<end_of_utterance>"


def end_of_utterance_id(tok, vocab: int, log=lambda s: print(s, file=sys.stderr)) -> Optional[int]:
    """The id of `<end_of_utterance>` when the tokenizer was trained with it (IdeficsProcessor's test: it is one of
    the tokenizer's additional_special_tokens; the instruct variants), else None. The model card stops generation
    at it (`eos_token_id=<end_of_utterance>`), so the manifest records it (`special_tokens.end_of_utterance`) and
    the runtime stops there too. One that the model's head cannot produce (id >= the logit width) is not
    recorded: a prompt holding it could not be embedded either, so the instruct templates cannot be used."""
    if END_OF_UTTERANCE not in (tok.special_tokens_map.get("additional_special_tokens") or []):
        return None
    ids = tok(END_OF_UTTERANCE, add_special_tokens=False).input_ids
    if len(ids) != 1:
        raise ExportError(f"tokenizer: {END_OF_UTTERANCE} is an additional special token but encodes to {ids}, not "
                          "one token; the tokenizer files are damaged")
    if ids[0] >= vocab:
        log(f"[idefics] warning: tokenizer: {END_OF_UTTERANCE} has id {ids[0]}, outside the model's {vocab}-row "
            "head: not recorded (generation cannot produce it; prompts must not contain it)")
        return None
    return int(ids[0])


def build_manifest(model, tok, pre: dict, d: dict, files: dict, name: str, identity: str, no_media: str,
                   preset: Optional[str]) -> dict:
    import transformers

    from ..export_openflamingo import _component
    from ..tokenizer_rules import tokenizer_rules

    lang = d["lang"]
    ids = special_ids(tok, lang["vocab_size"])
    # IdeficsProcessor writes BOS as text and tokenises without special tokens: the prompt is [bos] + text
    rules = tokenizer_rules(tok, lang["vocab_size"])
    if rules["bos"] not in (None, tok.bos_token_id):
        raise ExportError(f"tokenizer: it adds {rules['bos']} around a text, not BOS {tok.bos_token_id}")
    eou = end_of_utterance_id(tok, lang["vocab_size"])
    return {
        "contract_version": 3,
        "exporter_version": "0.1.0",
        "opset": 17,
        "name": name,
        "source": {"checkpoint_sha256": identity, "open_flamingo_version": "none", "open_clip_version": "none",
                   "patch_tokens_ln_post": False, "transformers_version": transformers.__version__,
                   **({"preset": preset} if preset else {})},
        "components": {k: _component(files[k], v) for k, v in
                       (("vision_encoder", "vision_encoder.onnx"), ("perceiver", "perceiver.onnx"),
                        ("lang_decoder", "lang_decoder.onnx"), ("tokenizer", "tokenizer.json"))},
        "preprocess": {"image_size": d["vision"]["image_size"], "resize": "exact", "interpolation": "bicubic",
                       "crop": "none", "mean": [float(x) for x in pre["image_mean"]],
                       "std": [float(x) for x in pre["image_std"]], "alpha": "composite_white"},
        "vision": {**{k: d["vision"][k] for k in ("patch_size", "num_patches", "width", "embed_dim")},
                   "cls_token": "kept", "image_embedding": "pooled"},
        "perceiver": d["perceiver"],
        "lang": {"family": "idefics", **lang, "uses_position_ids": True,
                 "cross_attn_every_n_layers": int(model.config.cross_layer_interval)},
        "cross_attention": {"position": "before_layer", "first_layer": 0, "no_media": no_media,
                            "media_reset_after_eos": True},
        "special_tokens": {"image": ids[IMAGE], "endofchunk": tok.eos_token_id, "pad": tok.pad_token_id,
                           "eos": tok.eos_token_id, "bos": tok.bos_token_id,
                           **({"end_of_utterance": eou} if eou is not None else {})},
        "tokenizer": {"add_bos": True, "padding_side": "left",
                      "clean_up_tokenization_spaces": bool(tok.clean_up_tokenization_spaces)},
        "prompt_format": {"endofchunk_text": tok.eos_token, "image_open": FAKE, "image_close": FAKE,
                          "share_between_adjacent_images": True, "strip_text_around_images": True},
    }


# --------------------------------------------------------------------------------------------------
# processor inputs and the references
# --------------------------------------------------------------------------------------------------

def processor_items(prompt: str, images: list) -> list:
    """A contract prompt ("<image>" markers) as IdeficsProcessor's list of text items and images."""
    parts = prompt.split(IMAGE)
    if len(parts) - 1 != len(images):
        raise ExportError(f"prompt has {len(parts) - 1} <image> markers but {len(images)} images")
    items = []
    for i, p in enumerate(parts):
        if p:
            items.append(p)
        if i < len(images):
            items.append(images[i])
    return items


def processor_inputs(tok, proc, prompts: List[str], images: List[list]) -> dict:
    from transformers import IdeficsProcessor

    p = IdeficsProcessor(proc, tok)
    enc = p([processor_items(t, im) for t, im in zip(prompts, images)], padding="longest", return_tensors="pt")
    return {k: enc[k].numpy() for k in ("input_ids", "attention_mask", "image_attention_mask", "pixel_values")}


def media_index_from(iam: np.ndarray) -> np.ndarray:
    """The contract's media_index of IdeficsProcessor's binary image_attention_mask [B,S,T]."""
    return np.where(iam.any(-1), iam.argmax(-1) + 1, 0).astype(np.int64)


def ensure_fixed_transformers(log=print) -> Path:
    """transformers 4.36.2 + tokenizers 0.15.2 in .cache/ (pip --target --no-deps; the venv is not changed)."""
    target = REPO / ".cache" / f"transformers-{FIXED_TRANSFORMERS}"
    if (target / "transformers" / "models" / "idefics").is_dir() and (target / "tokenizers").is_dir():
        return target
    log(f"[idefics] installing transformers=={FIXED_TRANSFORMERS} tokenizers=={FIXED_TOKENIZERS} into {target} "
        "(test oracle of the fixed cross-attention)")
    tmp = target.with_name(target.name + ".tmp")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-cache-dir", "--target",
                    str(tmp), f"transformers=={FIXED_TRANSFORMERS}", f"tokenizers=={FIXED_TOKENIZERS}"], check=True)
    tmp.rename(target)
    return target


def reference(folder: Path, reqs: Dict[str, dict], no_media: str, workdir: Path, log=print) -> dict:
    """Oracle outputs: transformers 4.36.2 in a child process (fixed), or the venv's 4.33.3 here (compat)."""
    if no_media == "uniform_all_media":
        sys.path.insert(0, str(ORACLE.parent))
        try:
            import idefics_oracle
        finally:
            sys.path.pop(0)
        from transformers import IdeficsForVisionText2Text

        model = IdeficsForVisionText2Text.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
        return idefics_oracle.run(model, reqs)
    lib = ensure_fixed_transformers(log)
    req_file, out_file = workdir / "oracle_requests.npz", workdir / "oracle_out.npz"
    flat = {f"{k}.{f}": np.asarray(v) for k, r in reqs.items() for f, v in r.items()}
    np.savez(req_file, **flat)
    env = dict(os.environ, PYTHONPATH=str(lib), TRANSFORMERS_OFFLINE="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, str(ORACLE), str(folder), str(req_file), str(out_file)], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise ExportError(f"the transformers {FIXED_TRANSFORMERS} oracle failed:\n{r.stderr[-3000:]}")
    with np.load(out_file) as z:
        out = {k: z[k] for k in z.files}
    if str(out["transformers_version"]) != FIXED_TRANSFORMERS:
        raise ExportError(f"oracle ran transformers {out['transformers_version']}, not {FIXED_TRANSFORMERS}")
    return out
