"""LLaMA (transformers 4.33 `LlamaForCausalLM`): OpenFlamingo v1 9B and Med-Flamingo (LLaMA-7B).

What differs from the other families, and how the export handles it:

* Rotary positions applied with explicit position ids, so the decoder graph takes `position_ids`
  (cumsum(mask) - 1 under left padding, as Hugging Face `generate` computes them for LLaMA).
  `LlamaRotaryEmbedding.forward` slices its cos/sin tables to the key length with a Python int, which a trace
  could freeze; during export each attention is handed the whole tables instead (`apply_rotary_pos_emb` then
  gathers the rows of `position_ids`, the same numbers), so the graph's length limit is the tables' size,
  `max_position_embeddings` (`lang.max_positions`).
* RMSNorm, SwiGLU MLP, untied LM head: all run by the real modules.
* The decoder mask is built for the actual key length (causal AND padding, additive `finfo.min`), the mask
  `LlamaModel._prepare_decoder_attention_mask` builds, without its Python-int slicing.
* BOS: LLaMA's tokenizer prepends `<s>` to every prompt (after the left padding: `[<PAD>.. <s> tokens]`),
  which OpenFlamingo's eval keeps (it tokenises with the default `add_special_tokens=True`); the manifest says
  `tokenizer.add_bos: true` and `special_tokens.bos`.
* The LM-head rows of OpenFlamingo's 3 added tokens (`<|endofchunk|>`, `<image>`, `<PAD>`): OpenFlamingo trains
  and saves the input embeddings only (factory: `get_input_embeddings().requires_grad_(True)`;
  `filter_state_dict_to_trainable` keeps names containing "embed", and LLaMA's head is `lm_head`), and
  `resize_token_embeddings` draws the new head rows from N(0, initializer_range) with the global torch RNG on
  every load. No published file holds them: the export draws them from an explicit seed (`added_head_seed`),
  records it in the manifest and warns (see build.seed_added_head_rows).
* Checkpoints saved with transformers <= 4.30 hold `…self_attn.rotary_emb.inv_freq` buffers (persistent then,
  non-persistent in 4.33): they are dropped after checking that they hold exactly the standard frequencies.
"""
from __future__ import annotations

import re

import torch

from ..config import ExportError
from .base import Family, full_rotary_tables, keep_last, weight_files

INV_FREQ = re.compile(r"(^|\.)self_attn\.rotary_emb\.inv_freq$")


def _standard_inv_freq(n: int, base: float = 10000.0) -> torch.Tensor:
    dim = 2 * n
    return 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))


def whole_rotary_tables(layers):
    """Inside, every LlamaRotaryEmbedding returns its full cos/sin tables whatever `seq_len` it is given."""
    return full_rotary_tables(layer.decoder_layer.self_attn.rotary_emb for layer in layers)


class Llama(Family):
    name = "llama"
    model_type = "llama"
    hf_class = "LlamaForCausalLM"
    decoder_layers_attr = "model.layers"  # open_flamingo's mapping for "llama"
    uses_position_ids = True
    add_bos = True
    #: the LM head rows of OpenFlamingo's added tokens are in no published file (see the module docstring)
    added_head_rows_unpublished = True
    description = "LLaMA, RoPE with position ids, RMSNorm, BOS (OpenFlamingo v1 9B, Med-Flamingo: LLaMA-7B)"

    def check_config_mapping(self, conf: dict, where: str) -> None:
        super().check_config_mapping(conf, where)
        self._check_supported(conf, where)

    @staticmethod
    def _check_supported(conf: dict, where: str) -> None:
        heads = conf.get("num_attention_heads")
        kv = conf.get("num_key_value_heads", heads)
        if kv not in (None, heads):
            raise ExportError(f"{where}: num_key_value_heads {kv} != num_attention_heads {heads} (grouped-query "
                              "attention, LLaMA-2 70B style) is not supported: the contract's KV cache has one "
                              "head count (LLaMA-1 / LLaMA-7B has none)")
        if conf.get("rope_scaling"):
            raise ExportError(f"{where}: rope_scaling {conf['rope_scaling']!r} is not supported (LLaMA-7B has "
                              "none)")

    def after_build(self, lm, lm_dir) -> None:
        c = lm.config
        self._check_supported({"num_attention_heads": c.num_attention_heads,
                               "num_key_value_heads": getattr(c, "num_key_value_heads", c.num_attention_heads),
                               "rope_scaling": getattr(c, "rope_scaling", None)}, f"{lm_dir}/config.json")

    def fix_checkpoint_keys(self, sd: dict, known: set):
        drop = [k for k in sd if k not in known and INV_FREQ.search(k)]
        for k in drop:
            t = sd[k]
            if t.ndim != 1 or not torch.allclose(t.float(), _standard_inv_freq(t.shape[0]), rtol=1e-6, atol=0):
                raise ExportError(f"key {k} holds rotary frequencies that are not LLaMA's standard ones "
                                  "(base 10000): this checkpoint's LM uses another RoPE and cannot be exported "
                                  "as lang.family llama")
        if not drop:
            return sd, []
        out = {k: v for k, v in sd.items() if k not in set(drop)}
        return out, [f"dropped {len(drop)} `rotary_emb.inv_freq` buffer(s) (saved by transformers <= 4.30, "
                     "non-persistent since; checked equal to the standard frequencies)"]

    def prepare_lm_dir(self, path, workdir, log=None):
        """The released folder itself, once its model_type and its weight files (all shards) are there."""
        d = super().prepare_lm_dir(path, workdir, log)
        weight_files(d)
        return d

    def dims(self, lm) -> dict:
        c = lm.config
        return {"n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads, "hidden": c.hidden_size,
                "vocab_size": int(lm.lm_head.weight.shape[0]), "max_positions": int(c.max_position_embeddings)}

    # LlamaModel.forward's glue with explicit positions and a mask built for the actual length, real layers
    def run_decoder(self, lm, input_ids, attention_mask, position_ids, logits_keep, pasts):
        base = lm.model
        dtype = base.embed_tokens.weight.dtype
        h = base.embed_tokens(input_ids)
        S = input_ids.shape[1]
        total = attention_mask.shape[1]
        q_pos = torch.arange(S, device=input_ids.device)[:, None] + (total - S)
        k_pos = torch.arange(total, device=input_ids.device)[None, :]
        allowed = (k_pos <= q_pos)[None, None] & attention_mask[:, None, None, :].to(torch.bool)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=h.device).masked_fill(~allowed,
                                                                                   torch.finfo(dtype).min)
        presents = []
        with whole_rotary_tables(base.layers):
            for layer, past in zip(base.layers, pasts):
                out = layer(h, attention_mask=mask, position_ids=position_ids, past_key_value=past, use_cache=True)
                h = out[0]
                presents.append(out[-1])
        h = base.norm(h)
        h = keep_last(h, logits_keep)
        return lm.lm_head(h), presents
