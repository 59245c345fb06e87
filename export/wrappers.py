"""ONNX-exportable wrappers around the real OpenFlamingo modules (export/CONTRACT.md).

The wrappers only re-plumb inputs: every weight and every piece of model math is executed by the
OpenFlamingo / open_clip / transformers modules themselves:

* vision: open_clip's `VisionTransformer.forward` (OpenFlamingo sets `output_tokens=True`), returning
  `(pooled, tokens)`; with an open_clip that applies `ln_post` to the tokens (>= 2.23) an explicit
  compensation re-runs the tower's own sub-modules without it (only when asked to).
* perceiver: OpenFlamingo's `PerceiverResampler.forward`.
* language: the LM's embedding, its real decoder blocks wrapped in OpenFlamingo's `FlamingoLayer`
  (which runs the real `GatedCrossAttentionBlock` before each block), final norm and LM head. The only
  replaced piece is OpenFlamingo's stateful conditioning: instead of `media_locations` computed from
  `<image>` tokens plus the `use_cached_media` flag, the graph takes `media_index` (the value
  OpenFlamingo's `text_time` takes) and hands the real `MaskedCrossAttention` an integer
  `media_locations` whose cumulative sum is exactly `media_index`.
* cross-attention cache (contract 3): `XattnKvOnnx` runs each gated cross-attention layer's own `to_kv`
  Linear on the latents (once per media); the decoder graph takes its output per layer (`xattn_kv_{i}`) and
  runs the real `MaskedCrossAttention.forward` with that tensor as `media` and `to_kv` swapped for an
  identity, so everything after the projection is OpenFlamingo's code, unchanged.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


# --------------------------------------------------------------------------------------------------
# torch 2.0.1 legacy-exporter workarounds (PROTOCOL.md §8)
# --------------------------------------------------------------------------------------------------

def _plain_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False):
    """Plain attention with the semantics of F.scaled_dot_product_attention (no dropout at export)."""
    scale = 1.0 / (query.shape[-1] ** 0.5)
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale
    if is_causal:
        L, S = query.shape[-2], key.shape[-2]
        causal = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return torch.matmul(torch.softmax(scores, dim=-1), value)


_SYMBOLICS_REGISTERED = False


def _register_symbolics(opset: int):
    global _SYMBOLICS_REGISTERED
    if _SYMBOLICS_REGISTERED:
        return
    from torch.onnx import symbolic_helper, register_custom_op_symbolic

    def unflatten(g, input, dim, unflattened_size):
        dim = symbolic_helper._get_const(dim, "i", "dim")
        parts = []
        for v in symbolic_helper._unpack_list(unflattened_size):
            v = g.op("Cast", v, to_i=7)  # int64
            parts.append(g.op("Reshape", v, g.op("Constant", value_t=torch.tensor([1]))))
        rank = symbolic_helper._get_tensor_rank(input)
        if rank is None:
            raise RuntimeError("unflatten: input rank unknown at export")
        if dim < 0:
            dim += rank
        shape = g.op("Shape", input)
        head = g.op("Slice", shape, g.op("Constant", value_t=torch.tensor([0])),
                    g.op("Constant", value_t=torch.tensor([dim])))
        tail = g.op("Slice", shape, g.op("Constant", value_t=torch.tensor([dim + 1])),
                    g.op("Constant", value_t=torch.tensor([rank])))
        mid = g.op("Concat", *parts, axis_i=0)
        return g.op("Reshape", input, g.op("Concat", head, mid, tail, axis_i=0))

    register_custom_op_symbolic("aten::unflatten", unflatten, opset)
    _SYMBOLICS_REGISTERED = True


@contextlib.contextmanager
def export_mode(opset: int):
    """Patch what torch 2.0.1's legacy exporter cannot handle, for the duration of an export."""
    import torch.nn.functional as F

    _register_symbolics(opset)
    saved = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = _plain_sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = saved


# --------------------------------------------------------------------------------------------------
# vision encoder
# --------------------------------------------------------------------------------------------------

def visual_tokens_without_ln_post(visual, x):
    """Run an open_clip VisionTransformer with its own sub-modules, returning (pooled, tokens) as
    open_clip <= 2.22 does: tokens are the transformer output (no ln_post), CLS dropped; pooled is
    ln_post(CLS) @ proj. Used only to compensate open_clip >= 2.23."""
    if getattr(visual, "input_patchnorm", False) or getattr(visual, "attn_pool", None) is not None \
            or getattr(visual, "global_average_pool", False):
        raise NotImplementedError("ln_post compensation supports plain CLS-pooled ViTs only")
    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1)
    x = x + visual.positional_embedding.to(x.dtype)
    x = visual.patch_dropout(x)
    x = visual.ln_pre(x)
    x = x.permute(1, 0, 2)
    x = visual.transformer(x)
    x = x.permute(1, 0, 2)
    pooled, tokens = x[:, 0], x[:, 1:]
    pooled = visual.ln_post(pooled)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled, tokens


class VisionEncoderOnnx(nn.Module):
    def __init__(self, visual: nn.Module, compensate_ln_post: bool):
        super().__init__()
        self.visual = visual
        self.compensate_ln_post = compensate_ln_post

    def forward(self, pixels):
        if self.compensate_ln_post:
            pooled, tokens = visual_tokens_without_ln_post(self.visual, pixels)
        else:
            pooled, tokens = self.visual(pixels)  # what Flamingo._encode_vision_x takes as [1]
        return tokens, pooled


class PerceiverOnnx(nn.Module):
    def __init__(self, perceiver: nn.Module):
        super().__init__()
        self.perceiver = perceiver

    def forward(self, patch_tokens):
        return self.perceiver(patch_tokens)


# --------------------------------------------------------------------------------------------------
# language decoder
# --------------------------------------------------------------------------------------------------

def media_locations_from_index(media_index: torch.Tensor) -> torch.Tensor:
    """Integer `media_locations` whose cumsum along the sequence equals `media_index`.

    OpenFlamingo's MaskedCrossAttention computes `text_time = media_locations.cumsum(-1)` and
    attends token i to media `text_time[i]` (0 = none); feeding these deltas makes the real module
    use `media_index` verbatim (for prompts this is the usual boolean media mask)."""
    prev = torch.cat([torch.zeros_like(media_index[:, :1]), media_index[:, :-1]], dim=1)
    return media_index - prev


def xattn_layers(lm) -> list:
    """Indices of the decoder layers that carry a gated cross-attention block (OpenFlamingo's FlamingoLayer)."""
    return [i for i, layer in enumerate(lm._get_decoder_layers()) if layer.gated_cross_attn_layer is not None]


class XattnKvOnnx(nn.Module):
    """latents [B,T,L,Dv] -> for every gated cross-attention layer i, its `to_kv(latents)` [B,T,L,2*inner]
    (keys in the first half of the last axis, values in the second: MaskedCrossAttention's `.chunk(2, -1)`)."""

    def __init__(self, flamingo: nn.Module):
        super().__init__()
        layers = flamingo.lang_encoder._get_decoder_layers()
        self.layers = xattn_layers(flamingo.lang_encoder)
        self.to_kv = nn.ModuleList([layers[i].gated_cross_attn_layer.attn.to_kv for i in self.layers])

    def forward(self, latents):
        return tuple(proj(latents) for proj in self.to_kv)


@contextlib.contextmanager
def to_kv_identity(lm):
    """Inside, every MaskedCrossAttention's `to_kv` is an identity: `media` is then already its projection."""
    attns = [layer.gated_cross_attn_layer.attn for layer in lm._get_decoder_layers()
             if layer.gated_cross_attn_layer is not None]
    saved = [a.to_kv for a in attns]
    for a in attns:
        a.to_kv = nn.Identity()
    try:
        yield
    finally:
        for a, p in zip(attns, saved):
            a.to_kv = p


class LangDecoderOnnx(nn.Module):
    """One graph for prefill and decode; see CONTRACT.md (lang_decoder.onnx). The family-specific glue
    (embedding, masks/positions, blocks with an explicit cache, head) is the family module's run_decoder.

    cached_xattn (contract 3): the graph takes `xattn_kv_{i}` (XattnKvOnnx's outputs for the row's media) for
    each gated layer i instead of `vision_latents`, so decode steps never recompute the media keys/values."""

    def __init__(self, flamingo: nn.Module, family, cached_xattn: bool = True):
        super().__init__()
        self.lm = flamingo.lang_encoder
        self.family = family
        self.n_layers = len(self.lm._get_decoder_layers())
        self.cached_xattn = cached_xattn
        self.xattn_layers = xattn_layers(self.lm) if cached_xattn else []

    def _condition(self, media, media_index):
        """media: the vision latents (all layers), or {layer index: that layer's xattn_kv}."""
        media_locations = media_locations_from_index(media_index)
        for i, layer in enumerate(self.lm._get_decoder_layers()):
            layer.condition_vis_x(media.get(i) if isinstance(media, dict) else media)
            layer.condition_media_locations(media_locations)
            layer.condition_use_cached_media(False)

    def _clear(self):
        for layer in self.lm._get_decoder_layers():
            layer.condition_vis_x(None)
            layer.condition_media_locations(None)
            layer.condition_use_cached_media(None)

    def forward(self, input_ids, attention_mask, *rest):
        rest = list(rest)
        position_ids = rest.pop(0) if self.family.uses_position_ids else None
        media_index = rest.pop(0)
        if self.cached_xattn:
            logits_keep = rest.pop(0)
            media = {i: rest.pop(0) for i in self.xattn_layers}
        else:
            media = rest.pop(0)
            logits_keep = rest.pop(0)
        past = rest
        pasts = [(past[2 * i], past[2 * i + 1]) for i in range(self.n_layers)]
        self._condition(media, media_index)
        try:
            with (to_kv_identity(self.lm) if self.cached_xattn else contextlib.nullcontext()):
                logits, presents = self.family.run_decoder(self.lm, input_ids, attention_mask, position_ids,
                                                           logits_keep, pasts)
        finally:
            self._clear()
        flat = []
        for k, v in presents:
            flat += [k, v]
        return (logits, *flat)


def lang_io_names(family, n_layers: int, xattn: list = None):
    """Decoder graph input/output names for a family (export/families) with n_layers KV caches; with `xattn`
    (the gated layers' indices, contract 3) the cached cross-attention inputs replace `vision_latents`."""
    inputs = family.graph_inputs()
    if xattn is not None:
        inputs.remove("vision_latents")
        inputs += [f"xattn_kv_{i}" for i in xattn]
    outputs = ["logits"]
    for i in range(n_layers):
        inputs += [f"past_key_{i}", f"past_value_{i}"]
        outputs += [f"present_key_{i}", f"present_value_{i}"]
    return inputs, outputs
