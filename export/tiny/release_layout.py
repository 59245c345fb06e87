"""Save a tiny fixture model in the file layout of a published OpenFlamingo checkpoint, so that its export
takes the path a user's download takes (base LM folder + open_clip weights file + trainable-only checkpoint).

What a release consists of (facts from open_flamingo's code, tags 0.1.1 and 2.0.x):

* The LM folder as its authors released it (config.json with the base vocabulary, the weights, the
  tokenizer files). OpenFlamingo's factory loads it, adds `<|endofchunk|>`, `<image>` (and `<PAD>`) to the
  tokenizer and resizes the embeddings.
* The open_clip weights file of the vision tower (the whole CLIP model: open_clip loads it strictly).
* `checkpoint.pt`: what training saved. The trainable parameters are the perceiver, the gated
  cross-attention blocks and the LM's input embeddings (factory: `requires_grad_` on those only).
  - layout "of2" (open_flamingo 2.0.x, `filter_state_dict_to_trainable`): the model's state dict minus every
    frozen parameter except those whose name contains "embed" (so GPT-NeoX's untied `embed_out` head IS
    saved, LLaMA's `lm_head` is NOT), minus every key under `lang_encoder.old_decoder_blocks`,
    `lang_encoder.gated_cross_attn_layers` and `vision_encoder`. Buffers stay.
  - layout "of1" (open_flamingo 0.1.x, `get_checkpoint`, OpenFlamingo v1 9B): the state dict minus the frozen
    parameters; buffers and both names of the cross-attention blocks stay (v1 has no `old_decoder_blocks`).
  - buffers the transformers of the time saved and 4.33 no longer does (non-persistent since): GPT-NeoX's
    `attention.bias` (the causal mask, bool [1,1,P,P]) and `attention.masked_bias` (float32 -1e9) under
    transformers 4.28 (open_flamingo 2.0.0's pin); LLaMA's `self_attn.rotary_emb.inv_freq` (float32
    [head_dim/2]) under transformers 4.28-4.30 (OpenFlamingo v1's era).
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import torch

# fixture name -> how its release is laid out
LAYOUTS = {
    "tiny-llama": {"checkpoint": "of1", "legacy_buffers": "llama_inv_freq_4_28", "preset": "OpenFlamingo-9B-deprecated"},
    "tiny-of4b-rpj3b": {"checkpoint": "of2", "legacy_buffers": "gpt_neox_4_28", "preset": "OpenFlamingo-4B-vitl-rpj3b"},
}


def mark_trainable(model) -> None:
    """The requires_grad flags open_flamingo's factory leaves (build_model freezes everything)."""
    model.requires_grad_(False)
    model.perceiver.requires_grad_(True)
    model.lang_encoder.gated_cross_attn_layers.requires_grad_(True)
    model.lang_encoder.get_input_embeddings().requires_grad_(True)


def trainable_state_dict(model, layout: str) -> dict:
    mark_trainable(model)
    state = model.state_dict()
    if layout == "of2":
        for name, p in model.named_parameters():
            if "embed" in name:
                continue
            if not p.requires_grad:
                state.pop(name, None)
        for k in [k for k in state if "lang_encoder.old_decoder_blocks" in k
                  or "lang_encoder.gated_cross_attn_layers" in k or "vision_encoder" in k]:
            del state[k]
    elif layout == "of1":
        for name, p in model.named_parameters():
            if not p.requires_grad:
                state.pop(name, None)
        for k in [k for k in state if k.startswith("lang_encoder.old_decoder_blocks.")]:
            del state[k]  # v1's FlamingoLMMixin keeps no second reference to the decoder blocks
    else:
        raise ValueError(layout)
    model.requires_grad_(False)
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def add_legacy_buffers(state: dict, lm, kind: str) -> list:
    """Add the buffers an older transformers saved in the state dict (see the module docstring)."""
    added = []
    c = lm.config
    if kind == "gpt_neox_4_28":
        P = c.max_position_embeddings
        for i in range(c.num_hidden_layers):
            pre = f"lang_encoder.gpt_neox.layers.{i}.decoder_layer.attention."
            state[pre + "bias"] = torch.tril(torch.ones((P, P), dtype=torch.bool)).view(1, 1, P, P)
            state[pre + "masked_bias"] = torch.tensor(-1e9)
            added += [pre + "bias", pre + "masked_bias"]
    elif kind == "llama_inv_freq_4_28":
        dim = c.hidden_size // c.num_attention_heads
        inv = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
        for i in range(c.num_hidden_layers):
            k = f"lang_encoder.model.layers.{i}.decoder_layer.self_attn.rotary_emb.inv_freq"
            state[k] = inv.clone()
            added.append(k)
    else:
        raise ValueError(kind)
    return added


def save_published(cfg: dict, built, out: Path, layout: dict) -> dict:
    """Write lm/ (base LM folder + tokenizer), the open_clip JSON config and weights, and checkpoint.pt under `out`;
    returns their paths (what a user passes to --preset: --lm, --clip-model, --clip, --checkpoint) and an export
    config pointing at them (the --config path)."""
    import open_clip

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # base LM folder as released: the randomly initialised base LM the factory loaded, plus its tokenizer
    lm_dir = out / "lm"
    shutil.copytree(built.lm_dir, lm_dir)
    for f in sorted(Path(cfg["tokenizer"]["path"]).iterdir()):
        shutil.copy(f, lm_dir / f.name)
    # open_clip weights file: the whole CLIP model (open_clip loads it strictly) with this vision tower
    torch.manual_seed(cfg["seed"] + 3)
    clip = open_clip.create_model(cfg["vision"]["clip_model"])
    clip.visual.load_state_dict(built.model.vision_encoder.state_dict())
    clip_file = out / "open_clip_pytorch_model.bin"
    torch.save(clip.state_dict(), clip_file)
    clip_json = out / f"{cfg['vision']['clip_model']}.json"
    clip_json.write_text(json.dumps(cfg["vision"]["clip_config"], sort_keys=True))
    # checkpoint.pt
    state = trainable_state_dict(built.model, layout["checkpoint"])
    legacy = add_legacy_buffers(state, built.model.lang_encoder, layout["legacy_buffers"])
    ckpt = out / "checkpoint.pt"
    torch.save(state, ckpt)
    pub = copy.deepcopy({k: v for k, v in cfg.items() if not k.startswith("_")})
    pub["lang"] = {"family": cfg["lang"]["family"], "path": str(lm_dir)}
    pub["tokenizer"] = {"path": str(lm_dir), "add_special_tokens": True}
    pub["vision"] = {**cfg["vision"], "pretrained": str(clip_file)}
    return {"config": pub, "checkpoint": ckpt, "lm": lm_dir, "clip": clip_file, "clip_model": clip_json,
            "keys": sorted(state), "legacy_buffers": legacy}
