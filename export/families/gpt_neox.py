"""GPT-NeoX (transformers' GPTNeoXForCausalLM): OF-4B's RedPajama-INCITE-3B, Pythia. Rotary positions, so the
decoder graph takes explicit `position_ids` (cumsum(mask) - 1 under left padding, as HF generate computes)."""
from __future__ import annotations

import re

import torch

from ..config import ExportError
from .base import Family, keep_last, weight_files

# Buffers GPTNeoXAttention registered as persistent in transformers <= 4.28 (non-persistent since): the causal
# mask `bias` (bool [1,1,P,P], lower-triangular) and `masked_bias` (scalar -1e9). open_flamingo 2.0.0 pinned
# transformers 4.28, and its filter_state_dict_to_trainable keeps buffers, so OF-4B's checkpoint.pt holds them.
LEGACY_BUFFER = re.compile(r"(^|\.)attention\.(bias|masked_bias)$")


class GptNeoX(Family):
    name = "gpt_neox"
    model_type = "gpt_neox"
    hf_class = "GPTNeoXForCausalLM"
    decoder_layers_attr = "gpt_neox.layers"
    uses_position_ids = True
    description = "GPT-NeoX, rotary positions (OF-4B's RedPajama-INCITE-3B)"

    def fix_checkpoint_keys(self, sd: dict, known: set):
        drop = [k for k in sd if k not in known and LEGACY_BUFFER.search(k)]
        for k in drop:
            t = sd[k]
            if k.endswith("masked_bias"):
                ok = t.numel() == 1 and float(t.reshape(())) == -1e9
            else:
                ok = t.ndim == 4 and t.shape[0] == t.shape[1] == 1 and t.shape[2] == t.shape[3] and \
                    torch.equal(t.bool(), torch.ones(t.shape[2:], dtype=torch.bool).tril()[None, None])
            if not ok:
                raise ExportError(f"key {k} (shape {tuple(t.shape)}, {t.dtype}) is not the causal-mask buffer "
                                  "transformers 4.28 saved for GPT-NeoX attention; this checkpoint's layout is "
                                  "unknown")
        if not drop:
            return sd, []
        gone = set(drop)
        kinds = sorted({k.rsplit(".", 1)[1] for k in drop})
        return {k: v for k, v in sd.items() if k not in gone}, [
            f"dropped {len(drop)} non-persistent GPT-NeoX attention buffer(s) ({', '.join(kinds)}; saved by "
            "transformers <= 4.28, checked to be the causal mask / -1e9)"]

    def prepare_lm_dir(self, path, workdir, log=None):
        """The released folder itself, once its model_type and its weight files (all shards) are there."""
        d = super().prepare_lm_dir(path, workdir, log)
        weight_files(d)
        return d

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
