"""MosaicML's old `mosaic_gpt` remote code (OF-3B's mpt-1b-redpajama-200b and -dolly), converted to
transformers' native MptForCausalLM plus QK LayerNorm.

The released folder (config.json with `model_type: mosaic_gpt` and an `auto_map` to its own Python files,
pytorch_model.bin) is never executed: its config is translated to a native MPT config, its parameters renamed
to native MPT's names, and the LayerNorms on queries and keys (`attn_qk_ln: true`), which native MPT accepts in
its config but NEVER applies, are attached to every MptAttention together with an attention forward that
applies them (MosaicGPT's order: Wqkv -> split -> q_ln(q), k_ln(k) over the whole d_model -> heads -> scores
+ ALiBi -> mask -> softmax -> out_proj). Loading such a folder into native MPT without this silently gives
wrong logits; the tests prove the conversion identical to the original classes (the otter-ai wheel's copy of
MosaicML's code, used as a test oracle only).

Low-precision LayerNorm (`low_precision_layernorm: true`): MosaicGPT's LPLayerNorm casts its input and
parameters to the autocast dtype only while autocast is enabled (it then computes LayerNorm in bf16/fp16);
without autocast it is exactly torch's LayerNorm. The export runs in fp32 without autocast, so every
LayerNorm here is a plain fp32 LayerNorm, identical to MosaicGPT run in fp32. OpenFlamingo's published numbers
were computed under bf16 autocast, where these LayerNorms run in bf16: that rounding is not reproduced
(docs/models.md).
"""
from __future__ import annotations

import json
import re
import types
from pathlib import Path

import torch
from torch import nn

from ..config import ExportError
from .base import fmt_keys, linked_copy, load_weight_file, weight_files
from .mpt import Mpt

QK_LN_FILE = "flamingo_export_qk_ln.safetensors"
_RENAMES = [  # MosaicGPT name -> native MPT name (PROTOCOL.md §8b)
    (re.compile(r"^transformer\.blocks\.(\d+)\.ln_1\.weight$"), r"transformer.blocks.\1.norm_1.weight"),
    (re.compile(r"^transformer\.blocks\.(\d+)\.ln_2\.weight$"), r"transformer.blocks.\1.norm_2.weight"),
    (re.compile(r"^transformer\.blocks\.(\d+)\.attn\.Wqkv\.weight$"), r"transformer.blocks.\1.attn.Wqkv.weight"),
    (re.compile(r"^transformer\.blocks\.(\d+)\.attn\.out_proj\.weight$"),
     r"transformer.blocks.\1.attn.out_proj.weight"),
    (re.compile(r"^transformer\.blocks\.(\d+)\.mlp\.mlp_up\.weight$"), r"transformer.blocks.\1.ffn.up_proj.weight"),
    (re.compile(r"^transformer\.blocks\.(\d+)\.mlp\.mlp_down\.weight$"),
     r"transformer.blocks.\1.ffn.down_proj.weight"),
    (re.compile(r"^transformer\.ln_f\.weight$"), r"transformer.norm_f.weight"),
    (re.compile(r"^transformer\.wte\.weight$"), r"transformer.wte.weight"),
]
_QK = re.compile(r"^transformer\.blocks\.(\d+)\.attn\.(q_ln|k_ln)\.weight$")
# the same renames inside an OpenFlamingo state dict (FlamingoLayer puts the block under .decoder_layer)
_OF_PREFIX = re.compile(r"^(lang_encoder\.transformer\.blocks\.\d+\.)decoder_layer\.(ln_1|ln_2|mlp\.mlp_up|mlp\.mlp_down)\.")
_OF_SUB = {"ln_1": "norm_1", "ln_2": "norm_2", "mlp.mlp_up": "ffn.up_proj", "mlp.mlp_down": "ffn.down_proj"}


def _qk_ln_attention_forward(self, hidden_states, position_bias, past_key_value=None, attention_mask=None):
    """MptAttention.forward's interface, with MosaicGPT's LayerNorm on q and k (see the module docstring)."""
    batch_size, seq_length = hidden_states.shape[:2]
    query, key, value = self.Wqkv(hidden_states).chunk(3, dim=2)
    query = self.q_ln(query)
    key = self.k_ln(key)

    def heads(x):
        return x.reshape(batch_size, seq_length, self.n_heads, self.head_dim).transpose(1, 2)

    query, key, value = heads(query), heads(key), heads(value)
    if past_key_value is not None and len(past_key_value) != 0:
        key = torch.cat([past_key_value[0], key], dim=2)
        value = torch.cat([past_key_value[1], value], dim=2)
    past_key_value = (key, value)
    scores = torch.matmul(query, key.transpose(-1, -2)) * self.softmax_scale
    if position_bias is not None:
        # ALiBi [H, 1, L] relative to the last key: keep the last key_length columns
        key_length = key.shape[-2]
        start = max(0, position_bias.size(2) - key_length)
        scores = scores + position_bias[:, :, start:]
    if attention_mask is not None:
        scores = scores.masked_fill(attention_mask, torch.finfo(query.dtype).min)
    weights = nn.functional.softmax(scores.float(), dim=-1).to(value.dtype)
    context = torch.matmul(weights, value)
    context = context.permute(0, 2, 1, 3).contiguous().view(batch_size, seq_length, -1)
    return self.out_proj(context), weights, past_key_value


class MosaicGpt(Mpt):
    name = "mosaic_gpt"
    model_type = "mpt"                      # what the factory loads after conversion
    hf_class = "MptForCausalLM"
    decoder_layers_attr = "transformer.blocks"
    uses_position_ids = False
    description = ("MosaicML's old mosaic_gpt remote code (OF-3B's mpt-1b-redpajama-200b), converted to native "
                   "MPT with QK LayerNorm")

    def released_model_types(self):
        return ("mosaic_gpt",)

    def check_config_mapping(self, conf, where):
        raise ExportError(f"{where}: lang.family mosaic_gpt needs `lang.path` (a released mosaic_gpt folder); "
                          "a random-init `lang.config` is not supported for it")

    # ---------------------------------------------------------------- conversion
    def native_config(self, conf: dict, cj: Path) -> dict:
        """The native MptConfig mapping for a MosaicGPT config; refuses settings the conversion cannot honour."""
        problems = []
        if not conf.get("alibi", False):
            problems.append("alibi: false (learned positions; OpenFlamingo's MPT-1B uses ALiBi)")
        if conf.get("prefix_lm"):
            problems.append("prefix_lm: true")
        if conf.get("attn_clip_qkv") is not None:
            problems.append(f"attn_clip_qkv: {conf['attn_clip_qkv']}")
        if conf.get("logit_scale") is not None:
            problems.append(f"logit_scale: {conf['logit_scale']}")
        if not conf.get("no_bias", False):
            problems.append("no_bias: false (native MPT has no biases)")
        h = conf.get("n_heads")
        if not isinstance(h, int) or h < 1 or h & (h - 1):
            problems.append(f"n_heads: {h} (MosaicGPT's ALiBi slopes equal native MPT's only for a power of 2)")
        for k in ("d_model", "n_layers", "mlp_ratio", "max_seq_len", "vocab_size"):
            if not isinstance(conf.get(k), int):
                problems.append(f"{k}: {conf.get(k)!r} (an integer is required)")
        if problems:
            raise ExportError(f"{cj}: this mosaic_gpt config cannot be converted: " + "; ".join(problems))
        out = {
            "model_type": "mpt", "architectures": ["MptForCausalLM"],
            "d_model": conf["d_model"], "n_heads": conf["n_heads"], "n_layers": conf["n_layers"],
            "expansion_ratio": conf["mlp_ratio"], "max_seq_len": conf["max_seq_len"],
            "vocab_size": conf["vocab_size"], "resid_pdrop": 0.0, "emb_pdrop": 0.0, "learned_pos_emb": False,
            "attn_config": {"attn_type": "multihead_attention", "attn_pdrop": 0.0, "attn_impl": "torch",
                            "clip_qkv": None, "softmax_scale": conf.get("softmax_scale"), "prefix_lm": False,
                            "qk_ln": bool(conf.get("attn_qk_ln", False)), "attn_uses_sequence_id": False,
                            "alibi": True, "alibi_bias_max": conf.get("alibi_bias_max", 8)},
            "init_device": "cpu", "logit_scale": None, "no_bias": True, "verbose": 0,
            "embedding_fraction": conf.get("embedding_fraction", 1.0), "norm_type": "low_precision_layernorm",
            "use_cache": True, "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True,
        }
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if conf.get(k) is not None:
                out[k] = conf[k]
        return out

    def prepare_lm_dir(self, path: Path, workdir: Path, log=None) -> Path:
        from safetensors.torch import save_file

        from ..staged import save_sharded

        path = Path(path)
        conf = self.read_lm_config(path)
        cj = path / "config.json"
        mt = conf.get("model_type")
        if mt != "mosaic_gpt":
            hint = " (a remote-code or native MPT folder: use lang.family mpt)" if mt == "mpt" else ""
            raise ExportError(f"{cj}: model_type {mt!r} does not match lang.family mosaic_gpt (expects "
                              f"'mosaic_gpt'){hint}; fix lang.family or lang.path")
        native = self.native_config(conf, cj)
        sd = {}
        for f in weight_files(path):
            sd.update(load_weight_file(f, lazy=True))  # read tensor by tensor while the shards are written
        out, qk, unknown = {}, {}, []
        for k, v in sd.items():
            m = _QK.match(k)
            if m:
                qk[k] = v.contiguous()  # (small)
                continue
            for pat, rep in _RENAMES:
                if pat.match(k):
                    out[pat.sub(rep, k)] = v
                    break
            else:
                unknown.append(k)
        if unknown:
            raise ExportError(f"{path}: {len(unknown)} parameter(s) of an unknown mosaic_gpt layout: "
                              f"{fmt_keys(unknown)} (expected ln_1/ln_2/attn.Wqkv/attn.out_proj/attn.q_ln/attn.k_ln/"
                              "mlp.mlp_up/mlp.mlp_down per block, transformer.wte and transformer.ln_f)")
        L = native["n_layers"]
        want = {f"transformer.blocks.{i}.{n}.weight" for i in range(L)
                for n in ("norm_1", "norm_2", "attn.Wqkv", "attn.out_proj", "ffn.up_proj", "ffn.down_proj")}
        want |= {"transformer.wte.weight", "transformer.norm_f.weight"}
        missing = sorted(want - set(out))
        if native["attn_config"]["qk_ln"]:
            missing += sorted({f"transformer.blocks.{i}.attn.{n}.weight" for i in range(L) for n in ("q_ln", "k_ln")}
                              - set(qk))
        elif qk:
            raise ExportError(f"{cj}: attn_qk_ln is false but the weights hold {fmt_keys(qk)}")
        if missing:
            raise ExportError(f"{path}: {len(missing)} parameter(s) missing from the weights: {fmt_keys(missing)} "
                              "(the weights do not match config.json, or the download is incomplete)")
        d = Path(workdir) / "lm_native"
        linked_copy(path, d, skip={"config.json", *(f.name for f in weight_files(path)),
                                   "pytorch_model.bin.index.json", "model.safetensors.index.json"})
        for p in list(d.iterdir()):
            if p.suffix == ".py":  # the remote code is not needed (and must not be imported)
                p.unlink()
        (d / "config.json").write_text(json.dumps(native, indent=1, sort_keys=True))
        save_sharded(out, d)  # one model.safetensors; above 1 GiB shards that from_pretrained loads one by one
        if qk:
            save_file(qk, str(d / QK_LN_FILE))
        if log:
            log(f"[export] {path.name}: mosaic_gpt converted to native MPT ({len(out)} tensors renamed"
                + (f", QK LayerNorm on {L} layers" if qk else "") + ")")
        return d

    def after_build(self, lm, lm_dir: Path) -> None:
        qk_file = Path(lm_dir) / QK_LN_FILE
        if not qk_file.is_file():
            return
        from safetensors.torch import load_file

        qk = load_file(str(qk_file))
        d = lm.config.d_model
        eps = lm.config.layer_norm_epsilon
        blocks = lm.old_decoder_blocks if hasattr(lm, "old_decoder_blocks") else lm.transformer.blocks
        for i, block in enumerate(blocks):
            attn = block.attn
            for n in ("q_ln", "k_ln"):
                ln = nn.LayerNorm(d, eps=eps)
                ln.bias = None  # no_bias (MosaicGPT removes every bias)
                with torch.no_grad():
                    ln.weight.copy_(qk[f"transformer.blocks.{i}.attn.{n}.weight"])
                setattr(attn, n, ln)
            attn.forward = types.MethodType(_qk_ln_attention_forward, attn)

    def fix_checkpoint_keys(self, sd: dict, known: set):
        """OpenFlamingo state dicts of a MosaicGPT model name the frozen block parameters the MosaicGPT way
        (only full state dicts carry them; checkpoint.pt as released does not)."""
        renamed = 0
        out = {}
        for k, v in sd.items():
            m = _OF_PREFIX.match(k)
            if m and k not in known:
                k = m.group(1) + "decoder_layer." + _OF_SUB[m.group(2)] + "." + k[m.end():]
                renamed += 1
            elif k.startswith("lang_encoder.transformer.ln_f.") and k not in known:
                k = k.replace("lang_encoder.transformer.ln_f.", "lang_encoder.transformer.norm_f.")
                renamed += 1
            out[k] = v
        return out, ([f"{renamed} MosaicGPT parameter name(s) mapped to native MPT names"] if renamed else [])
