"""Export configuration (YAML): which OpenFlamingo model to build. See export/README.md."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml


class ExportError(Exception):
    """A user-facing export failure: the message names the file/key and the fix."""


# OpenFlamingo 2.0.1 defaults (Flamingo.__init__ / FlamingoLMMixin.init_flamingo)
OF_PERCEIVER_DEFAULTS = {"depth": 6, "heads": 8, "dim_head": 64, "num_latents": 64, "max_num_frames": None,
                         "ff_mult": 4}
OF_CROSS_ATTN_DEFAULTS = {"heads": 8, "dim_head": 64, "ff_mult": 4}

SCHEMA = {
    "name": str,
    "seed": int,
    "vision": {"clip_model": str, "clip_config": (dict, str), "pretrained": str, "compensate_ln_post": bool},
    "lang": {"family": str, "path": str, "config": dict},
    "tokenizer": {"path": str, "add_special_tokens": bool},
    "cross_attn_every_n_layers": int,
    "perceiver": {k: (int, type(None)) for k in OF_PERCEIVER_DEFAULTS},
    "cross_attn": {k: int for k in OF_CROSS_ATTN_DEFAULTS},
}
REQUIRED = ["name", "vision.clip_model", "lang.family", "tokenizer.path"]


def _check(node, schema, where, src):
    if not isinstance(node, dict):
        raise ExportError(f"{src}: `{where or 'top level'}` must be a mapping")
    for k, v in node.items():
        key = f"{where}.{k}" if where else k
        if k not in schema:
            raise ExportError(f"{src}: unknown key `{key}` (known: {', '.join(sorted(schema))})")
        want = schema[k]
        if isinstance(want, dict):
            _check(v, want, key, src)
        elif v is not None and not isinstance(v, want):
            raise ExportError(f"{src}: `{key}` has the wrong type ({type(v).__name__})")


def _get(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return None
        node = node[part]
    return node


def load_config(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"config file {path} does not exist")
    cfg = yaml.safe_load(path.read_text())
    return normalise_config(cfg, path)


def normalise_config(cfg: dict, path: Path) -> dict:
    cfg = copy.deepcopy(cfg)
    _check(cfg, SCHEMA, "", path)
    for key in REQUIRED:
        if _get(cfg, key) is None:
            raise ExportError(f"{path}: missing required key `{key}`")
    from . import families

    family = cfg["lang"]["family"]
    if not families.known(family):
        raise ExportError(
            f"{path}: unknown LM family `lang.family: {family}`; supported: {', '.join(families.names())} "
            "(" + "; ".join(f"{n}: {families.get(n).description}" for n in families.names()) + ")")
    family = cfg["lang"]["family"] = families.canonical(family)
    lang = cfg["lang"]
    if (lang.get("path") is None) == (lang.get("config") is None):
        raise ExportError(f"{path}: give exactly one of `lang.path` (a Hugging Face model directory) "
                          "or `lang.config` (a Hugging Face config mapping for a randomly initialised LM)")
    if lang.get("config") is not None:
        families.get(family).check_config_mapping(lang["config"], str(path))
    base = path.parent
    for key in ("tokenizer.path", "lang.path"):
        sect, k = key.split(".")
        if cfg[sect].get(k):
            p = Path(cfg[sect][k])
            cfg[sect][k] = str(p if p.is_absolute() else (base / p).resolve())
    cc = cfg["vision"].get("clip_config")
    if isinstance(cc, str):  # an open_clip model config JSON file (relative to the config file)
        import json

        p = Path(cc) if Path(cc).is_absolute() else base / cc
        if not p.is_file():
            raise ExportError(f"{path}: `vision.clip_config` file {p} does not exist (give an open_clip model "
                              "config JSON file, an inline mapping, or leave it out for a known open_clip name)")
        try:
            cfg["vision"]["clip_config"] = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ExportError(f"{p}: not valid JSON ({e})")
        if not isinstance(cfg["vision"]["clip_config"], dict) or "vision_cfg" not in cfg["vision"]["clip_config"]:
            raise ExportError(f"{p}: not an open_clip model config (no vision_cfg)")
    pre = cfg["vision"].get("pretrained") or ""
    if pre and ("/" in pre or pre.endswith((".pt", ".bin", ".safetensors"))):
        p = Path(pre)
        cfg["vision"]["pretrained"] = str(p if p.is_absolute() else (base / p).resolve())
    cfg["vision"].setdefault("pretrained", "")
    cfg["vision"].setdefault("compensate_ln_post", False)
    cfg["tokenizer"].setdefault("add_special_tokens", True)
    cfg.setdefault("seed", 0)
    cfg["perceiver"] = {**OF_PERCEIVER_DEFAULTS, **(cfg.get("perceiver") or {})}
    cfg["cross_attn"] = {**OF_CROSS_ATTN_DEFAULTS, **(cfg.get("cross_attn") or {})}
    cfg.setdefault("cross_attn_every_n_layers", None)  # None: inferred from the checkpoint's keys
    if cfg["cross_attn_every_n_layers"] is not None and cfg["cross_attn_every_n_layers"] < 1:
        raise ExportError(f"{path}: `cross_attn_every_n_layers` must be >= 1")
    cfg["_path"] = str(path)
    return cfg


def staging_dir(out: Path) -> Path:
    """A fresh staging directory next to `out` (same filesystem, so the finished export is moved in atomically),
    with the permissions of a normal directory (mkdtemp makes it private; the final directory should not be)."""
    import os
    import tempfile

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp
