"""Build an OpenFlamingo model through open_flamingo's own factory, and load a checkpoint into it."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from . import families  # noqa: E402
from .config import OF_CROSS_ATTN_DEFAULTS, OF_PERCEIVER_DEFAULTS, ExportError  # noqa: E402

SPECIAL_TOKENS = ("<|endofchunk|>", "<image>")
ALIAS_PREFIXES = ("lang_encoder.old_decoder_blocks.", "lang_encoder.gated_cross_attn_layers.")


@dataclass
class Built:
    model: torch.nn.Module          # open_flamingo.Flamingo, eval mode
    image_processor: object         # open_clip preprocess transform
    tokenizer: object               # transformers tokenizer with OpenFlamingo's special tokens
    family: str                     # lang.family as written in the manifest
    cfg: dict
    lm_family: families.Family = None  # its module (export/families)
    lm_dir: str = ""                # the LM folder the factory loaded
    added_head_seed: Optional[int] = None  # set when LM-head rows were drawn (seed_added_head_rows)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_tokenizer(cfg):
    from transformers import AutoTokenizer

    tpath = Path(cfg["tokenizer"]["path"])
    if not tpath.is_dir():
        raise ExportError(f"tokenizer.path {tpath} is not a directory (a Hugging Face tokenizer directory "
                          "holding tokenizer.json / tokenizer_config.json is expected)")
    try:
        tok = AutoTokenizer.from_pretrained(str(tpath), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as e:
        # e.g. an early LLaMA conversion whose tokenizer_config.json names the class "LLaMATokenizer"
        raise ExportError(f"the tokenizer in {tpath} cannot be loaded by transformers ({type(e).__name__}: "
                          f"{str(e)[:300]}); check its tokenizer_config.json (tokenizer_class, special tokens) "
                          "or use a folder converted by a released transformers") from e
    if not cfg["tokenizer"]["add_special_tokens"]:
        vocab = tok.get_vocab()
        specials = set(tok.all_special_tokens)
        for t in SPECIAL_TOKENS:
            if t not in vocab or t not in specials:
                raise ExportError(
                    f"tokenizer {tpath} has no special token {t!r} (OpenFlamingo's tokenizer adds "
                    "`<|endofchunk|>` and `<image>` as additional special tokens). Either point tokenizer.path "
                    "at the OpenFlamingo tokenizer saved after create_model_and_transforms, or set "
                    "`tokenizer.add_special_tokens: true` to let open_flamingo's factory add them to a base "
                    "LM tokenizer (the checkpoint's embeddings must then have rows for them)")
    return tok


def _lm_dir(cfg, fam, workdir: Path, log=None) -> str:
    if cfg["lang"].get("path"):
        return str(fam.prepare_lm_dir(Path(cfg["lang"]["path"]), workdir, log=log))
    # random-initialised LM from a config: materialise it so that the factory's from_pretrained loads it
    return str(fam.random_lm_dir(cfg["lang"]["config"], cfg["seed"], workdir))


def _clip_name(cfg, workdir: Path) -> str:
    import open_clip

    name = cfg["vision"]["clip_model"]
    if cfg["vision"].get("clip_config"):
        d = workdir / "clip_configs"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.json").write_text(json.dumps(cfg["vision"]["clip_config"], sort_keys=True))
        open_clip.add_model_config(str(d / f"{name}.json"))
    if open_clip.get_model_config(name) is None:
        raise ExportError(f"vision.clip_model {name!r} is not an open_clip model name; give vision.clip_config "
                          "to register a custom one")
    return name


def is_torchscript(path) -> bool:
    """OpenAI's CLIP weights (open_clip's 'openai' files) are TorchScript archives, not state dicts."""
    import zipfile

    p = Path(path)
    if not p.is_file() or not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any(n.endswith("/constants.pkl") or n.split("/")[1:2] == ["code"] for n in z.namelist())


def _openai_visual(path: Path, clip_name: str):
    """The vision tower from an OpenAI TorchScript archive, built as open_clip builds pretrained='openai'
    (build_model_from_openai_state_dict, QuickGELU)."""
    import open_clip

    try:
        clip = open_clip.load_openai_model(str(path), precision="fp32", device="cpu")
    except Exception as e:
        raise ExportError(f"open_clip weights {path}: not a usable OpenAI CLIP archive ({type(e).__name__}: "
                          f"{str(e)[:200]})")
    want = open_clip.get_model_config(clip_name)["vision_cfg"]
    visual = clip.visual
    got = {"width": visual.conv1.out_channels, "layers": len(visual.transformer.resblocks),
           "patch_size": visual.conv1.kernel_size[0], "image_size": visual.image_size[0]}
    bad = [f"{k} {got[k]} (expected {want.get(k)})" for k in got if want.get(k) not in (None, got[k])]
    if bad:
        raise ExportError(f"open_clip weights {path} are not {clip_name} weights: " + ", ".join(bad) +
                          "; pass the preset's vision weights (--clip) or the matching --clip-model")
    visual.output_tokens = True
    return visual


def _diagnose_clip_file(path: Path, clip_name: str) -> None:
    """Called when open_clip failed to load `path`: raise an ExportError that says what is wrong with it."""
    import open_clip

    fix = ("pass the right weights file (--clip / vision.pretrained) or the matching model (--clip-model / "
           "vision.clip_model)")
    try:
        sd = torch.load(str(path), map_location="cpu")
    except Exception as e:
        raise ExportError(f"open_clip weights {path} cannot be read ({type(e).__name__}: {str(e)[:160]}); the file "
                          f"is truncated or not a weights file ({path.stat().st_size} bytes); {fix}") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ExportError(f"open_clip weights {path} hold a {type(sd).__name__}, not a state dict; {fix}") from None
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    want = open_clip.create_model(clip_name).state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(want[k].shape)}" for k in want
              if k in sd and hasattr(sd[k], "shape") and tuple(sd[k].shape) != tuple(want[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_fmt(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_fmt(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es): {_fmt(shapes, 3)}")
    if parts:
        raise ExportError(f"open_clip weights {path} are not {clip_name!r} weights: " + "; ".join(parts) + f"; {fix}") \
            from None


def apply_module_sizes(model, cfg: dict) -> None:
    """Non-default perceiver / cross-attention sizes (tiny models): replace those modules with the same
    open_flamingo classes built with other hyper-parameters, as Flamingo.__init__ / init_flamingo do."""
    from open_flamingo.src.helpers import GatedCrossAttentionBlock, PerceiverResampler

    lm = model.lang_encoder
    if cfg["perceiver"] != OF_PERCEIVER_DEFAULTS:
        torch.manual_seed(cfg["seed"] + 1)
        p = cfg["perceiver"]
        model.perceiver = PerceiverResampler(
            dim=model.vis_dim, depth=p["depth"], dim_head=p["dim_head"], heads=p["heads"],
            num_latents=p["num_latents"], max_num_frames=p["max_num_frames"], ff_mult=p["ff_mult"])
    if cfg["cross_attn"] != OF_CROSS_ATTN_DEFAULTS:
        torch.manual_seed(cfg["seed"] + 2)
        c = cfg["cross_attn"]
        n = cfg["cross_attn_every_n_layers"]
        lm.gated_cross_attn_layers = torch.nn.ModuleList([
            GatedCrossAttentionBlock(dim=model.lang_dim, dim_visual=model.vis_dim, dim_head=c["dim_head"],
                                     heads=c["heads"], ff_mult=c["ff_mult"])
            if (i + 1) % n == 0 else None
            for i in range(len(lm.old_decoder_blocks))
        ])
        lm.init_flamingo_layers(False)


class _LoadReport:
    """Records what transformers' from_pretrained says it did not load (it only logs it, and then initialises
    the missing weights at random): the factory's LM load must load every weight of the LM folder."""

    def __init__(self):
        import logging

        self.unused, self.missing = [], []
        report = self

        class Handler(logging.Handler):
            def emit(self, record):
                msg = record.getMessage()
                if "were not used when initializing" in msg:
                    report.unused += _listed(msg)
                elif "were not initialized from the model checkpoint" in msg:
                    report.missing += _listed(msg) or [msg.splitlines()[0]]

        self.handler = Handler(logging.INFO)

    def __enter__(self):
        import logging

        self.logger = logging.getLogger("transformers.modeling_utils")
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]
        return False


def _listed(msg: str) -> list:
    import ast

    start = msg.find("[")
    end = msg.find("]\n", start)
    end = end if end >= 0 else msg.rfind("]")
    try:
        items = ast.literal_eval(msg[start:end + 1])
    except (ValueError, SyntaxError):
        return []
    return [str(x[0] if isinstance(x, tuple) else x) for x in items]


def build_model(cfg: dict, workdir: Path, log=None) -> Built:
    """Build the Flamingo model with open_flamingo.create_model_and_transforms (random init where no
    pretrained weights are named), then apply non-default perceiver / cross-attention sizes using the same
    open_flamingo classes. Deterministic for a given cfg['seed']."""
    import pickle

    from open_flamingo import create_model_and_transforms
    from safetensors import SafetensorError

    family = cfg["lang"]["family"]
    fam = families.get(family)
    workdir = Path(workdir)
    _check_tokenizer(cfg)
    clip_name = _clip_name(cfg, workdir)
    lm_path = _lm_dir(cfg, fam, workdir, log)
    torch.manual_seed(cfg["seed"])
    pretrained = cfg["vision"]["pretrained"] or None
    openai_file = pretrained if pretrained and is_torchscript(pretrained) else None
    loading = _LoadReport()
    try:
      with contextlib.redirect_stdout(sys.stderr), loading:  # the factory prints; keep stdout for reports
       model, image_processor, tokenizer = create_model_and_transforms(
        clip_vision_encoder_path=clip_name,
        clip_vision_encoder_pretrained=None if openai_file else pretrained,
        lang_encoder_path=lm_path,
        tokenizer_path=cfg["tokenizer"]["path"],
        cross_attn_every_n_layers=cfg["cross_attn_every_n_layers"],
        use_local_files=True,
        decoder_layers_attr_name=fam.decoder_layers_attr,
       )
    except Exception as e:
        if pretrained and Path(pretrained).is_file() and not openai_file:
            _diagnose_clip_file(Path(pretrained), clip_name)
        if isinstance(e, (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, SafetensorError)):
            # a truncated / corrupt weights file of the LM folder (or of open_clip)
            files = [f"LM folder {lm_path}"] + ([f"open_clip weights {pretrained}"] if pretrained else [])
            raise ExportError(f"open_flamingo's factory could not load {' or '.join(files)} "
                              f"({type(e).__name__}: {str(e)[:300]}); a file is truncated, corrupt or from another "
                              "model — download it again") from e
        raise
    if openai_file:
        model.vision_encoder = _openai_visual(Path(openai_file), clip_name)
    unused = [k for k in loading.unused if not fam.ignorable_unused_lm_key(k)]
    if loading.missing or unused:
        what = []
        if loading.missing:
            what.append(f"{len(loading.missing)} weight(s) the model needs are not in it ({_fmt(loading.missing)}); "
                        "transformers would initialise them at random")
        if unused:
            what.append(f"{len(unused)} weight(s) in it belong to no parameter ({_fmt(unused)})")
        src = cfg["lang"].get("path") or "the random-init LM"
        raise ExportError(f"LM folder {src}: " + "; ".join(what) + f". Its weights do not match lang.family {family} "
                          f"({fam.hf_class}); check the family / preset and that the download is complete")
    cls_names = [c.__name__ for c in type(model.lang_encoder).__mro__]
    if fam.hf_class not in cls_names:
        raise ExportError(f"lang.family {family} expects transformers' {fam.hf_class}, but the LM at "
                          f"{lm_path} loaded as {type(model.lang_encoder).__mro__[1].__name__}")
    lm = model.lang_encoder
    fam.after_build(lm, Path(lm_path))
    apply_module_sizes(model, cfg)
    model.requires_grad_(False)
    model.eval()
    tokenizer.padding_side = "left"
    return Built(model, image_processor, tokenizer, family, cfg, fam, str(lm_path))


# --------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------

from .checkpoint import load_state_dict_file  # noqa: E402,F401  (re-exported)


def param_groups(model) -> list:
    """State-dict names grouped by the tensor they name (OpenFlamingo registers every decoder block and
    cross-attention block twice; MPT ties its LM head to the embedding). Canonical name first."""
    groups = {}
    for name, t in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append(name)
    out = []
    for names in groups.values():
        names.sort(key=lambda n: (n.startswith(ALIAS_PREFIXES), 0))
        out.append(names)
    return out


def _fmt(keys, n=6):
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    return s + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def _embedding_rows_from_checkpoint(built: Built, sd: dict, ckpt_path, log) -> None:
    """OpenFlamingo resized the LM's vocabulary to its tokenizer; the checkpoint's embedding has that many rows
    (fewer than the LM folder's config.vocab_size). The model takes its row count from the checkpoint."""
    lm = built.model.lang_encoder
    emb = lm.get_input_embeddings().weight
    names = [n for n, t in built.model.state_dict(keep_vars=True).items() if t is emb]
    key = next((n for n in names if n in sd), None)
    if key is None:
        return
    rows, cols = sd[key].shape[0], sd[key].shape[-1]
    cfg_rows = None  # what the LM folder as released says (the factory already overwrote lm.config.vocab_size)
    if built.cfg["lang"].get("path"):
        cj = Path(built.cfg["lang"]["path"]) / "config.json"
        if cj.is_file():
            cfg_rows = json.loads(cj.read_text()).get("vocab_size")
    if rows != emb.shape[0] and cols == emb.shape[1] and rows > len(built.tokenizer):
        lm.resize_token_embeddings(rows)
    if log and cfg_rows is not None and cfg_rows != rows:
        log(f"[export] embedding: {rows} rows taken from checkpoint {Path(ckpt_path).name} (the LM folder's config "
            f"says vocab_size {cfg_rows}; OpenFlamingo resized the vocabulary to its tokenizer, {len(built.tokenizer)} "
            "tokens)")


def apply_checkpoint(built: Built, sd: dict, ckpt_path, log=None) -> None:
    """Load `sd` into the model; unexpected or missing keys and shape mismatches are errors."""
    model, cfg = built.model, built.cfg
    groups = param_groups(model)
    known = {n for g in groups for n in g}
    sd, notes = built.lm_family.fix_checkpoint_keys(sd, known)
    for n in notes:
        if log:
            log(f"[export] checkpoint {Path(ckpt_path).name}: {n}")
    _embedding_rows_from_checkpoint(built, sd, ckpt_path, log)
    groups = param_groups(model)
    known = {n for g in groups for n in g}
    if not any(k in known for k in sd):
        raise ExportError(f"checkpoint {ckpt_path}: none of its {len(sd)} keys belongs to this model "
                          f"({_fmt(sd)}); it is not an OpenFlamingo checkpoint of this layout")
    unexpected = [k for k in sd if k not in known]
    if unexpected:
        raise ExportError(
            f"checkpoint {ckpt_path}: {len(unexpected)} unexpected key(s): {_fmt(unexpected)}. The checkpoint "
            f"does not match the model the config {cfg['_path']} describes (check lang.family, lang.config / "
            "lang.path, cross_attn_every_n_layers, perceiver, cross_attn and vision.clip_model)")
    vision_pre = bool(cfg["vision"]["pretrained"])
    lang_pre = bool(cfg["lang"].get("path"))
    missing = []
    state = model.state_dict(keep_vars=True)
    for names in groups:
        present = [n for n in names if n in sd]
        if not present:
            n0 = names[0]
            covered = (vision_pre and n0.startswith("vision_encoder.")) or (
                lang_pre and n0.startswith("lang_encoder.") and not any("gated_cross_attn" in n for n in names))
            if not covered:
                missing.append(n0)
            continue
        src = sd[present[0]]
        dst = state[names[0]]
        if tuple(src.shape) != tuple(dst.shape):
            hint = ""
            if "embed" in present[0] or "wte" in present[0] or "lm_head" in present[0]:
                hint = (f" The tokenizer with OpenFlamingo's special tokens has {len(built.tokenizer)} entries; "
                        "a different row count means the wrong tokenizer (or tokenizer.add_special_tokens).")
            raise ExportError(f"checkpoint {ckpt_path}: key {present[0]} has shape {tuple(src.shape)} but the "
                              f"model built from {cfg['_path']} expects {tuple(dst.shape)}.{hint}")
        with torch.no_grad():
            dst.copy_(src.to(dst.dtype))
    if missing:
        raise ExportError(
            f"checkpoint {ckpt_path}: {len(missing)} missing key(s): {_fmt(missing)}. Either the checkpoint "
            "is for a different model, or those weights must come from pretrained sources "
            "(vision.pretrained for vision_encoder.*, lang.path for the base LM)")


def canonical_state_dict(model) -> dict:
    """One entry per tensor (canonical names), cloned, in state-dict order."""
    state = model.state_dict()
    return {names[0]: state[names[0]].detach().clone().contiguous() for names in param_groups(model)}


def draw_added_head_rows(lm, base_vocab: int, seed: int) -> float:
    """LM-head rows base_vocab.. of `lm` := N(0, initializer_range^2) from torch.Generator(seed) (the distribution
    transformers' resize_token_embeddings draws them from). Returns the std."""
    head = lm.get_output_embeddings().weight
    std = float(lm.config.initializer_range)
    g = torch.Generator().manual_seed(int(seed))
    rows = torch.normal(0.0, std, (head.shape[0] - base_vocab, head.shape[1]), generator=g)
    with torch.no_grad():
        head[base_vocab:] = rows.to(head.dtype)
    return std


def seed_added_head_rows(built: Built, sd: dict, seed: int) -> Optional[str]:
    """Draw the LM-head rows of OpenFlamingo's added tokens from an explicit seed, for families whose released
    files hold no such rows (LLaMA: OpenFlamingo trains and saves the input embeddings only, and its
    `resize_token_embeddings` draws the new head rows from N(0, initializer_range) with the global RNG, unseeded,
    on every load). Only when the checkpoint does not carry the head itself and the base LM comes from a folder.
    Sets built.added_head_seed; returns the warning to print (None when nothing was drawn)."""
    fam = built.lm_family
    if not getattr(fam, "added_head_rows_unpublished", False) or not built.cfg["lang"].get("path"):
        return None
    lm = built.model.lang_encoder
    head = lm.get_output_embeddings().weight
    if head is lm.get_input_embeddings().weight:
        return None  # tied: the rows are the (published) input embeddings
    head_names = [n for n, t in built.model.state_dict(keep_vars=True).items() if t is head]
    if any(n in sd for n in head_names):
        return None  # the checkpoint carries the whole head
    base_vocab = int(fam.read_lm_config(Path(built.lm_dir))["vocab_size"])
    n_new = head.shape[0] - base_vocab
    if n_new <= 0:
        return None
    std = draw_added_head_rows(lm, base_vocab, seed)
    built.added_head_seed = int(seed)
    toks = ", ".join(f"{built.tokenizer.convert_ids_to_tokens(i)} ({i})" for i in range(base_vocab, head.shape[0]))
    return (f"WARNING: the LM-head rows of {toks} are in no published file (OpenFlamingo trains and saves only "
            f"the input embeddings of its added tokens; its resize draws these head rows at random, unseeded, "
            f"on every load, so OpenFlamingo's own results with this model vary from load to load). They are "
            f"drawn here from N(0, {std:g}^2) with --added-head-seed {int(seed)}, recorded in model.yaml "
            "(source.added_head_seed). <|endofchunk|> is the stop token: when generation stops depends on it.")
