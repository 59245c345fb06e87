"""Reading OpenFlamingo checkpoints as released: format, wrappers and prefixes, and what their keys imply.

checkpoint.pt as published holds what open_flamingo's `filter_state_dict_to_trainable` keeps (perceiver, gated
cross-attention, embeddings), sometimes with a `module.` prefix on every key (DDP/FSDP), sometimes wrapped in
`{"model_state_dict": ...}` (training checkpoints). OpenFlamingo's own eval strips `module.` only inside that
wrapper, so a raw prefixed file loads nothing there with strict=False; here both forms load, and a file whose
keys match nothing is an error, never an empty load.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .config import ExportError

PREFIX = "module."
# decoder-layer attribute of each LM layout, as it appears in checkpoint keys
DECODER_PREFIXES = {
    "lang_encoder.gpt_neox.layers.": "GPT-NeoX",
    "lang_encoder.transformer.blocks.": "MPT / mosaic_gpt",
    "lang_encoder.model.layers.": "LLaMA",
}
_XATTN = re.compile(r"^(lang_encoder\.[A-Za-z_.]+?)\.(\d+)\.gated_cross_attn_layer\.")


def fmt_keys(keys, n=6) -> str:
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    return s + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def load_state_dict_file(path, log=None, lazy: bool = False) -> dict:
    """The checkpoint's state dict: .pt/.pth/.bin (torch.load) or .safetensors; `model_state_dict` /
    `state_dict` wrappers unwrapped; a `module.` prefix on every key stripped (said in the log). With `lazy`, a
    torch zip archive's tensors are read only when used (export/staged.py LazyTensor)."""
    import torch

    from .staged import LazyTensor, is_torch_zip, lazy_state_dict

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        elif lazy and is_torch_zip(path):
            sd = lazy_state_dict(path)
        else:
            sd = torch.load(str(path), map_location="cpu")
    except Exception as e:  # truncated download, not a checkpoint at all
        raise ExportError(f"checkpoint {path} cannot be read ({type(e).__name__}: {str(e)[:200]}); the file is "
                          f"truncated or not a checkpoint ({path.stat().st_size} bytes) — download it again")
    wrapper = None
    if isinstance(sd, dict) and isinstance(sd.get("model_state_dict"), dict):  # OpenFlamingo training checkpoints
        sd, wrapper = sd["model_state_dict"], "model_state_dict"
    elif isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd, wrapper = sd["state_dict"], "state_dict"
    if not isinstance(sd, dict) or not all(isinstance(v, (torch.Tensor, LazyTensor)) for v in sd.values()):
        raise ExportError(f"checkpoint {path} is not a state dict (a mapping of parameter names to tensors)")
    if not sd:
        raise ExportError(f"checkpoint {path} holds no parameters" + (f" (its `{wrapper}` is empty)" if wrapper else ""))
    prefixed = [k for k in sd if k.startswith(PREFIX)]
    if prefixed and len(prefixed) != len(sd):
        plain = [k for k in sd if not k.startswith(PREFIX)]
        raise ExportError(f"checkpoint {path}: {len(prefixed)} key(s) carry the `module.` prefix and {len(plain)} "
                          f"do not ({fmt_keys(plain, 3)}): a mixed layout; re-save it with one naming")
    if prefixed:
        sd = {k[len(PREFIX):]: v for k, v in sd.items()}
    if log and (prefixed or wrapper):
        what = [f"unwrapped `{wrapper}`"] if wrapper else []
        what += ["stripped the `module.` prefix from every key"] if prefixed else []
        log(f"[export] checkpoint {path.name}: {' and '.join(what)} ({len(sd)} tensors)")
    return sd


@dataclass
class Layout:
    """What a checkpoint's keys say about the model it belongs to."""
    decoder_prefix: Optional[str] = None        # e.g. lang_encoder.transformer.blocks.
    lm_kind: Optional[str] = None               # human name of that layout
    xattn_layers: List[int] = field(default_factory=list)
    every_n: Optional[int] = None               # cross_attn_every_n_layers the keys imply (None: not regular)
    lang_dim: Optional[int] = None              # width of the LM (cross-attention output)
    vis_dim: Optional[int] = None               # width of the perceiver (vision tokens)
    embed_key: Optional[str] = None
    embed_rows: Optional[int] = None
    unknown: List[str] = field(default_factory=list)   # keys of no known OpenFlamingo layout

    def describe(self) -> str:
        parts = []
        if self.lm_kind:
            parts.append(f"{self.lm_kind} decoder ({self.decoder_prefix}N)")
        if self.xattn_layers:
            every = f"every {self.every_n} layer(s)" if self.every_n else "at irregular layers"
            parts.append(f"gated cross-attention before {len(self.xattn_layers)} layer(s), {every}")
        if self.lang_dim:
            parts.append(f"LM width {self.lang_dim}")
        if self.embed_rows:
            parts.append(f"{self.embed_rows} embedding rows")
        return ", ".join(parts) or "no OpenFlamingo keys"


def analyse(sd: Dict[str, object]) -> Layout:
    lay = Layout()
    idx = {}
    for k in sd:
        m = _XATTN.match(k)
        if m:
            idx.setdefault(m.group(1) + ".", set()).add(int(m.group(2)))
    if idx:
        lay.decoder_prefix = max(idx, key=lambda p: len(idx[p]))
        lay.lm_kind = DECODER_PREFIXES.get(lay.decoder_prefix, "unknown")
        layers = sorted(idx[lay.decoder_prefix])
        lay.xattn_layers = layers
        n = layers[0] + 1
        if all(i == (j + 1) * n - 1 for j, i in enumerate(layers)):
            lay.every_n = n
        q = f"{lay.decoder_prefix}{layers[0]}.gated_cross_attn_layer.attn.to_q.weight"
        kv = f"{lay.decoder_prefix}{layers[0]}.gated_cross_attn_layer.attn.to_kv.weight"
        if q in sd:
            lay.lang_dim = int(sd[q].shape[1])
        if kv in sd:
            lay.vis_dim = int(sd[kv].shape[1])
    for k in ("lang_encoder.transformer.wte.weight", "lang_encoder.gpt_neox.embed_in.weight",
              "lang_encoder.model.embed_tokens.weight"):
        if k in sd:
            lay.embed_key, lay.embed_rows = k, int(sd[k].shape[0])
            break
    known = ("perceiver.", "vision_encoder.", "lang_encoder.")
    lay.unknown = [k for k in sd if not k.startswith(known)]
    return lay


def resolve_cross_attn_every(cfg_value: Optional[int], lay: Layout, ckpt, where: str) -> int:
    """cross_attn_every_n_layers from the checkpoint's keys; a given value must agree with them."""
    if not lay.xattn_layers:
        if cfg_value is None:
            raise ExportError(f"checkpoint {ckpt} has no gated cross-attention keys "
                              "(lang_encoder.<decoder layers>.N.gated_cross_attn_layer.*), so "
                              f"cross_attn_every_n_layers cannot be inferred; give it in {where}")
        return cfg_value
    if lay.every_n is None:
        raise ExportError(f"checkpoint {ckpt}: gated cross-attention before layers {lay.xattn_layers[:8]} is not "
                          "OpenFlamingo's regular pattern (before layer i when (i+1) % n == 0)")
    if cfg_value is not None and cfg_value != lay.every_n:
        raise ExportError(
            f"checkpoint {ckpt} has gated cross-attention before layers "
            f"{', '.join(map(str, lay.xattn_layers[:6]))}{', …' if len(lay.xattn_layers) > 6 else ''}, i.e. "
            f"cross_attn_every_n_layers = {lay.every_n}, but {where} says {cfg_value}; give {lay.every_n} or "
            "leave it out (it is inferred from the checkpoint)")
    return lay.every_n
