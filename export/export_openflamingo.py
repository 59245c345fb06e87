"""Export an OpenFlamingo model (config + checkpoint state dict) to the flamingo-eval model contract.

    export/.venv/bin/python -m export.export_openflamingo --config CFG.yaml --checkpoint STATE_DICT --out DIR

The model is built by open_flamingo's own factory (export/build.py), the three graphs are exported with
torch.onnx (export/onnx_export.py), then PyTorch and onnxruntime are compared on fixed inputs
(export/parity.py); the export fails unless logits agree within --tol and greedy and beam-3 tokens are
identical. Everything is written to a temporary sibling directory and renamed into place at the end, so a
failed export leaves nothing behind. See export/README.md and export/CONTRACT.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

if __package__ in (None, ""):  # allow `python export/export_openflamingo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "export"

import yaml  # noqa: E402

from .config import ExportError, load_config, staging_dir  # noqa: E402

EXPORTER_VERSION = "0.1.0"
CONTRACT_VERSION = 3
_INTERP = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest", "lanczos": "lanczos"}


def preprocess_info(image_processor) -> dict:
    """Read the preprocessing off open_clip's own transform (and refuse shapes the contract can't say)."""
    from torchvision import transforms as T

    ts = list(getattr(image_processor, "transforms", []))
    kinds = [getattr(t, "__name__", type(t).__name__) for t in ts]
    try:
        resize, crop, rgb, to_tensor, norm = ts
        assert isinstance(resize, T.Resize) and isinstance(crop, T.CenterCrop)
        assert isinstance(to_tensor, T.ToTensor) and isinstance(norm, T.Normalize)
        assert getattr(rgb, "__name__", "") == "_convert_to_rgb"
    except (ValueError, AssertionError):
        raise ExportError(f"unsupported open_clip preprocessing {ts!r} {kinds}: the contract describes "
                          "Resize(shortest side) + CenterCrop + RGB + ToTensor + Normalize")
    size = resize.size if isinstance(resize.size, int) else resize.size[0]
    if not isinstance(resize.size, int) and len(resize.size) != 1:
        raise ExportError(f"unsupported Resize size {resize.size!r} (expected an int: shortest side)")
    crop_size = crop.size[0] if isinstance(crop.size, (tuple, list)) else crop.size
    if crop_size != size:
        raise ExportError(f"resize {size} and centre crop {crop_size} differ; the contract has one image_size")
    interp = resize.interpolation.value if hasattr(resize.interpolation, "value") else str(resize.interpolation)
    if interp not in _INTERP:
        raise ExportError(f"unsupported interpolation {interp!r}")
    return {"image_size": int(size), "resize": "shortest_side", "interpolation": _INTERP[interp],
            "crop": "center", "mean": [float(x) for x in norm.mean], "std": [float(x) for x in norm.std]}


def _scalar(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def dump_manifest(m: dict) -> str:
    """Deterministic YAML in the key order of CONTRACT.md (leaf lists and components in flow style)."""
    lines = []

    def emit(d, indent):
        pad = "  " * indent
        for k, v in d.items():
            if isinstance(v, dict) and all(not isinstance(x, (dict, list)) for x in v.values()) and indent == 1:
                inner = ", ".join(f"{kk}: {_scalar(vv)}" for kk, vv in v.items())
                lines.append(f"{pad}{k}: {{{inner}}}")
            elif isinstance(v, dict):
                lines.append(f"{pad}{k}:")
                emit(v, indent + 1)
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: [{', '.join(_scalar(x) for x in v)}]")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")

    emit(m, 0)
    return "\n".join(lines) + "\n"


def _component(path: Path, name: str) -> dict:
    """A component entry: its file and hash, plus its external tensor file when the graph has one."""
    from .build import sha256_file
    from .onnx_export import external_data_file

    entry = {"file": name, "sha256": sha256_file(path)}
    data = external_data_file(path)
    if data.exists():
        entry["external_data"] = {"file": data.name, "sha256": sha256_file(data)}
    return entry


def check_family_bos(built, rules: dict) -> None:
    """A family that says what its released tokenizer does about BOS (LLaMA: prepends it) refuses a tokenizer
    that does otherwise: OpenFlamingo's eval tokenises with the tokenizer as loaded, so it would not be the
    published model's prompt."""
    fam_bos = getattr(built.lm_family, "add_bos", None)
    if fam_bos is not None and rules["add_bos"] != fam_bos:
        raise ExportError(
            f"the tokenizer at {built.cfg['tokenizer']['path']} "
            f"{'prepends' if rules['add_bos'] else 'does not prepend'} BOS, but lang.family {built.family}'s "
            f"released tokenizer {'does' if fam_bos else 'does not'} (OpenFlamingo's eval tokenises with it as "
            "loaded): use the tokenizer files released with the LM")


def build_manifest(built, graphs: dict, files: dict, checkpoint_sha: str, ln_post_applied_by_open_clip: bool,
                   compensated: bool, preset: Optional[str] = None) -> dict:
    from .build import sha256_file
    from .tokenizer_rules import tokenizer_rules

    tok = built.tokenizer
    cfg = built.cfg
    pre = preprocess_info(built.image_processor)
    if pre["image_size"] != graphs["vision"]["image_size"]:
        raise ExportError(f"preprocess image_size {pre['image_size']} != vision tower input "
                          f"{graphs['vision']['image_size']}")
    vision = {k: graphs["vision"][k] for k in ("patch_size", "num_patches", "width", "embed_dim")}
    lang = dict(graphs["lang"])
    lang.update({"family": built.family, "uses_position_ids": built.lm_family.uses_position_ids,
                 "cross_attn_every_n_layers": cfg["cross_attn_every_n_layers"]})
    lang = {k: lang[k] for k in ("family", "n_layers", "n_heads", "head_dim", "hidden", "vocab_size",
                                 "max_positions", "uses_position_ids", "cross_attn_every_n_layers")}
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<image>", "<|endofchunk|>")}
    if tok.pad_token_id is None:
        raise ExportError("the tokenizer has no pad token after open_flamingo's factory (expected <PAD>)")
    for t, i in ids.items():
        if i is None or i == tok.unk_token_id and tok.unk_token != t or i >= lang["vocab_size"]:
            raise ExportError(f"special token {t} has id {i}, outside the LM head ({lang['vocab_size']} rows)")
    rules = tokenizer_rules(tok, lang["vocab_size"])
    check_family_bos(built, rules)
    return {
        "contract_version": CONTRACT_VERSION,
        "exporter_version": EXPORTER_VERSION,
        "opset": 17,
        "name": cfg["name"],
        "source": {
            "checkpoint_sha256": checkpoint_sha,
            "open_flamingo_version": metadata.version("open_flamingo"),
            "open_clip_version": metadata.version("open_clip_torch"),
            "patch_tokens_ln_post": bool(ln_post_applied_by_open_clip and not compensated),
            # only when LM-head rows were drawn (rows in no published file: seed_added_head_rows)
            **({"added_head_seed": built.added_head_seed} if built.added_head_seed is not None else {}),
            # only for `--preset` exports: the published model this export claims to be (reports match published
            # rows by it together with checkpoint_sha256, never by `name`)
            **({"preset": preset} if preset else {}),
        },
        "components": {k: _component(files[k], v) for k, v in
                       (("vision_encoder", "vision_encoder.onnx"), ("perceiver", "perceiver.onnx"),
                        ("lang_decoder", "lang_decoder.onnx"), ("xattn_kv", "xattn_kv.onnx"),
                        ("tokenizer", "tokenizer.json"))},
        "preprocess": pre,
        "vision": vision,
        "perceiver": graphs["perceiver"],
        "lang": lang,
        "special_tokens": {"image": ids["<image>"], "endofchunk": ids["<|endofchunk|>"], "pad": tok.pad_token_id,
                           "eos": tok.eos_token_id, "bos": rules["bos"]},
        "tokenizer": {"add_bos": rules["add_bos"], "padding_side": "left",
                      "clean_up_tokenization_spaces": rules["clean_up_tokenization_spaces"]},
        # contract 3: the decoder takes each gated layer's projected media keys/values (xattn_kv.onnx)
        "cross_attn_cache": graphs["cross_attn_cache"],
    }


def _check_out_dir(out: Path, name: str, checkpoint_sha: str, overwrite: bool):
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"output {out} exists and is not a directory; choose another --out")
    if not any(out.iterdir()):
        return
    man = out / "model.yaml"
    if not man.is_file():
        raise ExportError(f"output directory {out} is not empty and holds no model.yaml (not an exported model); "
                          "choose a new or empty --out")
    try:
        m = yaml.safe_load(man.read_text()) or {}
    except yaml.YAMLError:
        m = {}
    old = (m.get("name"), (m.get("source") or {}).get("checkpoint_sha256"))
    if old != (name, checkpoint_sha) and not overwrite:
        raise ExportError(f"output directory {out} already holds a different model (name {old[0]!r}, checkpoint "
                          f"{old[1]!r}; this export is {name!r}, {checkpoint_sha!r}); choose another --out or "
                          "pass --overwrite to replace it")


def export_model(config, checkpoint, out, *, checkpoint_sha: Optional[str] = None, overwrite: bool = False,
                 tol: Optional[float] = None, max_new_tokens: int = 12, added_head_seed: int = 0,
                 extra: Optional[Callable] = None, log=print, state_dict: Optional[dict] = None,
                 preset: Optional[str] = None, staged: Optional[bool] = None, dtype: str = "fp32") -> dict:
    """Export; returns a report. `extra(built, tmp_dir, compensated)` may add files (goldens) before the rename.
    `staged` (None: decided by the checkpoint's size, export/staged.py): the memory-bounded export.
    `dtype` (export/precision.py): fp32 (contract 3, the default), fp16 or bf16 (contract 4); `tol` defaults to
    that dtype's parity tolerance."""
    import torch

    from . import precision

    from . import staged as stg

    from . import families
    from .build import apply_checkpoint, build_model, seed_added_head_rows, sha256_file
    from .checkpoint import analyse, load_state_dict_file, resolve_cross_attn_every
    from .onnx_export import detect_ln_post, export_graphs, low_memory_layout
    from .parity import check_parity, compare_with_ort, torch_reference

    t0 = time.time()
    precision.check_dtype(dtype)
    tol = precision.DEFAULT_TOL[dtype] if tol is None else tol
    cfg = config if isinstance(config, dict) else load_config(config)
    out = Path(out).resolve()
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ExportError(f"checkpoint {checkpoint} does not exist")
    sha = checkpoint_sha or sha256_file(checkpoint)
    _check_out_dir(out, cfg["name"], sha, overwrite)
    staged = stg.decide(staged, checkpoint)
    sd = state_dict if state_dict is not None else load_state_dict_file(checkpoint, log, lazy=staged)
    state_dict = None  # only `sd` holds the checkpoint now: freed once applied
    lay = analyse(sd)
    fam = families.get(cfg["lang"]["family"])
    want = f"lang_encoder.{fam.decoder_layers_attr}."
    if lay.decoder_prefix and lay.decoder_prefix != want:
        raise ExportError(f"checkpoint {checkpoint}: its keys are of a {lay.lm_kind} model ({lay.describe()}), but "
                          f"lang.family {fam.name} puts the decoder layers under {want}N; fix lang.family (or use "
                          "the --preset of the model this checkpoint belongs to; --list-presets)")
    cfg = dict(cfg)
    cfg["cross_attn_every_n_layers"] = resolve_cross_attn_every(
        cfg.get("cross_attn_every_n_layers"), lay, checkpoint, f"{cfg['_path']} (cross_attn_every_n_layers)")
    threads = int(os.environ.get("FLAMINGO_EXPORT_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    tmp = staging_dir(out)
    try:
        with tempfile.TemporaryDirectory() as work:
            built = build_model(cfg, Path(work), log=log)
            from .tokenizer_rules import tokenizer_rules

            check_family_bos(built, tokenizer_rules(built.tokenizer, len(built.tokenizer)))  # before any export
            apply_checkpoint(built, sd, checkpoint, log=log)
            warning = seed_added_head_rows(built, sd, added_head_seed)
            del sd
            if staged:
                stg.drop_temp_lm_weights(built, Path(work), log)
            if warning:
                log(f"[export] {warning}")
            applies = detect_ln_post(built.model.vision_encoder)
            compensate = False
            if applies:
                if not cfg["vision"]["compensate_ln_post"]:
                    raise ExportError(
                        f"open_clip {metadata.version('open_clip_torch')} applies ln_post to the patch tokens "
                        "(open_clip >= 2.23); OpenFlamingo was trained with open_clip <= 2.22, which does not. "
                        "Install the pinned open_clip_torch==2.20.0 (export/setup_venv.sh), or set "
                        "`vision.compensate_ln_post: true` in the config to export tokens without ln_post")
                compensate = True
            log(f"[export] built {cfg['name']} ({built.family}) in {time.time() - t0:.1f}s"
                + (f" (staged; {stg.param_bytes(built.model) / 1e9:.2f} GB of weights)" if staged else ""))
            tok_path = tmp / "tokenizer.json"
            # saved before the parity check tokenises (that leaves padding / truncation set in the tokenizer)
            built.tokenizer.backend_tokenizer.save(str(tok_path), pretty=True)
            if staged:  # the PyTorch half of the parity check while the whole model is there
                t_ref = time.time()
                reference = torch_reference(built, compensate, max_new_tokens)
                log(f"[export] staged: PyTorch parity reference in {time.time() - t_ref:.1f}s")
            t1 = time.time()
            free = (lambda name: stg.free_module(built, name, log)) if staged and extra is None else None
            with low_memory_layout() if staged else contextlib.nullcontext():  # every graph external, unfolded
                graphs = export_graphs(built, tmp, compensate, after=free)
            precision.convert_graphs(tmp, dtype, log)  # fp32: nothing
            files = {"vision_encoder": tmp / "vision_encoder.onnx", "perceiver": tmp / "perceiver.onnx",
                     "lang_decoder": tmp / "lang_decoder.onnx", "xattn_kv": tmp / "xattn_kv.onnx",
                     "tokenizer": tok_path}
            manifest = precision.manifest_for(
                build_manifest(built, graphs, files, sha, applies, compensate, preset=preset), dtype)
            (tmp / "model.yaml").write_text(dump_manifest(manifest))
            log(f"[export] graphs written in {time.time() - t1:.1f}s")
            if staged:
                if extra is not None:
                    extra(built, tmp, compensate)
                stg.free_model(built, log)
            t2 = time.time()
            import onnx

            for k in ("vision_encoder", "perceiver", "lang_decoder", "xattn_kv"):
                onnx.checker.check_model(str(files[k]))
            if staged:
                parity = compare_with_ort(reference, tmp, tol, dtype=dtype)
            else:
                parity = check_parity(built, tmp, compensate, tol=tol, max_new_tokens=max_new_tokens, dtype=dtype)
            log(f"[export] parity ok ({dtype}) in {time.time() - t2:.1f}s: max abs diff {parity['max_abs_diff']:.3g} "
                f"(relative to each tensor's size {parity['max_rel_diff']:.3g}; tol {tol:g}), greedy identical {parity['greedy_tokens_identical']}, "
                f"beam-3 identical {parity['beam3_tokens_identical']}")
            for note in parity.get("notes", []):
                log(f"[export] parity: {note}")
            if extra is not None and not staged:
                extra(built, tmp, compensate)
            if staged:
                log(f"[export] staged: peak resident memory {stg.rss_gb():.2f} GB")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    return {"name": cfg["name"], "out": str(out), "seconds": round(time.time() - t0, 1), "parity": parity,
            "sizes": sizes, "dtype": dtype, **({"staged": True} if staged else {})}


def _swap_into_place(tmp: Path, out: Path):
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def export_preset(preset: str, out, *, checkpoint=None, lm=None, clip=None, clip_model=None, download=False,
                  cache_dir=None, log=print, name: Optional[str] = None, **kw) -> dict:
    """Export a published model from the files a user downloaded (see export/presets.py)."""
    from . import presets
    from .checkpoint import analyse, load_state_dict_file

    from .staged import decide

    p = presets.get(preset)
    files = presets.resolve_files(p, checkpoint, lm, clip, download=download, cache_dir=cache_dir, log=log)
    kw["staged"] = decide(kw.get("staged"), files["checkpoint"])
    holder = [load_state_dict_file(files["checkpoint"], log, lazy=kw["staged"])]
    cfg = presets.preset_config(p, files, holder[0], analyse(holder[0]), clip_model=clip_model, log=log)
    if name:
        cfg["name"] = name
    # handed over without a reference left here, so the checkpoint's tensors are freed once applied
    return export_model(cfg, files["checkpoint"], out, state_dict=holder.pop(), log=log, preset=p.name, **kw)


@contextlib.contextmanager
def quiet(verbose: bool):
    """torch / transformers / open_clip warning pages hidden unless --verbose (errors still shown)."""
    if verbose:
        yield
        return
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = {}
        for name in ("transformers", "torch", "open_clip", "root", "huggingface_hub"):
            lg = logging.getLogger(None if name == "root" else name)
            saved[name] = lg.level
            lg.setLevel(logging.ERROR)
        try:
            from transformers.utils import logging as hf_logging

            hf_level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
        except ImportError:
            hf_level = None
        try:
            yield
        finally:
            for name, lvl in saved.items():
                logging.getLogger(None if name == "root" else name).setLevel(lvl)
            if hf_level is not None:
                hf_logging.set_verbosity(hf_level)


class _FilteredStderr:
    """Keeps the exporter's own `[export] ...` lines and errors; drops third-party chatter (factory prints,
    MosaicML init messages) unless --verbose."""

    def __init__(self, real):
        self.real = real
        self.buf = ""

    def write(self, s):
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            if line.startswith(("[export]", "export_openflamingo:")):
                self.real.write(line + "\n")
        return len(s)

    def flush(self):
        self.real.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="export_openflamingo", description=__doc__.split("\n\n")[0])
    src = ap.add_argument_group("what to export (one of)")
    src.add_argument("--config", help="export config YAML (see export/README.md)")
    src.add_argument("--preset", help="a published model, named as published (--list-presets)")
    ap.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    ap.add_argument("--checkpoint", help="OpenFlamingo checkpoint.pt (state dict: .pt/.pth/.bin or .safetensors); "
                                         "with --preset it may come from the Hugging Face cache")
    ap.add_argument("--lm", help="--preset: the LM folder as released (config.json, weights, tokenizer, remote code)")
    ap.add_argument("--clip", help="--preset: the open_clip weights file (e.g. ViT-L-14 'openai')")
    ap.add_argument("--clip-model", help="--preset: open_clip model name or a JSON model config file "
                                         "(default: the preset's)")
    ap.add_argument("--download", action="store_true",
                    help="--preset: fetch what is not given through huggingface_hub / open_clip into their caches")
    ap.add_argument("--cache-dir", help="--preset: Hugging Face cache folder (default: huggingface_hub's)")
    ap.add_argument("--out", help="model directory to create")
    ap.add_argument("--overwrite", action="store_true", help="replace a different model already in --out")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"],
                    help="graph precision (export/precision.py, CONTRACT.md 'Precision'): fp32 (default), fp16 "
                         "(float16 graphs), bf16 (bf16-rounded weights, fp32 compute)")
    ap.add_argument("--tol", type=float, default=None,
                    help="difference allowed against PyTorch fp32 (default per --dtype: fp32 1e-4 max abs; fp16 2e-2, "
                         "bf16 8e-2 relative: max abs diff <= tol x max(1, max |reference|) per tensor)")
    ap.add_argument("--max-new-tokens", type=int, default=12, help="tokens generated by the parity check")
    ap.add_argument("--added-head-seed", type=int, default=0,
                    help="seed for LM-head rows of OpenFlamingo's added tokens that no published file holds "
                         "(LLaMA-based v1 models; recorded in model.yaml as source.added_head_seed)")
    ap.add_argument("--staged", dest="staged", action="store_true", default=None,
                    help="memory-bounded export (lazy checkpoint, one graph at a time, PyTorch freed before the "
                         "onnxruntime checks; export/staged.py). Default: on for checkpoints of 1 GB and more")
    ap.add_argument("--no-staged", dest="staged", action="store_false", help="never the staged export")
    ap.add_argument("--verbose", action="store_true", help="show torch / transformers warnings and factory output")
    a = ap.parse_args(argv)
    if a.list_presets:
        from .presets import list_presets

        print(list_presets())
        return 0
    if bool(a.config) == bool(a.preset):
        ap.error("give exactly one of --config and --preset")
    if not a.out:
        ap.error("--out is required")
    if a.config and (a.lm or a.clip or a.clip_model or a.download):
        ap.error("--lm / --clip / --clip-model / --download go with --preset (a --config names its own files)")
    if a.config and not a.checkpoint:
        ap.error("--checkpoint is required with --config")
    real_err = sys.stderr
    log = (lambda s: print(s, file=real_err))
    if not a.verbose:
        sys.stderr = _FilteredStderr(real_err)
    try:
        with quiet(a.verbose):
            if a.preset:
                rep = export_preset(a.preset, a.out, checkpoint=a.checkpoint, lm=a.lm, clip=a.clip,
                                    clip_model=a.clip_model, download=a.download, cache_dir=a.cache_dir,
                                    overwrite=a.overwrite, tol=a.tol, max_new_tokens=a.max_new_tokens,
                                    added_head_seed=a.added_head_seed, log=log, staged=a.staged, dtype=a.dtype)
            else:
                rep = export_model(a.config, a.checkpoint, a.out, overwrite=a.overwrite, tol=a.tol,
                                   max_new_tokens=a.max_new_tokens, added_head_seed=a.added_head_seed, log=log,
                                   staged=a.staged, dtype=a.dtype)
    except ExportError as e:
        print(f"export_openflamingo: error: {e}", file=real_err)
        return 2
    finally:
        sys.stderr = real_err
    print(json.dumps(rep, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
