"""Presets for the published OpenFlamingo models: `--preset NAME` (names as published; `--list-presets`).

A preset holds everything that is the same for every copy of a published model: the vision encoder (open_clip
name and pretrained tag), the LM family and the Hugging Face repositories of the LM and of checkpoint.pt, the
cross-attention interval, the tokenizer rules (OpenFlamingo's factory adds `<|endofchunk|>`, `<image>` and
`<PAD>` to the LM folder's own tokenizer) and the published table row to compare with. A user passes only the
paths of what they downloaded (`--checkpoint`, `--lm`, `--clip`), or `--download` to fetch them through
huggingface_hub / open_clip into the usual caches (offline, the same code resolves them from those caches).

Sizes are not trusted to the preset alone: perceiver depth / latents / heads and cross-attention heads come from
the checkpoint's tensor shapes (heads = inner width / the published dim_head 64), the LM's shape from its
folder's config.json, and the vision tower from the open_clip config. So a tiny model of exactly a published
structure goes through exactly this code path (export/tiny/published.py). A checkpoint whose keys imply another
published structure is refused with the preset it looks like.

The LLaMA-based v1 presets (OpenFlamingo-9B-deprecated, Med-Flamingo) have no Hugging Face repository for their
LM (LLaMA-7B v1 must be converted locally), so `--lm` is required for them; their LM-head rows for the 3 added
tokens are in no published file and are drawn from `--added-head-seed` (export/families/llama.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from .checkpoint import fmt_keys
from .config import OF_CROSS_ATTN_DEFAULTS, OF_PERCEIVER_DEFAULTS, ExportError

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class Preset:
    name: str
    family: str                       # export/families module
    checkpoint_repo: str              # Hugging Face repo of checkpoint.pt
    lm_repo: str                      # Hugging Face repo of the LM folder (tokenizer included), as OpenFlamingo loads it
    cross_attn_every_n_layers: int
    lang_dim: int                     # published LM width (for "this looks like" and docs)
    n_layers: int
    table_model: str                  # results/reference/openflamingo.yaml `model`
    checkpoint_file: str = CHECKPOINT_FILE
    clip_model: str = "ViT-L-14"
    clip_pretrained: str = "openai"
    dim_head: int = 64                # OpenFlamingo's perceiver and cross-attention head width
    vis_dim: int = 1024
    owner: str = "i19-mpt"
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def decoder_prefix(self) -> str:
        from . import families

        return f"lang_encoder.{families.get(self.family).decoder_layers_attr}." if families.known(self.family) \
            else _PREFIX_OF.get(self.family, "?")


_PREFIX_OF = {"llama": "lang_encoder.model.layers.", "gpt_neox": "lang_encoder.gpt_neox.layers."}

PRESETS: Dict[str, Preset] = {p.name: p for p in (
    Preset("OpenFlamingo-3B-vitl-mpt1b", "mosaic_gpt", "openflamingo/OpenFlamingo-3B-vitl-mpt1b",
           "anas-awadalla/mpt-1b-redpajama-200b", 1, 2048, 24, "OpenFlamingo-3B",
           notes=("MosaicML's old mosaic_gpt remote code; QK LayerNorm (attn_qk_ln) converted, not ignored",)),
    Preset("OpenFlamingo-3B-vitl-mpt1b-langinstruct", "mosaic_gpt",
           "openflamingo/OpenFlamingo-3B-vitl-mpt1b-langinstruct", "anas-awadalla/mpt-1b-redpajama-200b-dolly", 1,
           2048, 24, "OpenFlamingo-3B (I)"),
    Preset("OpenFlamingo-9B-vitl-mpt7b", "mpt", "openflamingo/OpenFlamingo-9B-vitl-mpt7b", "anas-awadalla/mpt-7b",
           4, 4096, 32, "OpenFlamingo-9B",
           notes=("remote-code MPTForCausalLM loaded as transformers' MptForCausalLM (auto_map stripped)",)),
    # --- filled in by i19-llama (family modules and fix-ups live on that branch) ---
    Preset("OpenFlamingo-4B-vitl-rpj3b", "gpt_neox", "openflamingo/OpenFlamingo-4B-vitl-rpj3b",
           "togethercomputer/RedPajama-INCITE-Base-3B-v1", 2, 2560, 32, "OpenFlamingo-4B", owner="i19-llama"),
    Preset("OpenFlamingo-4B-vitl-rpj3b-langinstruct", "gpt_neox",
           "openflamingo/OpenFlamingo-4B-vitl-rpj3b-langinstruct", "togethercomputer/RedPajama-INCITE-Instruct-3B-v1",
           2, 2560, 32, "OpenFlamingo-4B (I)", owner="i19-llama"),
    # OpenFlamingo v1 (March 2023), published as openflamingo/OpenFlamingo-9B, now ...-9B-deprecated; named after
    # the repository so that it can never be taken for the v2 OpenFlamingo-9B(-vitl-mpt7b) row
    Preset("OpenFlamingo-9B-deprecated", "llama", "openflamingo/OpenFlamingo-9B-deprecated", "", 4,
           4096, 32, "OpenFlamingo-9B (v1)", owner="i19-llama",
           notes=("LLaMA-7B (v1) in Hugging Face format, converted locally: --lm is required",
                  "LM-head rows of <|endofchunk|>, <image>, <PAD> are in no published file: --added-head-seed")),
    Preset("Med-Flamingo", "llama", "med-flamingo/med-flamingo", "", 4, 4096, 32,
           "(none: medical VQA)", checkpoint_file="model.pt", owner="i19-llama",
           notes=("the same LLaMA-7B (v1) folder: --lm is required",
                  "LM-head rows of the added tokens: from the checkpoint if it has them, else --added-head-seed")),
)}

READY_OWNERS = {"i19-mpt", "i19-llama"}


def get(name: str) -> Preset:
    if name not in PRESETS:
        low = {k.lower(): k for k in PRESETS}
        hint = f" (did you mean {low[name.lower()]}?)" if name.lower() in low else ""
        raise ExportError(f"unknown preset {name!r}{hint}; --list-presets shows: {', '.join(PRESETS)}")
    p = PRESETS[name]
    if p.owner not in READY_OWNERS:
        raise ExportError(f"preset {name} (lang.family {p.family}) is not implemented on this branch yet "
                          f"({p.owner} adds it)")
    return p


def list_presets() -> str:
    lines = []
    for p in PRESETS.values():
        state = "" if p.owner in READY_OWNERS else f"   [not yet: {p.owner}]"
        lines.append(f"{p.name:42s} {p.family:10s} xattn every {p.cross_attn_every_n_layers}  "
                     f"checkpoint {p.checkpoint_repo}/{p.checkpoint_file}  LM {p.lm_repo or '(local folder, --lm)'}  "
                     f"vision open_clip {p.clip_model}/{p.clip_pretrained}  table row {p.table_model!r}{state}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# what the checkpoint says
# --------------------------------------------------------------------------------------------------

def looks_like(lay) -> list:
    """Published presets whose structure the checkpoint's keys match (decoder layout, interval, width)."""
    out = []
    for p in PRESETS.values():
        if lay.decoder_prefix == p.decoder_prefix and lay.every_n == p.cross_attn_every_n_layers and \
                (lay.lang_dim is None or lay.lang_dim == p.lang_dim):
            out.append(p.name)
    return out


def check_structure(p: Preset, lay, ckpt, log=None) -> None:
    """The checkpoint must have the preset's decoder layout and cross-attention interval."""
    problems = []
    if lay.unknown:
        problems.append(f"{len(lay.unknown)} key(s) of no OpenFlamingo layout ({fmt_keys(lay.unknown)})")
    if lay.decoder_prefix != p.decoder_prefix:
        problems.append(f"its decoder layers are {lay.decoder_prefix or 'absent'}N ({lay.lm_kind or 'no known LM'}), "
                        f"the preset's are {p.decoder_prefix}N")
    if lay.every_n != p.cross_attn_every_n_layers:
        problems.append(f"gated cross-attention every {lay.every_n} layer(s), the preset has every "
                        f"{p.cross_attn_every_n_layers}")
    if problems:
        like = [n for n in looks_like(lay) if n != p.name]
        if not like:  # match on layout and interval only (tiny or unpublished widths)
            like = [q.name for q in PRESETS.values() if q.name != p.name and lay.decoder_prefix == q.decoder_prefix
                    and lay.every_n == q.cross_attn_every_n_layers]
        hint = (f"; this looks like {' or '.join(like)}: use --preset {like[0]}" if like else
                "; it matches no published preset (export it with --config)")
        raise ExportError(f"checkpoint {ckpt} does not fit preset {p.name}: " + "; ".join(problems) + hint)
    if lay.lang_dim is not None and lay.lang_dim != p.lang_dim and log:
        log(f"[export] {p.name}: the checkpoint's LM width is {lay.lang_dim} (published {p.lang_dim}); sizes are "
            "taken from the checkpoint and the LM folder (a non-published size, e.g. a tiny test model)")


def _count(sd, prefix, pattern_tail) -> int:
    import re

    pat = re.compile(re.escape(prefix) + r"(\d+)\." + pattern_tail)
    return len({m.group(1) for k in sd for m in [pat.match(k)] if m})


def module_sizes(p: Preset, sd: dict, lay, ckpt) -> Tuple[dict, dict]:
    """perceiver and cross_attn config sections read off the checkpoint's shapes (heads = inner / dim_head)."""
    def need(k):
        if k not in sd:
            raise ExportError(f"checkpoint {ckpt}: key {k} is missing (an OpenFlamingo checkpoint has the perceiver "
                              "and gated cross-attention weights; is this the right file?)")
        return sd[k]

    lat = need("perceiver.latents")
    inner = need("perceiver.layers.0.0.to_q.weight").shape[0]
    ff_hidden = need("perceiver.layers.0.1.1.weight").shape[0]
    if inner % p.dim_head:
        raise ExportError(f"checkpoint {ckpt}: perceiver attention width {inner} is not a multiple of the published "
                          f"head width {p.dim_head}")
    fe = sd.get("perceiver.frame_embs")
    perceiver = {"depth": _count(sd, "perceiver.layers.", r"0\.to_q\.weight"), "heads": inner // p.dim_head,
                 "dim_head": p.dim_head, "num_latents": int(lat.shape[0]),
                 "max_num_frames": int(fe.shape[0]) if fe is not None else None,
                 "ff_mult": ff_hidden // lat.shape[1]}
    first = f"{lay.decoder_prefix}{lay.xattn_layers[0]}.gated_cross_attn_layer."
    x_inner = need(first + "attn.to_q.weight").shape[0]
    x_ff = need(first + "ff.1.weight").shape[0]
    if x_inner % p.dim_head:
        raise ExportError(f"checkpoint {ckpt}: cross-attention width {x_inner} is not a multiple of {p.dim_head}")
    cross = {"heads": x_inner // p.dim_head, "dim_head": p.dim_head, "ff_mult": x_ff // lay.lang_dim}
    return perceiver, cross


# --------------------------------------------------------------------------------------------------
# files: given paths, or the Hugging Face / open_clip caches (--download fetches into them)
# --------------------------------------------------------------------------------------------------

def resolve_files(p: Preset, checkpoint=None, lm=None, clip=None, download=False, cache_dir=None, log=None) -> dict:
    """Paths of checkpoint.pt, the LM folder and the open_clip weights. Missing ones come from the caches
    (huggingface_hub's models--ORG--NAME/snapshots/REV layout; open_clip's download cache), fetched there
    first with `download`; offline (HF_HUB_OFFLINE=1 or no `download`) only what is cached is used."""
    offline = not download
    out = {}
    if checkpoint is None:
        out["checkpoint"] = _hf_file(p.checkpoint_repo, p.checkpoint_file, offline, cache_dir)
    else:
        out["checkpoint"] = Path(checkpoint)
    if lm is None and not p.lm_repo:
        raise ExportError(f"preset {p.name}: its LM (LLaMA-7B v1) has no Hugging Face repository to fetch; convert "
                          "Meta's weights with transformers' convert_llama_weights_to_hf.py and pass the folder "
                          "with --lm DIR (docs/models.md)")
    if lm is None:
        out["lm"] = _hf_snapshot(p.lm_repo, offline, cache_dir)
    else:
        out["lm"] = Path(lm)
    if clip is None:
        out["clip"] = _clip_file(p, offline, cache_dir)
    else:
        out["clip"] = Path(clip)
    for k, v in out.items():
        if not v.exists():
            raise ExportError(f"--{k} {v} does not exist")
    if log:
        log("[export] files: " + ", ".join(f"{k} {v}" for k, v in out.items()))
    return out


def _hf_file(repo, filename, offline, cache_dir) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=offline))
    except Exception as e:
        raise ExportError(f"{repo}/{filename} is not in the Hugging Face cache"
                          f"{' ' + str(cache_dir) if cache_dir else ''} ({type(e).__name__}); pass its path, or "
                          "--download to fetch it") from None


def _hf_snapshot(repo, offline, cache_dir) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, cache_dir=cache_dir, local_files_only=offline))
    except Exception as e:
        raise ExportError(f"the LM folder {repo} is not in the Hugging Face cache"
                          f"{' ' + str(cache_dir) if cache_dir else ''} ({type(e).__name__}); pass --lm DIR, or "
                          "--download to fetch it") from None


def _clip_file(p: Preset, offline, cache_dir) -> Path:
    from open_clip import pretrained as ocp

    cfg = ocp.get_pretrained_cfg(p.clip_model, p.clip_pretrained)
    url = cfg.get("url") if cfg else None
    if not url:
        raise ExportError(f"open_clip has no download for {p.clip_model}/{p.clip_pretrained}; pass --clip FILE")
    clip_cache = Path(cache_dir) / "clip" if cache_dir else Path(os.path.expanduser("~/.cache/clip"))
    target = clip_cache / os.path.basename(url)
    if target.is_file():
        return target
    if offline:
        raise ExportError(f"the open_clip weights {p.clip_model}/{p.clip_pretrained} are not at {target}; pass "
                          "--clip FILE, or --download to fetch them")
    return Path(ocp.download_pretrained_from_url(url, cache_dir=str(clip_cache)))


# --------------------------------------------------------------------------------------------------
# the export config a preset + files + checkpoint make
# --------------------------------------------------------------------------------------------------

def clip_model_arg(value: Optional[str], p: Preset) -> Tuple[str, Optional[dict]]:
    """--clip-model: an open_clip model name, or a JSON file holding an open_clip model config (its name is the
    file's stem)."""
    if not value:
        return p.clip_model, None
    path = Path(value)
    if value.endswith(".json") or path.is_file():
        if not path.is_file():
            raise ExportError(f"--clip-model {value}: no such open_clip config file")
        try:
            conf = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ExportError(f"--clip-model {value}: not valid JSON ({e})")
        if not isinstance(conf, dict) or "vision_cfg" not in conf:
            raise ExportError(f"--clip-model {value}: not an open_clip model config (no vision_cfg)")
        return path.stem, conf
    return value, None


def preset_config(p: Preset, files: dict, sd: dict, lay, clip_model: Optional[str] = None, log=None) -> dict:
    from .config import normalise_config

    check_structure(p, lay, files["checkpoint"], log)
    perceiver, cross = module_sizes(p, sd, lay, files["checkpoint"])
    for what, got, pub in (("perceiver", perceiver, OF_PERCEIVER_DEFAULTS), ("cross_attn", cross, OF_CROSS_ATTN_DEFAULTS)):
        if got != pub and log:
            log(f"[export] {p.name}: {what} sizes from the checkpoint {got} (published: {pub})")
    name, conf = clip_model_arg(clip_model, p)
    clip = Path(files["clip"]).resolve()
    vision = {"clip_model": name, "pretrained": str(clip)}
    if conf is not None:
        vision["clip_config"] = conf
    lm = str(Path(files["lm"]).resolve())
    cfg = {"name": p.name, "seed": 0, "vision": vision, "lang": {"family": p.family, "path": lm},
           "tokenizer": {"path": lm, "add_special_tokens": True},
           "cross_attn_every_n_layers": p.cross_attn_every_n_layers, "perceiver": perceiver, "cross_attn": cross}
    return normalise_config(cfg, Path(f"preset:{p.name}"))


# --------------------------------------------------------------------------------------------------
# IDEFICS (Hugging Face's Flamingo reproduction): whole-model presets, exported by export/export_idefics.py
# from the Hugging Face folder a user downloads (export/families/idefics.py). Values: transformers'
# models/idefics/ and the published configs (PROTOCOL.md section 8c); every field is checked against the folder.
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IdeficsPreset:
    name: str
    repo: str                         # Hugging Face repository (the folder's origin)
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    cross_layer_interval: int = 4
    vocab_size: int = 32000
    additional_vocab_size: int = 2
    vision_embed_dim: int = 1280      # OpenCLIP ViT-H/14 in Hugging Face form
    vision_layers: int = 32
    image_size: int = 224
    patch_size: int = 14
    resampler_depth: int = 6
    resampler_n_latents: int = 64
    resampler_n_heads: int = 16
    resampler_head_dim: int = 96
    image_mean: Tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    image_std: Tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    owner: str = "i18-idefics"

    def config_fields(self) -> Dict[str, object]:
        """config.json fields (dotted for the nested vision/perceiver configs) the folder must have."""
        return {"model_type": "idefics", "hidden_size": self.hidden_size,
                "num_hidden_layers": self.num_hidden_layers, "num_attention_heads": self.num_attention_heads,
                "cross_layer_interval": self.cross_layer_interval, "vocab_size": self.vocab_size,
                "additional_vocab_size": self.additional_vocab_size, "use_resampler": True,
                "vision_config.embed_dim": self.vision_embed_dim, "vision_config.num_hidden_layers": self.vision_layers,
                "vision_config.image_size": self.image_size, "vision_config.patch_size": self.patch_size,
                "perceiver_config.resampler_depth": self.resampler_depth,
                "perceiver_config.resampler_n_latents": self.resampler_n_latents,
                "perceiver_config.resampler_n_heads": self.resampler_n_heads,
                "perceiver_config.resampler_head_dim": self.resampler_head_dim}


IDEFICS_PRESETS: Dict[str, IdeficsPreset] = {p.name: p for p in (
    IdeficsPreset("idefics-9b", "HuggingFaceM4/idefics-9b", 4096, 32, 32),
    IdeficsPreset("idefics-9b-instruct", "HuggingFaceM4/idefics-9b-instruct", 4096, 32, 32),
    IdeficsPreset("idefics-80b", "HuggingFaceM4/idefics-80b", 8192, 80, 64),
    IdeficsPreset("idefics-80b-instruct", "HuggingFaceM4/idefics-80b-instruct", 8192, 80, 64),
)}
