"""PyTorch golden outputs for the tiny fixture models (tests/fixtures/models/<name>/golden/).

Everything here runs the real open_flamingo / open_clip modules (Flamingo.forward, Flamingo.generate as
OpenFlamingo's eval calls it, open_clip's preprocess). The cases are described in export/README.md.
Tensors are raw little-endian float32 / int64 files in C order, indexed by goldens.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .parity import (PROMPT_2SHOT, of_generate, positions, tokenize, torch_logits_with_positions, torch_vision,
                     vision_x_for)

REPO = Path(__file__).resolve().parent.parent
IMAGES_DIR = REPO / "tests" / "fixtures" / "images"

PNG, JPEG = "chelsea.png", "rocket.jpg"
PREFILL_IMAGES = ["chelsea.png", "rocket.jpg", "coffee.png"]  # cat, rocket, query
RICES_IMAGES = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"]
VIDEO_FRAMES = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"]
LOGLIK_PROMPT = ("<image>Question:What animal is this? Short answer:cat<|endofchunk|>\n"
                 "<image>Question:Is this a rocket? Short answer:")
LOGLIK_IMAGES = ["chelsea.png", "rocket.jpg"]
CANDIDATES = ["yes", "no", "a cat"]
BATCH_PROMPTS = [PROMPT_2SHOT, "<image>Question:What is this? Short answer:"]
BATCH_IMAGES = [PREFILL_IMAGES, ["grace_hopper.jpg"]]
GEN_MAX_NEW_TOKENS = 15
# Texts whose decoding depends on transformers' clean_up_tokenization_spaces (and on skipping special tokens);
# each is tokenised without special tokens and decoded back as OpenFlamingo's eval decodes generations.
DECODE_TEXTS = ["it ' s a cat .", "Hello , world ! Is it ?", "I 'm sure they 're here ; we 've seen it",
                "do n't stop", " ' ", "a<|endofchunk|>b .", "<image>Output: isn ' t it ?<|endofchunk|>",
                "no change here", "two  . spaces", "x ' ' y"]
BATCH_MAX_NEW_TOKENS = 10


class Writer:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.tensors = {}

    def add(self, name: str, arr) -> str:
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            arr, ext, dt = arr.astype("<f4"), "f32", "float32"
        elif arr.dtype.kind in "iub":
            arr, ext, dt = arr.astype("<i8"), "i64", "int64"
        else:
            raise TypeError(arr.dtype)
        fn = f"{name}.{ext}"
        (self.root / fn).write_bytes(np.ascontiguousarray(arr).tobytes())
        self.tensors[name] = {"file": fn, "dtype": dt, "shape": list(arr.shape)}
        return name


def load_pixels(image_processor, names):
    from PIL import Image

    out = []
    for n in names:
        with Image.open(IMAGES_DIR / n) as im:
            out.append(image_processor(im))
    return torch.stack(out)


def _ids(t: torch.Tensor):
    return t.long().tolist()


def decode_case(tok) -> dict:
    """`batch_decode(ids, skip_special_tokens=True)` with the tokenizer's own clean-up flag, and without it."""
    ids = [list(tok(t, add_special_tokens=False).input_ids) for t in DECODE_TEXTS]
    return {
        "description": "batch_decode(ids, skip_special_tokens=True) as OpenFlamingo's eval decodes generations, "
                       "with the tokenizer's clean_up_tokenization_spaces (expected) and with it off "
                       "(expected_without_cleanup)",
        "clean_up_tokenization_spaces": bool(tok.clean_up_tokenization_spaces),
        "texts": DECODE_TEXTS, "token_ids": ids,
        "expected": tok.batch_decode(ids, skip_special_tokens=True),
        "expected_without_cleanup": tok.batch_decode(ids, skip_special_tokens=True,
                                                     clean_up_tokenization_spaces=False)}


def _generate(model, vx, ids, mask, max_new_tokens, num_beams):
    """Flamingo.generate as OpenFlamingo's eval calls it; refused when it generates <image> (it then re-conditions
    every row, a defect the contract does not reproduce, so such goldens could not be met by a correct runtime)."""
    from .config import ExportError
    from .parity import image_token_watch

    with image_token_watch(model) as w:
        out = of_generate(model, vx, ids, mask, max_new_tokens, num_beams)
    if w["fed"]:
        raise ExportError(f"goldens: Flamingo.generate (num_beams={num_beams}) generated <image> (fed back at step "
                          f"{w['fed'][0]}); choose another seed for this fixture")
    return out


def write_goldens(built, model_dir: Path, compensated: bool) -> None:
    model, tok, proc = built.model, built.tokenizer, built.image_processor
    w = Writer(Path(model_dir) / "golden")
    cases = {}
    eoc = tok.convert_tokens_to_ids("<|endofchunk|>")
    image_tok = tok.convert_tokens_to_ids("<image>")

    def row_info(texts, images):
        ids, mask = tokenize(tok, texts)
        media = (ids == image_tok).long().cumsum(-1)
        return ids, mask, {
            "prompts": texts, "images": images,
            "input_ids": _ids(ids), "attention_mask": _ids(mask), "position_ids": _ids(positions(mask)),
            "media_index": _ids(media), "num_media": [len(x) for x in images],
        }

    with torch_vision(built, compensated) as vis, torch.no_grad():
        # CLIP preprocessing of a real PNG and a real JPEG
        for key, name in (("png", PNG), ("jpeg", JPEG)):
            px = load_pixels(proc, [name])
            cases[f"preprocess_{key}"] = {
                "description": "open_clip preprocess (resize shortest side, bicubic, centre crop, RGB, normalise)",
                "image": name, "pixels": w.add(f"pixels_{key}", px)}
        # vision encoder on both
        px = load_pixels(proc, [PNG, JPEG])
        pooled, tokens = vis(px)
        cases["vision"] = {
            "description": "vision_encoder.onnx: patch tokens (no ln_post, CLS dropped) and projected embedding",
            "images": [PNG, JPEG], "pixels": w.add("vision_pixels", px),
            "patch_tokens": w.add("vision_patch_tokens", tokens),
            "image_embedding": w.add("vision_image_embedding", pooled)}
        # perceiver, one frame per media
        lat = model.perceiver(tokens[:, None, None])
        cases["perceiver"] = {
            "description": "perceiver.onnx on the vision case's patch tokens as B=2 media, T=1, F=1",
            "images": [PNG, JPEG], "patch_tokens": w.add("perceiver_patch_tokens", tokens[:, None, None]),
            "latents": w.add("perceiver_latents", lat)}
        # cross-attention keys/values of those latents (contract 3: xattn_kv.onnx), per gated layer
        from .wrappers import xattn_layers

        layers = model.lang_encoder._get_decoder_layers()
        xl = xattn_layers(model.lang_encoder)
        cases["xattn_kv"] = {
            "description": "xattn_kv.onnx on the perceiver case's latents [B=2,T=1,L,Dv]: each gated "
                           "cross-attention layer's to_kv (keys then values on the last axis)",
            "layers": xl, "latents": "perceiver_latents",
            "xattn_kv": {str(i): w.add(f"xattn_kv_{i}", layers[i].gated_cross_attn_layer.attn.to_kv(lat))
                         for i in xl}}
        fmax = model.perceiver.frame_embs.shape[0] if model.perceiver.frame_embs is not None else 1
        if fmax > 1:
            fpx = load_pixels(proc, VIDEO_FRAMES[:fmax])
            _, ftok = vis(fpx)
            vt = ftok[None, None]  # one media of F frames
            cases["perceiver_video"] = {
                "description": f"perceiver.onnx on one media of {fmax} frames (frame embeddings added), "
                               "B=1, T=1, F=frames; plus the first 2 frames only",
                "frames": VIDEO_FRAMES[:fmax], "patch_tokens": w.add("video_patch_tokens", vt),
                "latents": w.add("video_latents", model.perceiver(vt)),
                "patch_tokens_2frames": w.add("video_patch_tokens_2f", vt[:, :, :2]),
                "latents_2frames": w.add("video_latents_2f", model.perceiver(vt[:, :, :2]))}
        # RICES embeddings
        rpx = load_pixels(proc, RICES_IMAGES)
        emb, _ = vis(rpx)
        nrm = emb / emb.norm(dim=-1, keepdim=True)
        cases["rices"] = {
            "description": "image_embedding for RICES (unnormalised as exported; normalised; cosine similarity)",
            "images": RICES_IMAGES, "image_embedding": w.add("rices_image_embedding", emb),
            "normalized": w.add("rices_normalized", nrm), "similarity": w.add("rices_similarity", nrm @ nrm.T)}

        # 2-shot interleaved prompt: all-position prefill logits via Flamingo.forward
        ids, mask, info = row_info([PROMPT_2SHOT], [PREFILL_IMAGES])
        vx = vision_x_for([load_pixels(proc, PREFILL_IMAGES)])
        logits = model(vision_x=vx, lang_x=ids, attention_mask=mask.bool()).logits
        cases["prefill_2shot"] = {
            "description": "Flamingo.forward logits at every position of a 2-shot prompt (3 images), "
                           "lang_decoder.onnx prefill with logits_keep=S",
            **info, "logits": w.add("prefill_logits", logits)}

    # generation exactly as OpenFlamingo's eval calls Flamingo.generate
    for nb, key in ((1, "generate_greedy"), (3, "generate_beam3")):
        with torch_vision(built, compensated):
            out = _generate(model, vx, ids, mask, GEN_MAX_NEW_TOKENS, nb)
        new = out.sequences[:, ids.shape[1]:]
        case = {
            "description": f"Flamingo.generate(num_beams={nb}, max_new_tokens={GEN_MAX_NEW_TOKENS}, "
                           "length_penalty=0, min_new_tokens=0); eos = pad = <|endofchunk|>; expected tokens "
                           "are the generated ids only (finished rows padded with eos)",
            **info, "num_beams": nb, "max_new_tokens": GEN_MAX_NEW_TOKENS, "length_penalty": 0.0,
            "eos_token_id": eoc, "pad_token_id": eoc,
            "expected_new_tokens": _ids(new),
            "expected_text": tok.batch_decode(new, skip_special_tokens=True)}
        if nb > 1:
            case["expected_sequence_scores"] = [float(x) for x in out.sequences_scores]
        else:
            case["first_step_logits"] = w.add("greedy_first_step_logits", out.scores[0])
        cases[key] = case

    # candidate log-likelihoods after a prompt
    with torch_vision(built, compensated), torch.no_grad():
        ids, mask, info = row_info([LOGLIK_PROMPT], [LOGLIK_IMAGES])
        vx = vision_x_for([load_pixels(proc, LOGLIK_IMAGES)])
        cands = []
        for c in CANDIDATES:
            cid = tok(c, add_special_tokens=False, return_tensors="pt")["input_ids"].long()
            full = torch.cat([ids, cid], dim=1)
            lg = model(vision_x=vx, lang_x=full, attention_mask=torch.ones_like(full).bool()).logits
            lp = torch.log_softmax(lg.float(), dim=-1)[0, ids.shape[1] - 1: -1]
            tlp = lp.gather(1, cid[0][:, None])[:, 0]
            cands.append({"text": c, "token_ids": _ids(cid[0]), "token_logprobs": [float(x) for x in tlp],
                          "sum": float(tlp.sum()), "mean": float(tlp.mean()),
                          "per_char": float(tlp.sum() / len(c))})
        cases["loglik"] = {
            "description": "log-likelihood of each candidate (tokenised alone, no special tokens) after the "
                           "prompt: per-token log-probs, their sum, mean and sum/len(text); the prompt may be "
                           "prefilled once and its KV cache reused for each candidate (media_index of the "
                           "candidate tokens = the row's image count)",
            **info, "candidates": cands}

        # a left-padded batch of two prompts with 3 and 1 images
        ids, mask, info = row_info(BATCH_PROMPTS, BATCH_IMAGES)
        vx = vision_x_for([load_pixels(proc, im) for im in BATCH_IMAGES])
        allpos = torch_logits_with_positions(model, vx, ids, mask, built.lm_family)
    with torch_vision(built, compensated):
        greedy = _generate(model, vx, ids, mask, BATCH_MAX_NEW_TOKENS, 1)
        beam = _generate(model, vx, ids, mask, BATCH_MAX_NEW_TOKENS, 3)
    g_new = greedy.sequences[:, ids.shape[1]:]
    b_new = beam.sequences[:, ids.shape[1]:]
    cases["batch2_leftpad"] = {
        "description": "two prompts of different lengths and image counts, left-padded with <PAD>; "
                       "position_ids = cumsum(mask)-1 (1 at padding); media (vision_latents / xattn_kv) zero-padded to T=3; "
                       "last-position logits of the prefill and Flamingo.generate results per row",
        **info, "max_new_tokens": BATCH_MAX_NEW_TOKENS, "length_penalty": 0.0, "eos_token_id": eoc,
        "pad_token_id": eoc,
        "last_logits": w.add("batch_last_logits", allpos[:, -1]),
        "first_step_logits_generate": w.add("batch_first_step_logits", greedy.scores[0]),
        "expected_greedy_new_tokens": _ids(g_new),
        "expected_greedy_text": tok.batch_decode(g_new, skip_special_tokens=True),
        "expected_beam3_new_tokens": _ids(b_new),
        "expected_beam3_text": tok.batch_decode(b_new, skip_special_tokens=True),
        "expected_beam3_sequence_scores": [float(x) for x in beam.sequences_scores]}

    cases["decode"] = decode_case(tok)

    doc = {
        "format_version": 1,
        "model": built.cfg["name"],
        "images_dir": "tests/fixtures/images",
        "special_tokens": {"image": image_tok, "endofchunk": eoc, "pad": tok.pad_token_id},
        "tensors": w.tensors,
        "cases": cases,
    }
    (w.root / "goldens.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
