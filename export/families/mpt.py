"""MPT as transformers' native MptForCausalLM (ALiBi, no position ids): the tiny MPT fixture, and OF-9B's
mpt-7b once its remote-code config is loaded natively (see prepare_lm_dir)."""
from __future__ import annotations

import torch

from .base import Family, keep_last


class Mpt(Family):
    name = "mpt"
    model_type = "mpt"
    hf_class = "MptForCausalLM"
    decoder_layers_attr = "transformer.blocks"
    uses_position_ids = False
    description = "MPT with ALiBi as transformers' MptForCausalLM (OF-9B's mpt-7b)"

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
