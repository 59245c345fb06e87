"""PyTorch (the real open_flamingo Flamingo) versus onnxruntime (the exported graphs), on fixed inputs."""
from __future__ import annotations

import contextlib
import types
from pathlib import Path

import numpy as np
import torch

from .config import ExportError
from .ortrun import OrtModel, prepare_rows
from .wrappers import visual_tokens_without_ln_post

PROMPT_2SHOT = "<image>Output:a cat.<|endofchunk|><image>Output:a rocket.<|endofchunk|><image>Output:"
PROMPT_VQA = "<image>Question:What is in the picture? Short answer:"


@contextlib.contextmanager
def torch_vision(built, compensate: bool):
    """Inside, model.vision_encoder returns what the exported vision graph returns."""
    visual = built.model.vision_encoder
    if not compensate:
        yield visual
        return
    saved = visual.forward
    visual.forward = types.MethodType(visual_tokens_without_ln_post, visual)
    try:
        yield visual
    finally:
        visual.forward = saved


def tokenize(tokenizer, texts):
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, padding="longest", truncation=True, max_length=2000, return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()


def vision_x_for(pixels_per_row):
    """OpenFlamingo eval's _prepare_images: (B, T_img, 1, C, H, W), zero images for missing slots."""
    T = max(len(p) for p in pixels_per_row)
    c, h, w = pixels_per_row[0][0].shape
    vx = torch.zeros(len(pixels_per_row), T, 1, c, h, w)
    for b, px in enumerate(pixels_per_row):
        for t, p in enumerate(px):
            vx[b, t, 0] = p
    return vx


def positions(mask: torch.Tensor) -> torch.Tensor:
    pos = mask.long().cumsum(-1) - 1
    pos.masked_fill_(mask == 0, 1)
    return pos


def torch_logits_with_positions(model, vision_x, input_ids, mask, family):
    """All-position logits through the real OpenFlamingo modules with HF-generate positions (what
    Flamingo.generate's first step computes)."""
    with torch.no_grad():
        model._encode_vision_x(vision_x=vision_x)
        model._condition_media_locations(input_ids=input_ids)
        try:
            # rotary/learned positions are passed explicitly; ALiBi needs none (the family says)
            kw = family.torch_forward_kwargs(positions(mask))
            out = model.lang_encoder(input_ids=input_ids, attention_mask=mask.bool(), **kw)
        finally:
            model.lang_encoder.clear_conditioned_layers()
    return out.logits


def of_generate(model, vision_x, input_ids, mask, max_new_tokens, num_beams):
    """Flamingo.generate exactly as OpenFlamingo's eval calls it (plus score outputs)."""
    with torch.inference_mode():
        out = model.generate(vision_x, input_ids, mask.bool(), min_new_tokens=0, max_new_tokens=max_new_tokens,
                             num_beams=num_beams, length_penalty=0.0, return_dict_in_generate=True,
                             output_scores=True)
    return out


@contextlib.contextmanager
def image_token_watch(model, keep_cached_media: bool = False):
    """Inside, the dict it yields says at which LM calls of Flamingo.generate (1 = the first decode step) a
    GENERATED token is `<image>` (`fed`), and whether every decode call fed one token through the KV cache
    (`cached`; without a cache the whole sequence is fed again). With keep_cached_media (cached decoding only),
    decode steps do not re-condition on such a token: FlamingoLMMixin.forward then keeps the cached media
    locations, so every decode step attends to the row's last image (the contract's semantics)."""
    lm = model.lang_encoder
    info, media_id, state = {"fed": [], "cached": True}, lm.media_token_id, {"calls": 0, "prompt": None}

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        k = state["calls"]
        if k == 0:
            state["prompt"] = ids.shape[1]
        elif ids is not None:
            gen = ids if ids.shape[1] == 1 else ids[:, state["prompt"]:]
            info["cached"] = info["cached"] and ids.shape[1] == 1
            if bool((gen == media_id).any()):
                info["fed"].append(k)
        if keep_cached_media:  # prefill (call 0) finds the prompt's images; decode steps see no media token
            module.media_token_id = media_id if k == 0 else -1
        state["calls"] += 1

    h = lm.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield info
    finally:
        h.remove()
        lm.media_token_id = media_id


def _maxdiff(a, b) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a.shape != b.shape:
        raise ExportError(f"parity: shape mismatch {a.shape} vs {b.shape}")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def check_parity(built, model_dir, compensate: bool, tol: float = 1e-4, max_new_tokens: int = 12,
                 dtype: str = "fp32") -> dict:
    """PyTorch versus onnxruntime; the PyTorch half first (torch_reference), then the onnxruntime half."""
    return compare_with_ort(torch_reference(built, compensate, max_new_tokens), model_dir, tol, dtype=dtype)


def torch_reference(built, compensate: bool, max_new_tokens: int = 12) -> dict:
    """Everything the parity check needs from PyTorch, as numpy arrays, so that the PyTorch model can be freed
    before the onnxruntime sessions are created (export/staged.py: a full-size model does not fit twice)."""
    model, tok = built.model, built.tokenizer
    visual = model.vision_encoder
    h, w = visual.image_size
    g = torch.Generator().manual_seed(2024)
    px = torch.randn(4, 3, h, w, generator=g).clamp(-2, 2)
    fmax = model.perceiver.frame_embs.shape[0] if model.perceiver.frame_embs is not None else 1
    ref = {"px": px.numpy(), "image_token": tok.convert_tokens_to_ids("<image>"), "perceiver": []}
    with torch_vision(built, compensate) as vis, torch.no_grad():
        pooled, tokens = vis(px)
        ref["vision_patch_tokens"], ref["vision_image_embedding"] = tokens.numpy(), pooled.numpy()
        # perceiver, incl. a multi-frame case
        P, Dv = tokens.shape[1], tokens.shape[2]
        for shape in ((3, 1, 1), (1, 2, fmax), (2, 3, max(1, fmax - 1))):
            pt = torch.randn(*shape, P, Dv, generator=g)
            ref["perceiver"].append((pt.numpy(), model.perceiver(pt).numpy()))
        # cross-attention keys/values (contract 3): each gated layer's own to_kv on latents
        from .wrappers import xattn_layers

        layers = model.lang_encoder._get_decoder_layers()
        ref["xattn_layers"] = list(xattn_layers(model.lang_encoder))
        lt = torch.randn(2, 3, model.perceiver.latents.shape[0], Dv, generator=g)
        ref["xattn_latents"] = lt.numpy()
        ref["xattn_kv"] = {i: layers[i].gated_cross_attn_layer.attn.to_kv(lt).numpy() for i in ref["xattn_layers"]}
        # decoder: one 2-shot prompt, full-sequence logits vs Flamingo.forward
        ids, mask = tokenize(tok, [PROMPT_2SHOT])
        ref["ids1"], ref["mask1"] = ids.numpy(), mask.numpy()
        ref["logits1"] = model(vision_x=vision_x_for([px[:3]]), lang_x=ids, attention_mask=mask.bool()).logits.numpy()
        # decoder: a left-padded batch of two rows with 3 and 1 images
        ids, mask = tokenize(tok, [PROMPT_2SHOT, PROMPT_VQA])
        vx = vision_x_for([px[:3], px[3:4]])
        ref["ids2"], ref["mask2"] = ids.numpy(), mask.numpy()
        ref["logits2"] = torch_logits_with_positions(model, vx, ids, mask, built.lm_family).numpy()

    # generation through Flamingo.generate (compared with the ORT driver in compare_with_ort)
    # (inside torch_vision: with compensate_ln_post, Flamingo.generate must see the exported vision tokens)
    # A generated <image> token makes Flamingo.generate re-condition the media locations of every row from the
    # next step on (`media_locations.any()` is batch-wide; README fidelity notes): a defect the contract does not
    # reproduce (a decode step attends to the row's last image). When it happens, the reference is generated again
    # with that re-conditioning disabled (decode steps use the cached media locations, i.e. the last image).
    notes = []

    def reference(num_beams):
        """(Flamingo.generate output, number of steps to compare or None for all)."""
        with image_token_watch(model) as w:
            out = of_generate(model, vx, ids, mask, max_new_tokens, num_beams)
        if not w["fed"]:
            return out, None
        what = "greedy" if num_beams == 1 else f"beam-{num_beams}"
        msg = (f"{what}: Flamingo.generate generated <image> (fed back at step {w['fed'][0]}) and re-conditioned "
               "every row from there, a defect not reproduced; ")
        if w["cached"]:
            with image_token_watch(model, keep_cached_media=True):
                fixed = of_generate(model, vx, ids, mask, max_new_tokens, num_beams)
            notes.append(msg + "compared against Flamingo.generate with that re-conditioning disabled")
            return fixed, None
        notes.append(msg + f"compared up to that step only")
        return out, w["fed"][0]

    with torch_vision(built, compensate):
        greedy_t, k = reference(1)
        beam_t, kb = reference(3)
    ref["greedy"] = {"k": k, "tokens": greedy_t.sequences[:, ids.shape[1]:].numpy(),
                     "scores": [s.numpy() for s in greedy_t.scores]}
    ref["beam"] = {"k": kb, "tokens": beam_t.sequences[:, ids.shape[1]:].numpy(),
                   "scores": beam_t.sequences_scores.numpy()}
    ref["notes"] = notes
    ref["max_new_tokens"] = max_new_tokens
    return ref


def compare_with_ort(ref: dict, model_dir, tol: float = 1e-4, dtype: str = "fp32") -> dict:
    """The onnxruntime half of the parity check, against torch_reference's arrays (or ort_reference's). `dtype`
    (the export's, export/precision.py): fp32 needs identical greedy and beam-3 tokens; a half-precision export
    may take the other side of a greedy near-tie (within 2 x tol) and its beam-3 tokens are reported only."""
    ort = OrtModel(model_dir)
    if ort.image_token != ref["image_token"]:
        raise ExportError(f"parity: model.yaml's <image> id {ort.image_token} is not the tokenizer's "
                          f"{ref['image_token']}")
    px = ref["px"]
    max_new_tokens = ref["max_new_tokens"]
    rep = {}
    # vision
    o_tokens, o_emb = ort.encode_images(px)
    rep["vision_patch_tokens"] = _maxdiff(ref["vision_patch_tokens"], o_tokens)
    rep["vision_image_embedding"] = _maxdiff(ref["vision_image_embedding"], o_emb)
    rep["perceiver_latents"] = max(_maxdiff(out, ort.perceive(pt)) for pt, out in ref["perceiver"])
    # cross-attention keys/values (contract 3)
    if ort.xattn is not None:
        if ref["xattn_layers"] != list(ort.xattn_layers):
            raise ExportError(f"parity: cross_attn_cache.layers {ort.xattn_layers} are not the gated layers "
                              f"{ref['xattn_layers']}")
        feeds = ort.media_feeds(ref["xattn_latents"])
        rep["xattn_kv"] = max(_maxdiff(ref["xattn_kv"][i], feeds[f"xattn_kv_{i}"]) for i in ort.xattn_layers)
    # decoder: one 2-shot prompt
    ids, mask, full = ref["ids1"], ref["mask1"], ref["logits1"]
    rows = prepare_rows(ids, mask, ort.image_token)
    lat = ort.latents_for_rows([px[:3]])
    logits, _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat,
                           ids.shape[1], ort.empty_past(1))
    rep["prefill_logits"] = _maxdiff(full, logits)
    # logits_keep=1 and a split prefill (cache reuse): same numbers
    logits1, _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat, 1,
                            ort.empty_past(1))
    rep["prefill_logits_keep1"] = _maxdiff(full[:, -1:], logits1)
    cut = ids.shape[1] // 2
    _, past = ort.decode(rows.input_ids[:, :cut], rows.attention_mask[:, :cut], rows.position_ids[:, :cut],
                         rows.media_index[:, :cut], lat, 1, ort.empty_past(1))
    logits2, _ = ort.decode(rows.input_ids[:, cut:], rows.attention_mask, rows.position_ids[:, cut:],
                            rows.media_index[:, cut:], lat, ids.shape[1] - cut, past)
    rep["split_prefill_logits"] = _maxdiff(full[:, cut:], logits2)
    # decoder: a left-padded batch of two rows with 3 and 1 images
    ids, mask = ref["ids2"], ref["mask2"]
    rows = prepare_rows(ids, mask, ort.image_token)
    lat = ort.latents_for_rows([px[:3], px[3:4]])
    logits, _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat,
                           ids.shape[1], ort.empty_past(2))
    real = mask.astype(bool)
    rep["batch_prefill_logits"] = _maxdiff(ref["logits2"][real], logits[real])
    # Half precision: each tensor's tolerance is relative to its size, tol x max(1, max |reference|) (fp32: tol
    # absolute), so that the same --dtype tolerance fits a tiny model's logits (|x| ~ 1) and a real one's (~ 30).
    absmax = lambda *arrs: max(float(np.abs(np.asarray(a, dtype=np.float64)).max()) if np.size(a) else 0.0  # noqa: E731
                               for a in arrs)
    greedy_ref, k, scores = ref["greedy"]["tokens"], ref["greedy"]["k"], ref["greedy"]["scores"]
    scale = {"vision_patch_tokens": absmax(ref["vision_patch_tokens"]),
             "vision_image_embedding": absmax(ref["vision_image_embedding"]),
             "perceiver_latents": absmax(*[out for _, out in ref["perceiver"]]),
             "xattn_kv": absmax(*ref["xattn_kv"].values()) if ref.get("xattn_kv") else 0.0,
             "prefill_logits": absmax(full), "prefill_logits_keep1": absmax(full), "split_prefill_logits": absmax(full),
             "batch_prefill_logits": absmax(ref["logits2"][real]), "greedy_step_logits": absmax(*scores),
             "beam3_sequence_scores": absmax(ref["beam"]["scores"])}
    allowed = (lambda key: tol) if dtype == "fp32" else (lambda key: tol * max(1.0, scale.get(key, 0.0)))

    # generation: Flamingo.generate (torch_reference) vs the ORT driver
    rec = []
    greedy_o = ort.greedy(rows, lat, max_new_tokens, record_logits=rec)
    tie = None
    if dtype != "fp32":
        # half precision: a step where the reference's chosen token and the one onnxruntime chose are within
        # 2 x tol of each other in the reference's own logits is a near-tie the dtype may legitimately flip;
        # from there the two sequences continue from different tokens and are compared no further
        tie = _near_tie(greedy_ref, greedy_o, scores, allowed("greedy_step_logits"))
        if tie is not None:
            step, gap = tie
            rep["notes"] = [f"greedy: tokens agree for {step} of {greedy_ref.shape[1]} steps; at step {step + 1} "
                            f"onnxruntime took the other side of a near-tie (reference logit gap {gap:.3g} <= "
                            f"2 x tolerance): compared up to that step"]
            k = step + 1 if k is None else min(k, step + 1)
    if k is None:
        rep["greedy_step_logits"] = max(_maxdiff(s, r) for s, r in zip(scores, rec)) \
            if len(rec) == len(scores) else float("inf")
        rep["greedy_tokens_identical"] = bool(greedy_ref.shape == greedy_o.shape and (greedy_ref == greedy_o).all())
    else:
        ok = len(rec) >= k and len(scores) >= k
        rep["greedy_step_logits"] = max(_maxdiff(s, r) for s, r in zip(scores[:k], rec[:k])) if ok else float("inf")
        if tie is not None:
            rep["greedy_tokens_identical"] = False
            kk = tie[0]
            tie_ok = bool(ok and (greedy_ref[:, :kk] == greedy_o[:, :kk]).all())
        else:
            rep["greedy_tokens_identical"] = bool(ok and (greedy_ref[:, :k] == greedy_o[:, :k]).all())
    n_steps = min(greedy_ref.shape[1], greedy_o.shape[1])
    rep["greedy_steps_agreeing"] = int(next((i for i in range(n_steps) if (greedy_ref[:, i] != greedy_o[:, i]).any()),
                                            n_steps))
    beam_ref, kb = ref["beam"]["tokens"], ref["beam"]["k"]
    beam_o, beam_scores = ort.beam_search(rows, lat, max_new_tokens, num_beams=3, length_penalty=0.0)
    if kb is None:
        rep["beam3_tokens_identical"] = bool(beam_ref.shape == beam_o.shape and (beam_ref == beam_o).all())
        if rep["beam3_tokens_identical"] or dtype == "fp32":
            rep["beam3_sequence_scores"] = _maxdiff(ref["beam"]["scores"], beam_scores)
    else:
        rep["beam3_tokens_identical"] = "not compared (see notes)"
    rep["notes"] = list(ref["notes"]) + rep.get("notes", [])
    rep["greedy_tokens"] = greedy_ref.tolist()
    rep["beam3_tokens"] = beam_ref.tolist()
    rep["dtype"] = dtype
    rep["tol"] = tol

    numeric = {k: v for k, v in rep.items() if isinstance(v, float) and k != "tol"}
    rep["max_abs_diff"] = max(numeric.values())
    # the largest difference as a fraction of its tensor's size (what a half-precision tol bounds)
    rep["max_rel_diff"] = max(v / max(1.0, scale.get(k, 0.0)) for k, v in numeric.items())
    bad = [f"{k}={v:.3g} (allowed {allowed(k):.3g})" for k, v in numeric.items() if not v <= allowed(k)]
    if tie is not None:
        if not tie_ok:
            bad.append(f"greedy tokens differ before the near-tie: reference {greedy_ref.tolist()} onnx "
                       f"{greedy_o.tolist()}")
    elif not rep["greedy_tokens_identical"]:
        bad.append(f"greedy tokens differ: torch {greedy_ref.tolist()} onnx {greedy_o.tolist()}")
    if rep["beam3_tokens_identical"] is False:
        if dtype == "fp32":
            bad.append(f"beam-3 tokens differ: torch {beam_ref.tolist()} onnx {beam_o.tolist()}")
        else:  # beams keep near-tied hypotheses apart by design: a half-precision flip is reported, not refused
            rep["notes"].append(f"beam-3 tokens differ ({dtype}; reported, not checked): reference "
                                f"{beam_ref.tolist()} onnx {beam_o.tolist()}")
    if bad:
        how = "max abs" if dtype == "fp32" else "x max(1, max |reference|) per tensor"
        raise ExportError(f"parity check failed ({dtype}; reference vs onnxruntime, tolerance "
                          f"{tol:g} {how}): " + "; ".join(bad))
    return rep


def _near_tie(ref_tokens, ort_tokens, ref_scores, tol):
    """(step, gap) of the first greedy step where the tokens differ and the reference's logits of the two chosen
    tokens are within 2 x tol (the logits' tolerance; every differing row); None when they never differ or the
    first difference is not such a near-tie (then the check fails as for fp32)."""
    n = min(ref_tokens.shape[1], ort_tokens.shape[1], len(ref_scores))
    for step in range(n):
        diff = np.nonzero(ref_tokens[:, step] != ort_tokens[:, step])[0]
        if len(diff) == 0:
            continue
        sc = np.asarray(ref_scores[step], dtype=np.float64)
        gaps = [abs(sc[r, ref_tokens[r, step]] - sc[r, ort_tokens[r, step]]) for r in diff]
        return (step, max(gaps)) if max(gaps) <= 2 * tol else None
    return None


def ort_reference(model_dir, max_new_tokens: int = 12) -> dict:
    """torch_reference's arrays computed by onnxruntime on an exported (fp32) model directory: what a converted
    copy of it is compared with (export/precision.py). Prompts are the parity prompts tokenised by the model's
    tokenizer.json (special tokens as text, BOS per the manifest)."""
    from tokenizers import Tokenizer

    ort = OrtModel(model_dir)
    m = ort.manifest
    tok = Tokenizer.from_file(str(Path(model_dir) / m["components"]["tokenizer"]["file"]))
    bos = m["special_tokens"].get("bos") if m["tokenizer"].get("add_bos") else None
    pad = m["special_tokens"]["pad"]

    def batch(texts):
        rows = [([bos] if bos is not None else []) + tok.encode(t, add_special_tokens=False).ids for t in texts]
        S = max(len(r) for r in rows)
        ids = np.full((len(rows), S), pad, np.int64)
        mask = np.zeros((len(rows), S), np.int64)
        for b, r in enumerate(rows):
            ids[b, S - len(r):] = r
            mask[b, S - len(r):] = 1
        return ids, mask

    s = ort.vision.get_inputs()[0].shape
    h = int(m["preprocess"]["image_size"])
    rng = np.random.default_rng(2024)
    px = np.clip(rng.standard_normal((4, 3, h, h)), -2, 2).astype(np.float32)
    del s
    ref = {"px": px, "image_token": ort.image_token, "perceiver": [], "notes": [], "max_new_tokens": max_new_tokens}
    ref["vision_patch_tokens"], ref["vision_image_embedding"] = ort.encode_images(px)
    P, Dv = ref["vision_patch_tokens"].shape[1:]
    fmax = int(m["perceiver"]["max_frames"])
    for shape in ((3, 1, 1), (1, 2, fmax), (2, 3, max(1, fmax - 1))):
        pt = rng.standard_normal((*shape, P, Dv)).astype(np.float32)
        ref["perceiver"].append((pt, ort.perceive(pt)))
    ref["xattn_layers"] = list(ort.xattn_layers)
    lt = rng.standard_normal((2, 3, ort.n_latents, Dv)).astype(np.float32)
    ref["xattn_latents"] = lt
    if ort.xattn is not None:
        feeds = ort.media_feeds(lt)
        ref["xattn_kv"] = {i: feeds[f"xattn_kv_{i}"] for i in ort.xattn_layers}
    ids, mask = batch([PROMPT_2SHOT])
    ref["ids1"], ref["mask1"] = ids, mask
    rows = prepare_rows(ids, mask, ort.image_token)
    ref["logits1"], _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index,
                                   ort.latents_for_rows([px[:3]]), ids.shape[1], ort.empty_past(1))
    ids, mask = batch([PROMPT_2SHOT, PROMPT_VQA])
    ref["ids2"], ref["mask2"] = ids, mask
    rows = prepare_rows(ids, mask, ort.image_token)
    lat = ort.latents_for_rows([px[:3], px[3:4]])
    ref["logits2"], _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat,
                                   ids.shape[1], ort.empty_past(2))
    rec = []
    g = ort.greedy(rows, lat, max_new_tokens, record_logits=rec)
    ref["greedy"] = {"k": None, "tokens": g, "scores": rec}
    b, bs = ort.beam_search(rows, lat, max_new_tokens, num_beams=3, length_penalty=0.0)
    ref["beam"] = {"k": None, "tokens": b, "scores": bs}
    return ref


def compare_ort_models(src_dir, dst_dir, tol: float) -> dict:
    """A converted model directory (export/precision.py) against the fp32 export it was made from."""
    import yaml

    dtype = (yaml.safe_load((Path(dst_dir) / "model.yaml").read_text()) or {}).get("dtype", "fp32")
    return compare_with_ort(ort_reference(src_dir), dst_dir, tol, dtype=dtype)
