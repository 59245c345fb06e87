"""Tiny models with exactly the structure of a published OpenFlamingo model, built from the ORIGINAL classes.

    (called by make_tiny for configs with a `published:` section, i.e. by export/make_fixtures.sh)

1. An LM folder as released: config.json with `auto_map`, MosaicML's original model code (from the otter-ai
   test-oracle wheel, export/tiny/oracle.py), pytorch_model.bin, and the tiny tokenizer files. Its LayerNorm
   weights are perturbed (seeded) so that QK LayerNorm and every norm matter.
2. An open_clip model config (JSON) and its weights file.
3. The original Flamingo: open_flamingo's factory over that folder with trust_remote_code (what OpenFlamingo
   runs), gates 0.5 and an <|endofchunk|> row the model can reach (make_tiny.make_eoc_reachable).
4. checkpoint.pt exactly as published: what filter_state_dict_to_trainable keeps, optionally with a
   `module.` prefix on every key.
5. The export through the PRESET path (export_openflamingo.export_preset) from those three downloads; the
   exporter's own parity check runs against its converted model, then the parity check runs again against the
   original model, and the goldens are written from the original model.
"""
from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import torch

from . import oracle

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TOKENIZER = HERE / "base_tokenizer"
GATE = 0.5
KEYS = {"name", "published"}
PUB_KEYS = {"preset", "seed", "lm_kind", "lm_folder", "lm_config", "clip_model", "clip_config", "perceiver",
            "cross_attn", "checkpoint_layout"}


def check_spec(raw: dict, path) -> dict:
    if set(raw) - KEYS or set(raw.get("published") or {}) - PUB_KEYS:
        raise ValueError(f"{path}: unknown keys {sorted((set(raw) - KEYS) | (set(raw['published']) - PUB_KEYS))}")
    return raw["published"]


def trainable_state_dict(model) -> dict:
    """What open_flamingo's train_utils.filter_state_dict_to_trainable keeps of model.state_dict(): every
    entry except frozen parameters (names with "embed" are kept even when frozen), minus the duplicate
    `old_decoder_blocks` / `gated_cross_attn_layers` names and the vision encoder. Buffers stay."""
    sd = model.state_dict()
    for name, p in model.named_parameters():
        if "embed" in name:
            continue
        if not p.requires_grad:
            sd.pop(name, None)
    return {k: v for k, v in sd.items() if "lang_encoder.old_decoder_blocks" not in k
            and "lang_encoder.gated_cross_attn_layers" not in k and "vision_encoder" not in k}


def make_lm_folder(pub: dict, root: Path) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM

    d = root / pub["lm_folder"]
    oracle.put_remote_code(pub["lm_kind"], d)
    oracle.copy_tokenizer(TOKENIZER, d)
    (d / "config.json").write_text(json.dumps({**pub["lm_config"], "auto_map": oracle.AUTO_MAP[pub["lm_kind"]]},
                                              indent=1, sort_keys=True))
    conf = AutoConfig.from_pretrained(str(d), trust_remote_code=True)
    torch.manual_seed(pub["seed"])
    with contextlib.redirect_stdout(sys.stderr):
        lm = AutoModelForCausalLM.from_config(conf, trust_remote_code=True)
    g = torch.Generator().manual_seed(pub["seed"] + 100)
    with torch.no_grad():
        for n, p in lm.named_parameters():
            if n.endswith("ln.weight") or "norm" in n or ".ln_" in n:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
    lm.save_pretrained(str(d), safe_serialization=False)
    return d


def make_clip(pub: dict, root: Path):
    import open_clip

    d = root / "clip"
    d.mkdir(parents=True, exist_ok=True)
    cj = d / f"{pub['clip_model']}.json"
    cj.write_text(json.dumps(pub["clip_config"], sort_keys=True))
    open_clip.add_model_config(str(cj))
    torch.manual_seed(pub["seed"] + 10)
    clip = open_clip.create_model(pub["clip_model"])
    w = d / f"{pub['clip_model']}.pt"
    torch.save(clip.state_dict(), w)
    return cj, w


def original_flamingo(pub: dict, lm_dir: Path, clip_name: str, clip_file: Path, every: int):
    """The model as OpenFlamingo builds it: its factory over the released folder (remote code executed)."""
    from open_flamingo import create_model_and_transforms

    from .. import families
    from ..build import Built, apply_module_sizes
    from ..config import OF_CROSS_ATTN_DEFAULTS, OF_PERCEIVER_DEFAULTS
    from .make_tiny import make_eoc_reachable

    torch.manual_seed(pub["seed"])
    with contextlib.redirect_stdout(sys.stderr):
        model, proc, tok = create_model_and_transforms(
            clip_vision_encoder_path=clip_name, clip_vision_encoder_pretrained=str(clip_file),
            lang_encoder_path=str(lm_dir), tokenizer_path=str(lm_dir), cross_attn_every_n_layers=every,
            use_local_files=True)
    cfg = {"seed": pub["seed"], "cross_attn_every_n_layers": every,
           "perceiver": {**OF_PERCEIVER_DEFAULTS, **pub["perceiver"]},
           "cross_attn": {**OF_CROSS_ATTN_DEFAULTS, **pub["cross_attn"]}}
    apply_module_sizes(model, cfg)
    from open_flamingo.src.helpers import GatedCrossAttentionBlock

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, GatedCrossAttentionBlock):
                m.attn_gate.fill_(GATE)
                m.ff_gate.fill_(GATE)
    model.eval()
    tok.padding_side = "left"
    from .. import presets

    fam = families.get(presets.PRESETS[pub["preset"]].family)
    built = Built(model, proc, tok, fam.name, {"name": None, "seed": pub["seed"]}, fam)
    make_eoc_reachable(built)
    return built


def build_original(name: str, raw: dict, workdir: Path):
    """The original model of a published-structure tiny config, as the fixture was exported from (its LM folder
    and CLIP files under workdir)."""
    from .. import presets

    pub = check_spec(raw, name)
    every = presets.PRESETS[pub["preset"]].cross_attn_every_n_layers
    lm_dir = make_lm_folder(pub, Path(workdir) / "downloads")
    _, clip_file = make_clip(pub, Path(workdir) / "downloads")
    orig = original_flamingo(pub, lm_dir, pub["clip_model"], clip_file, every)
    orig.cfg["name"] = raw["name"]
    orig.model.requires_grad_(False)
    return orig


def make(name: str, raw: dict, out_root: Path, goldens: bool = True, log=print) -> dict:
    from ..export_openflamingo import export_preset
    from ..parity import check_parity

    pub = check_spec(raw, name)
    from .. import presets

    every = presets.PRESETS[pub["preset"]].cross_attn_every_n_layers
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        lm_dir = make_lm_folder(pub, work / "downloads")
        cj, clip_file = make_clip(pub, work / "downloads")
        orig = original_flamingo(pub, lm_dir, pub["clip_model"], clip_file, every)
        orig.cfg["name"] = raw["name"]
        sd = trainable_state_dict(orig.model)
        layout = pub.get("checkpoint_layout", "plain")
        if layout == "module_prefix":
            sd = {f"module.{k}": v for k, v in sd.items()}
        elif layout == "model_state_dict":
            sd = {"model_state_dict": {f"module.{k}": v for k, v in sd.items()}}
        ckpt = work / "downloads" / "checkpoint.pt"
        torch.save(sd, ckpt)
        del sd
        orig.model.requires_grad_(False)
        report = {}

        def extra(built, tmp, compensated):
            report["parity_vs_original"] = check_parity(orig, tmp, compensated)
            log(f"[export] parity vs the ORIGINAL classes: max abs diff "
                f"{report['parity_vs_original']['max_abs_diff']:.3g}, greedy identical "
                f"{report['parity_vs_original']['greedy_tokens_identical']}, beam-3 identical "
                f"{report['parity_vs_original']['beam3_tokens_identical']}")
            if goldens:
                from ..goldens import write_goldens

                write_goldens(orig, tmp, compensated)

        rep = export_preset(pub["preset"], Path(out_root) / name, checkpoint=ckpt, lm=lm_dir, clip=clip_file,
                            clip_model=str(cj), name=raw["name"], log=log, overwrite=True, extra=extra,
                            checkpoint_sha=f"published-structure:{pub['preset']}:seed {pub['seed']}")
    rep["parity_vs_original"] = report["parity_vs_original"]
    return rep
