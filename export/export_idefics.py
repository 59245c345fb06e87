"""Export an IDEFICS model (Hugging Face folder) to a flamingo-eval model directory (contract version 3).

    export/.venv/bin/python -m export.export_idefics --preset idefics-9b --model-dir FOLDER --out DIR
        [--cross-attn-compat transformers-4.33] [--name NAME] [--overwrite]
    export/.venv/bin/python -m export.export_idefics --list-presets

FOLDER is what `huggingface-cli download HuggingFaceM4/idefics-9b` writes (config.json, weight shards,
tokenizer files, preprocessor_config.json). The folder is checked against the preset (sizes, vision tower,
processor image size and normalisation), loaded with transformers' IdeficsForVisionText2Text, exported
(export/families/idefics.py), and refused unless ONNX Runtime matches the PyTorch reference (logits <= 1e-4,
identical greedy and beam-3 tokens): transformers 4.36.2 for the default (fixed) cross-attention, the venv's
transformers 4.33.3 for `--cross-attn-compat transformers-4.33`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .config import ExportError, staging_dir
from .families import idefics as fam

IMAGES_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "images"
# demonstrations end with EOS (IDEFICS has no end-of-chunk token): the newline after it attends to no image
PROMPT_2SHOT = "<image>Caption: a cat.</s>\n<image>Caption: a rocket.</s>\n<image>Caption:"
PROMPT_ONE = "Instruction: answer.\n<image>Question: What is this? Answer:"
PROMPT_ADJACENT = "<image><image>Question: Which is first? Answer:"


def _pil(name):
    from PIL import Image

    with Image.open(IMAGES_DIR / name) as im:
        im.load()
        return im.copy()


def _maxdiff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ExportError(f"parity: shape mismatch {a.shape} vs {b.shape}")
    return float(np.abs(a - b).max()) if a.size else 0.0


def _rows(inp):
    from .ortrun import Rows

    mask = inp["attention_mask"].astype(np.int64)
    midx = fam.media_index_from(inp["image_attention_mask"])
    pos = np.cumsum(mask, axis=1) - 1
    pos[mask == 0] = 1
    return Rows(inp["input_ids"].astype(np.int64), mask, midx, pos.astype(np.int64), midx[:, -1].copy())


def _latents(ort, inp):
    px = inp["pixel_values"]
    B, T = px.shape[:2]
    out = np.zeros((B, T, ort.n_latents, ort.dv), dtype=np.float32)
    for b in range(B):
        n = int((inp["input_ids"][b] == ort.image_token).sum())  # the processor keeps that many images
        if n:
            tokens, _ = ort.encode_images(px[b, :n])
            out[b, :n] = ort.perceive(tokens[:, None, None])[:, 0]
    return out


def check_parity(folder: Path, model, tok, proc, model_dir: Path, no_media: str, workdir: Path, tol=1e-4,
                 max_new_tokens=12, log=print) -> dict:
    from .ortrun import OrtModel

    ort = OrtModel(model_dir)
    rep = {}
    g = torch.Generator().manual_seed(2024)
    size = model.config.vision_config.image_size
    px = torch.randn(3, 3, size, size, generator=g).clamp(-2, 2)
    with torch.no_grad():
        vo = model.model.vision_model(pixel_values=px)
        t, e = ort.encode_images(px.numpy())
        rep["vision_patch_tokens"] = _maxdiff(vo.last_hidden_state, t)
        rep["vision_image_embedding"] = _maxdiff(vo.pooler_output, e)
        lat = model.model.perceiver_resampler(vo.last_hidden_state)
        rep["perceiver_latents"] = _maxdiff(lat, ort.perceive(vo.last_hidden_state[:, None, None].numpy())[:, 0])
    imgs = [_pil(n) for n in ("chelsea.png", "rocket.jpg", "coffee.png")]
    cases = {"a": ([PROMPT_2SHOT], [imgs]), "b": ([PROMPT_2SHOT, PROMPT_ONE], [imgs, imgs[2:]]),
             "c": ([PROMPT_ADJACENT], [imgs[:2]])}
    if no_media == "uniform_all_media":  # 4.33 averages the batch's padding images too: rows alone only
        cases["b"] = ([PROMPT_ONE], [imgs[2:]])
    inputs = {k: fam.processor_inputs(tok, proc, *v) for k, v in cases.items()}
    reqs = {}
    for k, inp in inputs.items():
        reqs[f"{k}_logits"] = {**inp, "op": np.array("logits")}
        for nb in (1, 3):
            reqs[f"{k}_gen{nb}"] = {**inp, "op": np.array("generate"), "num_beams": np.array(nb),
                                    "max_new_tokens": np.array(max_new_tokens), "eos": np.array(tok.eos_token_id),
                                    "pad": np.array(tok.eos_token_id)}
    ref = fam.reference(folder, reqs, no_media, workdir, log)
    rep["reference_transformers"] = str(ref["transformers_version"])
    tokens = {}
    for k, inp in inputs.items():
        rows = _rows(inp)
        lat = _latents(ort, inp)
        S = rows.input_ids.shape[1]
        logits, _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat, S,
                               ort.empty_past(len(rows.input_ids)))
        real = rows.attention_mask.astype(bool)
        rep[f"{k}_prefill_logits"] = _maxdiff(ref[f"{k}_logits.logits"][real], logits[real])
        want_g = ref[f"{k}_gen1.sequences"][:, S:]
        got_g = ort.greedy(rows, lat, max_new_tokens, eos=tok.eos_token_id, pad=tok.eos_token_id)
        want_b = ref[f"{k}_gen3.sequences"][:, S:]
        got_b, scores = ort.beam_search(rows, lat, max_new_tokens, num_beams=3, length_penalty=0.0)
        rep[f"{k}_greedy_identical"] = bool(want_g.shape == got_g.shape and (want_g == got_g).all())
        rep[f"{k}_beam3_identical"] = bool(want_b.shape == got_b.shape and (want_b == got_b).all())
        rep[f"{k}_beam3_scores"] = _maxdiff(ref[f"{k}_gen3.sequences_scores"], scores)
        tokens[k] = {"greedy": want_g.tolist(), "beam3": want_b.tolist()}
    rep["tokens"] = tokens
    numeric = {k: v for k, v in rep.items() if isinstance(v, float)}
    rep["max_abs_diff"] = max(numeric.values())
    bad = [f"{k}={v:.3g}" for k, v in numeric.items() if not v <= tol]
    bad += [k for k, v in rep.items() if k.endswith("_identical") and v is not True]
    if bad:
        raise ExportError(f"parity check failed (PyTorch transformers {rep['reference_transformers']} vs "
                          f"onnxruntime, tolerance {tol:g}): " + "; ".join(bad))
    return rep


def export_folder(folder, out, *, preset: Optional[str] = None, compat: Optional[str] = None,
                  name: Optional[str] = None, identity: Optional[str] = None, overwrite: bool = False,
                  extra: Optional[Callable] = None, log=print) -> dict:
    from .export_openflamingo import dump_manifest
    from .presets import IDEFICS_PRESETS

    t0 = time.time()
    folder, out = Path(folder).resolve(), Path(out).resolve()
    p = None
    if preset is not None:
        if preset not in IDEFICS_PRESETS:
            raise ExportError(f"unknown IDEFICS preset {preset!r}; known: {', '.join(sorted(IDEFICS_PRESETS))}")
        p = IDEFICS_PRESETS[preset]
    mode = compat or "fixed"
    if mode not in fam.MODES:
        raise ExportError(f"--cross-attn-compat {compat!r}: known modes are {', '.join(m for m in fam.MODES if m != 'fixed')}")
    no_media = fam.MODES[mode]
    info = fam.check_folder(folder, p)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"output directory {out} is not empty (use --overwrite)")
    identity = identity or fam.folder_identity(folder)
    model, tok, proc = fam.load_folder(folder)
    tmp = staging_dir(out)
    try:
        with tempfile.TemporaryDirectory() as work:
            d = fam.export_graphs(model, tmp, no_media)
            tok.save_pretrained(str(Path(work) / "tok"))
            shutil.copy(Path(work) / "tok" / "tokenizer.json", tmp / "tokenizer.json")
            files = {k: tmp / f"{k}.onnx" for k in ("vision_encoder", "perceiver", "lang_decoder")}
            files["tokenizer"] = tmp / "tokenizer.json"
            man = fam.build_manifest(model, tok, info["preprocessor"], d, files, name or (p.name if p else folder.name),
                                     identity, no_media, p.name if p else None)
            (tmp / "model.yaml").write_text(dump_manifest(man))
            parity = check_parity(folder, model, tok, proc, tmp, no_media, Path(work), log=log)
            if extra is not None:
                extra(folder, model, tok, proc, tmp, no_media, Path(work))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sizes = {f.name: f.stat().st_size for f in out.iterdir() if f.is_file()}
    return {"out": str(out), "mode": mode, "parity": parity, "sizes": sizes, "seconds": round(time.time() - t0, 1)}


def main(argv=None) -> int:
    from .presets import IDEFICS_PRESETS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", help="idefics-9b | idefics-9b-instruct | idefics-80b | idefics-80b-instruct")
    ap.add_argument("--model-dir", help="the downloaded Hugging Face folder")
    ap.add_argument("--out")
    ap.add_argument("--name")
    ap.add_argument("--cross-attn-compat", choices=[m for m in fam.MODES if m != "fixed"],
                    help="reproduce transformers <= 4.35 (tokens before the first image attend to a uniform "
                         "average of all images) instead of the fixed behaviour of >= 4.36")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--list-presets", action="store_true")
    a = ap.parse_args(argv)
    if a.list_presets:
        for p in IDEFICS_PRESETS.values():
            print(f"{p.name:22s} {p.repo}  LLaMA {p.num_hidden_layers} x {p.hidden_size}, cross-attention every "
                  f"{p.cross_layer_interval}")
        return 0
    if not (a.model_dir and a.out):
        ap.error("--model-dir and --out are required")
    try:
        rep = export_folder(a.model_dir, a.out, preset=a.preset, compat=a.cross_attn_compat, name=a.name,
                            overwrite=a.overwrite, log=lambda s: print(s, file=sys.stderr))
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
