"""Export the contract graphs of a built OpenFlamingo model (torch.onnx legacy exporter, opset 17)."""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from .config import ExportError
from .wrappers import (LangDecoderOnnx, PerceiverOnnx, VisionEncoderOnnx, XattnKvOnnx, export_mode, lang_io_names,
                       visual_tokens_without_ln_post, xattn_layers)

OPSET = 17
# One ONNX protobuf cannot exceed 2 GiB: graphs whose weights come near it keep their tensors in one external
# data file `<graph>.onnx.data` beside the graph (listed and hashed in model.yaml). FLAMINGO_EXPORT_EXTERNAL_DATA=1
# forces that layout (tests use it on the tiny models).
EXTERNAL_DATA_BYTES = 1_800_000_000
# Within low_memory_layout() (the staged export) every graph is external and unfolded whatever its size, its
# weights written by export/staged.py (attach_params_external), not by torch: for graphs under 2 GiB torch builds
# the whole protobuf in memory even when writing to a file, and holds it, its bytes and the checker's parse at once
# (3-4x the graph's weights, measured on a 1.07 GB stack of Linears; OpenFlamingo-3B's vision encoder, 1.22 GB, is
# exported while the whole 10.2 GB model is resident).
_LOW_MEMORY = False


@contextlib.contextmanager
def low_memory_layout():
    global _LOW_MEMORY
    prev, _LOW_MEMORY = _LOW_MEMORY, True
    try:
        yield
    finally:
        _LOW_MEMORY = prev


def detect_ln_post(visual) -> bool:
    """True when this open_clip applies ln_post to the patch tokens it returns (open_clip >= 2.23)."""
    h, w = visual.image_size
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(1, 3, h, w, generator=g)
    with torch.no_grad():
        out = visual(x)
        if not isinstance(out, tuple):
            raise ExportError("the open_clip vision tower does not return patch tokens (output_tokens is off)")
        _, tokens = out
        _, plain = visual_tokens_without_ln_post(visual, x)
    if torch.allclose(tokens, plain, atol=1e-5, rtol=1e-4):
        return False
    if torch.allclose(tokens, visual.ln_post(plain), atol=1e-5, rtol=1e-4):
        return True
    raise ExportError("cannot tell whether open_clip applies ln_post to the patch tokens: its tokens match "
                      "neither the plain transformer output nor ln_post of it (unsupported open_clip version)")


def lang_dims(built) -> dict:
    d = built.lm_family.dims(built.model.lang_encoder)
    return {"n_layers": int(d["n_layers"]), "n_heads": int(d["n_heads"]), "head_dim": int(d["hidden"] // d["n_heads"]),
            "hidden": int(d["hidden"]), "vocab_size": int(d["vocab_size"]), "max_positions": int(d["max_positions"])}


def external_data_file(path) -> Path:
    """Where the tensors of graph `path` live when it uses external data."""
    return Path(str(path) + ".data")


def _export(module, args, path, input_names, output_names, dynamic_axes):
    weights = sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))
    external = _LOW_MEMORY or weights > EXTERNAL_DATA_BYTES or os.environ.get("FLAMINGO_EXPORT_EXTERNAL_DATA") == "1"
    # torch's constant folding writes a transposed COPY of every Linear weight (MatMul(x, W^T)) while the
    # module still holds the original: twice the weights in memory. Above the external-data size it is left to
    # onnxruntime, which folds the same Transposes when a session loads the graph (the runtime's level 3).
    # FLAMINGO_EXPORT_NO_FOLD=1 forces that on any size (tests use it on the tiny models).
    fold = not _LOW_MEMORY and weights <= EXTERNAL_DATA_BYTES and os.environ.get("FLAMINGO_EXPORT_NO_FOLD") != "1"
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(dir=Path(path).parent) as work:
        warnings.simplefilter("ignore")
        # In memory when it fits; else to a file, which lets torch write > 2 GiB models (external tensors).
        target = Path(work) / "graph.onnx" if external else io.BytesIO()
        from .staged import attach_params_external, export_lean, stream_external_data

        # the exporter prints diagnostics; export_lean: the same graph without torch's transient second copies of
        # the weights (export/staged.py); within low_memory_layout the graph is written without its weights, which
        # attach_params_external then writes from the module's own tensors
        with torch.no_grad(), contextlib.redirect_stdout(sys.stderr), export_lean(module, _LOW_MEMORY) as lean:
            torch.onnx.export(module, args, str(target) if external else target, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes, opset_version=OPSET,
                              do_constant_folding=fold, export_params=not _LOW_MEMORY, verbose=False)
        if _LOW_MEMORY:
            attach_params_external(target, lean.params, Path(path), external_data_file(path).name)
            return
        if not external:
            Path(path).write_bytes(target.getvalue())
            return
        # torch's tensor files (in `work`, deleted anyway) are consumed as they are copied: disk holds ~1x weights
        stream_external_data(target, Path(path), external_data_file(path).name, consume=True)


@contextlib.contextmanager
def explicit_layernorm_bias(model):
    """Give bias-less LayerNorms (MPT's) an explicit zero bias while exporting: onnxruntime's
    SkipLayerNormFusion (graph optimisation level >= extended) crashes on a LayerNormalization node without
    its optional bias input (seen with onnxruntime 1.32). Numerically a no-op."""
    patched = []
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine and m.bias is None:
            m.bias = torch.nn.Parameter(torch.zeros_like(m.weight), requires_grad=False)
            patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            m.bias = None


def graph_info(built) -> dict:
    """The manifest's vision / perceiver / lang sections, read off the PyTorch modules (before any is freed)."""
    model = built.model
    visual, perceiver = model.vision_encoder, model.perceiver
    n_patches = visual.grid_size[0] * visual.grid_size[1]
    # cross-attention keys/values (contract 3): the gated layers and their to_kv width
    xl = xattn_layers(model.lang_encoder)
    layers = model.lang_encoder._get_decoder_layers()
    kv_width = layers[xl[0]].gated_cross_attn_layer.attn.to_kv.out_features
    return {
        "vision": {"patch_size": int(visual.patch_size[0]), "num_patches": int(n_patches), "width": int(model.vis_dim),
                   "embed_dim": int(visual.output_dim), "image_size": int(visual.image_size[0])},
        "perceiver": {"num_latents": int(perceiver.latents.shape[0]), "depth": len(perceiver.layers),
                      "heads": int(perceiver.layers[0][0].heads),
                      "dim_head": int(perceiver.layers[0][0].to_q.out_features // perceiver.layers[0][0].heads),
                      "max_frames": int(perceiver.frame_embs.shape[0] if perceiver.frame_embs is not None else 1),
                      "frame_embeddings": perceiver.frame_embs is not None},
        "lang": lang_dims(built),
        "cross_attn_cache": {"layers": [int(i) for i in xl], "width": int(kv_width)},
    }


def export_vision(built, out_dir: Path, compensate_ln_post: bool, info: dict, g) -> None:
    visual = built.model.vision_encoder
    h, w = visual.image_size
    with export_mode(OPSET), explicit_layernorm_bias(visual):
        _export(VisionEncoderOnnx(visual, compensate_ln_post).eval(), (torch.randn(2, 3, h, w, generator=g),),
                Path(out_dir) / "vision_encoder.onnx", ["pixels"], ["patch_tokens", "image_embedding"],
                {"pixels": {0: "N"}, "patch_tokens": {0: "N"}, "image_embedding": {0: "N"}})


def export_perceiver(built, out_dir: Path, info: dict, g) -> None:
    f_ex = min(2, info["perceiver"]["max_frames"])
    n_patches, dv = info["vision"]["num_patches"], info["vision"]["width"]
    with export_mode(OPSET), explicit_layernorm_bias(built.model.perceiver):
        _export(PerceiverOnnx(built.model.perceiver).eval(), (torch.randn(2, 3, f_ex, n_patches, dv, generator=g),),
                Path(out_dir) / "perceiver.onnx", ["patch_tokens"], ["latents"],
                {"patch_tokens": {0: "B", 1: "T", 2: "F"}, "latents": {0: "B", 1: "T"}})


def export_xattn_kv(built, out_dir: Path, info: dict, g) -> list:
    """Cross-attention keys/values of media latents (contract 3): once per media, not per decode step. Returns
    example outputs, the decoder's example inputs."""
    dv, n_latents = info["vision"]["width"], info["perceiver"]["num_latents"]
    B, T = 2, 2
    kv_mod = XattnKvOnnx(built.model).eval()
    lat_ex = torch.randn(B, T, n_latents, dv, generator=g)
    kv_names = [f"xattn_kv_{i}" for i in info["cross_attn_cache"]["layers"]]
    with export_mode(OPSET), explicit_layernorm_bias(built.model.lang_encoder):
        _export(kv_mod, (lat_ex,), Path(out_dir) / "xattn_kv.onnx", ["latents"], kv_names,
                {"latents": {0: "B", 1: "T"}, **{n: {0: "B", 1: "T"} for n in kv_names}})
    with torch.no_grad():
        return list(kv_mod(lat_ex))


def export_decoder(built, out_dir: Path, info: dict, g, kv_ex: list) -> None:
    dims = info["lang"]
    xl = info["cross_attn_cache"]["layers"]
    kv_names = [f"xattn_kv_{i}" for i in xl]
    B, S, Pk = 2, 4, 3
    H, Dh, L = dims["n_heads"], dims["head_dim"], dims["n_layers"]
    ids = torch.randint(0, min(100, dims["vocab_size"]), (B, S), generator=g)
    args = [ids, torch.ones(B, Pk + S, dtype=torch.long)]
    fam = built.lm_family
    if fam.uses_position_ids:
        args.append(torch.arange(Pk, Pk + S).repeat(B, 1))
    args += [torch.tensor([[1, 1, 2, 2], [0, 1, 1, 1]]), torch.tensor([2]), *kv_ex]
    for _ in range(L):
        args += [torch.randn(B, H, Pk, Dh, generator=g), torch.randn(B, H, Pk, Dh, generator=g)]
    in_names, out_names = lang_io_names(fam, L, xl)
    dyn = {"input_ids": {0: "B", 1: "S"}, "attention_mask": {0: "B", 1: "Pk+S"},
           "media_index": {0: "B", 1: "S"}, "logits": {0: "B", 1: "K"},
           **{n: {0: "B", 1: "T"} for n in kv_names}}
    if fam.uses_position_ids:
        dyn["position_ids"] = {0: "B", 1: "S"}
    for i in range(L):
        dyn[f"past_key_{i}"] = dyn[f"past_value_{i}"] = {0: "B", 2: "Pk"}
        dyn[f"present_key_{i}"] = dyn[f"present_value_{i}"] = {0: "B", 2: "Pk+S"}
    with export_mode(OPSET), explicit_layernorm_bias(built.model.lang_encoder):
        _export(LangDecoderOnnx(built.model, fam, cached_xattn=True).eval(), tuple(args),
                Path(out_dir) / "lang_decoder.onnx", in_names, out_names, dyn)


def export_graphs(built, out_dir: Path, compensate_ln_post: bool, after=None) -> dict:
    """The four graphs, in the order vision, perceiver, cross-attention keys/values, decoder (one seeded generator for their example inputs).
    `after(name)` runs after each graph is written (export/staged.py frees that PyTorch module there)."""
    info = graph_info(built)
    g = torch.Generator().manual_seed(0)
    kv_ex: list = []
    for name, fn in (("vision_encoder", lambda: export_vision(built, out_dir, compensate_ln_post, info, g)),
                     ("perceiver", lambda: export_perceiver(built, out_dir, info, g)),
                     ("xattn_kv", lambda: kv_ex.extend(export_xattn_kv(built, out_dir, info, g))),
                     ("lang_decoder", lambda: export_decoder(built, out_dir, info, g, kv_ex))):
        fn()
        if after is not None:
            after(name)
    return info
