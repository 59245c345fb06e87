"""PyTorch goldens of an IDEFICS fixture (tests/fixtures/models/tiny-idefics/golden), in the layout of
export/goldens.py (same case names, so tests/runtime_golden.rs checks every fixture alike).

Inputs are what IdeficsProcessor makes of the contract prompt (the text split at `<image>` into items);
logits and generations are the oracle's (export/families/idefics.py `reference`: transformers 4.36.2 for the
fixed cross-attention). Preprocessing and the vision/perceiver cases run the venv's modules (unchanged
between 4.33 and 4.36).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..goldens import (BATCH_MAX_NEW_TOKENS, CANDIDATES, GEN_MAX_NEW_TOKENS, JPEG, PNG, RICES_IMAGES, Writer,
                       decode_case)
from . import idefics as fam

IMAGES_DIR = Path(__file__).resolve().parent.parent.parent / "tests" / "fixtures" / "images"
PREFILL_PROMPT = "<image>Caption: a cat.</s>\n<image>Caption: a rocket.</s>\n<image>Caption:"
PREFILL_IMAGES = ["chelsea.png", "rocket.jpg", "coffee.png"]
LOGLIK_PROMPT = ("<image>Question: What animal is this? Answer: cat</s>\n"
                 "<image>Question: Is this a rocket? Answer:")
LOGLIK_IMAGES = ["chelsea.png", "rocket.jpg"]
BATCH_PROMPTS = [PREFILL_PROMPT, "Instruction: answer briefly.\n<image><image>Question: What is this? Answer:"]
BATCH_IMAGES = [PREFILL_IMAGES, ["grace_hopper.jpg", "coffee.png"]]
# The compatibility mode (no_media uniform_all_media, transformers 4.33) averages a batched call's padding
# images into the pre-image tokens of a row with fewer images, which the runtime does not reproduce (it never
# batches rows of different media counts): its batch case gives both rows three images.
# Its prefill prompt starts with an instruction: tokens that attend to no image (BOS, the instruction), where 4.33
# and the fixed cross-attention differ.
PREFILL_PROMPT_COMPAT = "Note:\n<image>Caption: a cat.</s>\n<image>Caption:"
PREFILL_IMAGES_COMPAT = ["chelsea.png", "rocket.jpg"]
BATCH_PROMPTS_COMPAT = [PREFILL_PROMPT, "Instruction: answer briefly.\n<image><image>Question: What is this? "
                                        "Answer: a cup</s>\n<image>Question: And this? Answer:"]
BATCH_IMAGES_COMPAT = [PREFILL_IMAGES, ["grace_hopper.jpg", "coffee.png", "chelsea.png"]]


def _pil(name):
    from PIL import Image

    with Image.open(IMAGES_DIR / name) as im:
        im.load()
        return im.copy()


def _ids(a):
    return np.asarray(a).astype(np.int64).tolist()


def write_goldens(folder, model, tok, proc, model_dir, no_media, workdir, log=print):
    w = Writer(Path(model_dir) / "golden")
    cases = {}
    eos = tok.eos_token_id
    image_tok = tok.convert_tokens_to_ids(fam.IMAGE)

    def pixels(names):
        return proc([_pil(n) for n in names])

    def info(inp, texts, images):
        mask = inp["attention_mask"].astype(np.int64)
        pos = np.cumsum(mask, 1) - 1
        pos[mask == 0] = 1
        return {"prompts": texts, "images": images, "input_ids": _ids(inp["input_ids"]),
                "attention_mask": _ids(mask), "position_ids": _ids(pos),
                "media_index": _ids(fam.media_index_from(inp["image_attention_mask"])),
                "num_media": [len(x) for x in images]}

    with torch.no_grad():
        for key, name in (("png", PNG), ("jpeg", JPEG)):
            cases[f"preprocess_{key}"] = {
                "description": "IdeficsImageProcessor (RGB over white, resize to exactly image_size, bicubic, no "
                               "crop, normalise)", "image": name, "pixels": w.add(f"pixels_{key}", pixels([name]))}
        px = pixels([PNG, JPEG])
        vo = model.model.vision_model(pixel_values=px)
        cases["vision"] = {
            "description": "vision_encoder.onnx: last_hidden_state (CLS kept, no LayerNorm) and pooler_output",
            "images": [PNG, JPEG], "pixels": w.add("vision_pixels", px),
            "patch_tokens": w.add("vision_patch_tokens", vo.last_hidden_state),
            "image_embedding": w.add("vision_image_embedding", vo.pooler_output)}
        tokens = vo.last_hidden_state[:, None, None]
        cases["perceiver"] = {
            "description": "perceiver.onnx (IdeficsPerceiverResampler) on the vision case's tokens, B=2, T=1, F=1",
            "images": [PNG, JPEG], "patch_tokens": w.add("perceiver_patch_tokens", tokens),
            "latents": w.add("perceiver_latents", model.model.perceiver_resampler(vo.last_hidden_state)[:, None])}
        emb = model.model.vision_model(pixel_values=pixels(RICES_IMAGES)).pooler_output
        nrm = emb / emb.norm(dim=-1, keepdim=True)
        cases["rices"] = {
            "description": "image_embedding (pooler_output: IDEFICS has no projection head, so not a CLIP "
                           "embedding; RICES uses a separate CLIP encoder)", "images": RICES_IMAGES,
            "image_embedding": w.add("rices_image_embedding", emb), "normalized": w.add("rices_normalized", nrm),
            "similarity": w.add("rices_similarity", nrm @ nrm.T)}

    pil = lambda names: [_pil(n) for n in names]  # noqa: E731
    compat = no_media == "uniform_all_media"
    prefill_prompt, prefill_images = (PREFILL_PROMPT_COMPAT, PREFILL_IMAGES_COMPAT) if compat else (PREFILL_PROMPT, PREFILL_IMAGES)
    p2 = fam.processor_inputs(tok, proc, [prefill_prompt], [pil(prefill_images)])
    ll = fam.processor_inputs(tok, proc, [LOGLIK_PROMPT], [pil(LOGLIK_IMAGES)])
    batch_prompts, batch_images = (BATCH_PROMPTS_COMPAT, BATCH_IMAGES_COMPAT) if compat else (BATCH_PROMPTS, BATCH_IMAGES)
    bt = fam.processor_inputs(tok, proc, batch_prompts, [pil(x) for x in batch_images])
    gen = lambda inp, nb, n: {**inp, "op": np.array("generate"), "num_beams": np.array(nb),  # noqa: E731
                              "max_new_tokens": np.array(n), "eos": np.array(eos), "pad": np.array(eos)}
    reqs = {"p2_logits": {**p2, "op": np.array("logits")}, "p2_gen1": gen(p2, 1, GEN_MAX_NEW_TOKENS),
            "p2_gen3": gen(p2, 3, GEN_MAX_NEW_TOKENS), "bt_logits": {**bt, "op": np.array("logits")},
            "bt_gen1": gen(bt, 1, BATCH_MAX_NEW_TOKENS), "bt_gen3": gen(bt, 3, BATCH_MAX_NEW_TOKENS)}
    cand_ids = [np.asarray(tok(c, add_special_tokens=False).input_ids, dtype=np.int64) for c in CANDIDATES]
    for i, cid in enumerate(cand_ids):  # candidate tokens attend to what the prompt's last token attends to
        iam = ll["image_attention_mask"]
        reqs[f"ll{i}_logits"] = {
            "input_ids": np.concatenate([ll["input_ids"], cid[None]], 1),
            "attention_mask": np.ones((1, ll["input_ids"].shape[1] + len(cid)), dtype=np.int64),
            "image_attention_mask": np.concatenate([iam, np.repeat(iam[:, -1:], len(cid), 1)], 1),
            "pixel_values": ll["pixel_values"], "op": np.array("logits")}
    ref = fam.reference(Path(folder), reqs, no_media, Path(workdir), log)
    oracle = f"transformers {ref['transformers_version']}"

    S = p2["input_ids"].shape[1]
    base = info(p2, [prefill_prompt], [prefill_images])
    shape = ("a 1-shot prompt after an instruction (2 images, EOS after the demonstration)" if compat else
             "a 2-shot prompt (3 images, EOS after each demonstration)")
    cases["prefill_2shot"] = {"description": f"IdeficsForVisionText2Text logits ({oracle}) at every position of "
                                             f"{shape}",
                              **base, "logits": w.add("prefill_logits", ref["p2_logits.logits"])}
    for nb, key in ((1, "generate_greedy"), (3, "generate_beam3")):
        new = ref[f"p2_gen{nb}.sequences"][:, S:]
        case = {"description": f"generate ({oracle}, num_beams={nb}, max_new_tokens={GEN_MAX_NEW_TOKENS}, "
                               "length_penalty=0, min_new_tokens=0); eos = pad = </s>",
                **base, "num_beams": nb, "max_new_tokens": GEN_MAX_NEW_TOKENS, "length_penalty": 0.0,
                "eos_token_id": eos, "pad_token_id": eos, "expected_new_tokens": _ids(new),
                "expected_text": tok.batch_decode(torch.from_numpy(new), skip_special_tokens=True)}
        if nb > 1:
            case["expected_sequence_scores"] = [float(x) for x in ref[f"p2_gen{nb}.sequences_scores"]]
        else:
            case["first_step_logits"] = w.add("greedy_first_step_logits", ref["p2_gen1.scores"][0])
        cases[key] = case

    L = ll["input_ids"].shape[1]
    cands = []
    for i, (c, cid) in enumerate(zip(CANDIDATES, cand_ids)):
        lp = torch.log_softmax(torch.from_numpy(ref[f"ll{i}_logits.logits"]).float(), -1)[0, L - 1:-1]
        tlp = lp.gather(1, torch.from_numpy(cid)[:, None])[:, 0]
        cands.append({"text": c, "token_ids": _ids(cid), "token_logprobs": [float(x) for x in tlp],
                      "sum": float(tlp.sum()), "mean": float(tlp.mean()), "per_char": float(tlp.sum() / len(c))})
    cases["loglik"] = {"description": f"candidate log-likelihoods ({oracle}) after the prompt; candidate tokens "
                                      "attend to the image the prompt's last token attends to",
                       **info(ll, [LOGLIK_PROMPT], [LOGLIK_IMAGES]), "candidates": cands}

    Sb = bt["input_ids"].shape[1]
    g_new, b_new = ref["bt_gen1.sequences"][:, Sb:], ref["bt_gen3.sequences"][:, Sb:]
    cases["batch2_leftpad"] = {
        "description": f"two prompts of different lengths and {'the same number of images (the compatibility mode: no padding images)' if compat else 'image counts'}, left-padded by IdeficsProcessor "
                       f"({oracle}); the second starts with text before its first image and has two adjacent "
                       "images (one shared fake token)",
        **info(bt, batch_prompts, batch_images), "max_new_tokens": BATCH_MAX_NEW_TOKENS, "length_penalty": 0.0,
        "eos_token_id": eos, "pad_token_id": eos,
        "last_logits": w.add("batch_last_logits", ref["bt_logits.logits"][:, -1]),
        "first_step_logits_generate": w.add("batch_first_step_logits", ref["bt_gen1.scores"][0]),
        "expected_greedy_new_tokens": _ids(g_new),
        "expected_greedy_text": tok.batch_decode(torch.from_numpy(g_new), skip_special_tokens=True),
        "expected_beam3_new_tokens": _ids(b_new),
        "expected_beam3_text": tok.batch_decode(torch.from_numpy(b_new), skip_special_tokens=True),
        "expected_beam3_sequence_scores": [float(x) for x in ref["bt_gen3.sequences_scores"]]}
    cases["decode"] = decode_case(tok)
    import yaml

    name = yaml.safe_load((Path(model_dir) / "model.yaml").read_text())["name"]
    doc = {"format_version": 1, "model": name, "oracle": oracle, "images_dir": "tests/fixtures/images",
           "special_tokens": {"image": image_tok, "endofchunk": eos, "pad": tok.pad_token_id},
           "tensors": w.tensors, "cases": cases}
    (w.root / "goldens.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
