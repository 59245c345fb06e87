"""GPT-NeoX (transformers' GPTNeoXForCausalLM): OF-4B's RedPajama-INCITE-3B, Pythia. Rotary positions, so the
decoder graph takes explicit `position_ids` (cumsum(mask) - 1 under left padding, as HF generate computes)."""
from __future__ import annotations

import torch

from .base import Family, keep_last


class GptNeoX(Family):
    name = "gpt_neox"
    model_type = "gpt_neox"
    hf_class = "GPTNeoXForCausalLM"
    decoder_layers_attr = "gpt_neox.layers"
    uses_position_ids = True
    description = "GPT-NeoX, rotary positions (OF-4B's RedPajama-INCITE-3B)"

    def ignorable_unused_lm_key(self, key: str) -> bool:
        # causal-mask / rotary buffers (non-persistent since transformers 4.29, saved by 4.28): recomputed anyway
        import re

        return re.search(r"(^|\.)attention\.(bias|masked_bias)$|rotary_emb\.inv_freq$", key) is not None

    def dims(self, lm) -> dict:
        c = lm.config
        return {"n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads, "hidden": c.hidden_size,
                "vocab_size": int(lm.embed_out.weight.shape[0]), "max_positions": int(c.max_position_embeddings)}

    # GPTNeoXModel.forward's glue with explicit position ids, real layers
    def run_decoder(self, lm, input_ids, attention_mask, position_ids, logits_keep, pasts):
        base = lm.gpt_neox
        dtype = base.embed_in.weight.dtype
        ext = attention_mask[:, None, None, :].to(dtype)
        ext = (1.0 - ext) * torch.finfo(dtype).min
        h = base.emb_dropout(base.embed_in(input_ids))
        # GPTNeoXAttention slices its causal mask from a [max_pos, max_pos] bool buffer, which the exporter
        # would bake in as a max_pos**2-byte constant; hand it the same lower-triangular mask computed for
        # the actual key length instead (its slice [Pk:Pk+S, :Pk+S] is then exactly the buffer's slice).
        total = attention_mask.shape[1]
        ar = torch.arange(total, device=input_ids.device)
        causal = (ar[None, :] <= ar[:, None])[None, None]
        saved = [layer.decoder_layer.attention.bias for layer in base.layers]
        presents = []
        try:
            for layer, past in zip(base.layers, pasts):
                layer.decoder_layer.attention.bias = causal
                out = layer(h, attention_mask=ext, position_ids=position_ids, layer_past=past, use_cache=True)
                h = out[0]
                presents.append(out[1])
        finally:
            for layer, b in zip(base.layers, saved):
                layer.decoder_layer.attention.bias = b
        h = base.final_layer_norm(h)
        h = keep_last(h, logits_keep)
        return lm.embed_out(h), presents
