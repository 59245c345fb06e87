"""32-shot prompts of real caption / VQA text: PyTorch (the real Flamingo) and the committed graphs agree,
and the declared max_positions is the real limit of the GPT-NeoX graphs."""
import json

import numpy as np
import pytest
import torch
import yaml

from export.ortrun import OrtModel, prepare_rows
from export.parity import tokenize, vision_x_for

from .conftest import FIXTURES, TINY

DATA = "/work/shared/data/real"


def prompt_32shot():
    import os
    from pathlib import Path

    root = Path(os.environ.get("FLAMINGO_REAL_DATA", DATA))
    fallback = ["A man riding a wave on top of a surfboard.", "A plate of food with broccoli and rice."]
    try:
        anns = json.loads((root / "coco_captions/captions_val2014_subset4800.json").read_text())["annotations"]
        caps = [a["caption"].strip() for a in anns[:40:1]]
    except OSError:
        caps = fallback * 20
    try:
        qs = json.loads((root / "textvqa/val_questions_vqa_format.json").read_text())["questions"][:8]
        vqa = [f"<image>Question:{q['question']} Short answer:yes<|endofchunk|>\n" for q in qs]
    except OSError:
        vqa = []
    demos = [f"<image>Output:{c}<|endofchunk|>\n" for c in caps[:32 - len(vqa)]] + vqa
    return "".join(demos) + "<image>Output:", len(demos) + 1


@pytest.mark.parametrize("name", TINY)
def test_32_shot_prompt_parity(name, tmp_path):
    from export.tiny.make_tiny import build_tiny

    _, built = build_tiny(name, tmp_path / "w")
    text, n_img = prompt_32shot()
    ids, mask = tokenize(built.tokenizer, [text])
    assert ids.shape[1] > 500
    g = torch.Generator().manual_seed(0)
    h = built.model.vision_encoder.image_size[0]
    px = torch.randn(n_img, 3, h, h, generator=g).clamp(-2, 2)
    with torch.no_grad():
        ref = built.model(vision_x=vision_x_for([px]), lang_x=ids, attention_mask=mask.bool()).logits.numpy()
    m = OrtModel(FIXTURES / name)
    rows = prepare_rows(ids.numpy(), mask.numpy(), m.image_token)
    lat = m.latents_for_rows([px.numpy()])
    got, _ = m.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat,
                      ids.shape[1], m.empty_past(1))
    assert np.abs(got - ref).max() <= 1e-4


@pytest.mark.parametrize("name", ["tiny-gptneox", "tiny-llama"])  # rotary tables of max_positions rows
def test_rotary_max_positions_is_the_limit(name):
    m = OrtModel(FIXTURES / name)
    man = yaml.safe_load((FIXTURES / name / "model.yaml").read_text())
    n = man["lang"]["max_positions"]
    ids = np.full((1, n), 300, np.int64)
    ids[0, 0] = m.image_token
    mask = np.ones_like(ids)
    rows = prepare_rows(ids, mask, m.image_token)
    lat = np.zeros((1, 1, m.n_latents, m.dv), np.float32)
    logits, past = m.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat, 1,
                            m.empty_past(1))
    assert np.isfinite(logits).all()
    with pytest.raises(Exception):  # position n is outside the rotary table
        m.decode(np.array([[300]]), np.ones((1, n + 1), np.int64), np.array([[n]]), np.array([[1]]), lat, 1, past)
