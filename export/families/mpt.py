"""MPT as transformers' native MptForCausalLM (ALiBi, no position ids): the tiny MPT fixture, and OF-9B's
mpt-7b once its remote-code config is loaded natively (see prepare_lm_dir)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import ExportError
from .base import Family, keep_last, linked_copy

# remote-code (MosaicML MPTForCausalLM) settings that transformers' native MPT does not implement: a folder
# using any of them cannot be loaded natively without silently changing the model
_NATIVE_IGNORES = {
    "attn_config.qk_ln": (False, None),
    "attn_config.clip_qkv": (None,),
    "attn_config.prefix_lm": (False, None),
    "attn_config.attn_type": ("multihead_attention", None),
    "attn_config.alibi": (True,),
    "logit_scale": (None,),
    "no_bias": (True,),
    "norm_type": ("low_precision_layernorm", "layernorm", None),
    "tie_word_embeddings": (True, None),
}


class Mpt(Family):
    name = "mpt"
    model_type = "mpt"
    hf_class = "MptForCausalLM"
    decoder_layers_attr = "transformer.blocks"
    uses_position_ids = False
    description = "MPT with ALiBi as transformers' MptForCausalLM (OF-9B's mpt-7b)"

    def prepare_lm_dir(self, path: Path, workdir: Path, log=None) -> Path:
        """A native MPT folder is used as is. A remote-code folder (config.json with `auto_map`, MosaicML's
        MPTForCausalLM as OF-9B's mpt-7b is released) has the parameters of native MPT under the same names:
        it is loaded natively with `auto_map` stripped (its Python files are never run), after refusing every
        setting native MPT would silently ignore (export/tests prove the logits identical to the remote code)."""
        path = Path(path)
        conf = self.read_lm_config(path)
        cj = path / "config.json"
        mt = conf.get("model_type")
        if mt != "mpt":
            hint = " (MosaicML's old mosaic_gpt code, OF-3B: use lang.family mosaic_gpt)" if mt == "mosaic_gpt" else ""
            raise ExportError(f"{cj}: model_type {mt!r} does not match lang.family {self.name} (expects 'mpt')"
                              f"{hint}; fix lang.family or lang.path")
        if "auto_map" not in conf:
            return path
        bad = []
        for dotted, ok in _NATIVE_IGNORES.items():
            node = conf
            for part in dotted.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node not in ok:
                bad.append(f"{dotted}: {json.dumps(node)}")
        if bad:
            raise ExportError(f"{cj}: this remote-code MPT uses setting(s) transformers' native MPT ignores: "
                              f"{'; '.join(bad)} — loading it natively would silently give wrong logits, so it is "
                              "refused (qk_ln true is MosaicGPT-style QK LayerNorm, supported only for "
                              "lang.family mosaic_gpt)")
        native = {k: v for k, v in conf.items() if k != "auto_map"}
        d = Path(workdir) / "lm_native"
        linked_copy(path, d, skip={"config.json"})
        for p in list(d.iterdir()):
            if p.suffix == ".py":  # never imported: the folder is loaded as transformers' MptForCausalLM
                p.unlink()
        (d / "config.json").write_text(json.dumps(native, indent=1, sort_keys=True))
        if log:
            log(f"[export] {path.name}: remote-code MPT loaded as transformers' MptForCausalLM (auto_map stripped)")
        return d

    def dims(self, lm) -> dict:
        c = lm.config
        return {"n_layers": c.n_layers, "n_heads": c.n_heads, "hidden": c.d_model,
                "vocab_size": int(lm.lm_head.weight.shape[0]), "max_positions": int(c.max_seq_len)}

    def alibi(self, lm, total: int, device):
        from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

        return build_mpt_alibi_tensor(lm.transformer.num_heads, total, device=device)

    # MptModel.forward's glue, with the ALiBi bias and the causal+padding mask built for the actual key length
    # (MptModel slices them with Python ints, which a trace would freeze)
    def run_decoder(self, lm, input_ids, attention_mask, position_ids, logits_keep, pasts):
        base = lm.transformer
        S = input_ids.shape[1]
        total = attention_mask.shape[1]
        past_len = total - S
        alibi = self.alibi(lm, total, input_ids.device)
        q_pos = torch.arange(S, device=input_ids.device)[:, None] + past_len
        k_pos = torch.arange(total, device=input_ids.device)[None, :]
        causal = k_pos > q_pos  # True = masked, as MptModel's mask
        padding = ~(attention_mask[:, None, None, :].to(torch.bool))
        mask = padding | causal[None, None, :, :]
        h = base.wte(input_ids)
        presents = []
        for block, past in zip(base.blocks, pasts):
            out = block(h, position_bias=alibi, attention_mask=mask, layer_past=past, use_cache=True)
            h = out[0]
            presents.append(out[1])
        h = base.norm_f(h)
        h = keep_last(h, logits_keep)
        return lm.lm_head(h), presents
