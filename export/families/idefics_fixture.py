"""The tiny random-init IDEFICS fixture (tests/fixtures/models/tiny-idefics), built from transformers' own
IdeficsForVisionText2Text with a small config, saved as a Hugging Face folder and exported from that folder by
the same path a downloaded model takes (export/export_idefics.py), goldens included.

    export/.venv/bin/python -m export.families.idefics_fixture [--out-root tests/fixtures/models]
                                                              [--compat-out DIR]

Structure: vision 64 px / 16 px patches (16 + CLS = 17 tokens, width 64, 2 layers), perceiver 2 layers x 8
latents with QK LayerNorms, LLaMA decoder 4 layers x 64 with cross-attention before layers 0 and 2
(cross_layer_interval 2, so the IDEFICS placement differs from OpenFlamingo's), per-head QK RMS norms, the
tiny LLaMA tokenizer (export/tiny/llama_tokenizer) plus `<fake_token_around_image>` and `<image>` as the 2
decoupled tokens (2048 + 2 logits), pad = `<unk>` as in the published tokenizer. The tanh gates are drawn from
N(0, 1) per channel (alpha_initializer "normal", alpha_type "vector"; transformers 4.33 fails on "float"; IDEFICS' default 0 would make images invisible), and the EOS row of the
head is made reachable (as export/tiny/make_tiny.py does for <|endofchunk|>) so that stopping is tested.
`--compat-out` also exports the `transformers-4.33` compatibility mode of the same folder (tests use it).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Optional

import torch

REPO = Path(__file__).resolve().parent.parent.parent
TOKENIZER = REPO / "export" / "tiny" / "llama_tokenizer"
SEED = 0
CONFIG = {
    "vocab_size": 2048, "additional_vocab_size": 2, "hidden_size": 64, "intermediate_size": 176,
    "num_hidden_layers": 4, "num_attention_heads": 4, "cross_layer_interval": 2, "qk_layer_norms": True,
    "alpha_initializer": "normal", "alphas_initializer_range": 1.0, "alpha_type": "vector",
    "initializer_range": 0.1, "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "use_resampler": True,
    "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
    "vision_config": {"embed_dim": 64, "image_size": 64, "patch_size": 16, "num_hidden_layers": 2,
                      "num_attention_heads": 2, "intermediate_size": 128},
    "perceiver_config": {"use_resampler": True, "resampler_n_latents": 8, "resampler_depth": 2,
                         "resampler_n_heads": 2, "resampler_head_dim": 16, "qk_layer_norms_perceiver": True},
}
# The compatibility-mode fixture (tests/fixtures/models_compat/tiny-idefics-tf433, committed, < 1 MB): the same
# structure, smaller (LLaMA 1 x 16, 4 heads of 4, with a gated cross-attention block before it, vision 32 px / 8 px patches x
# 16 wide, 1 layer; perceiver 1 layer x 4 latents), exported with --cross-attn-compat transformers-4.33, and
# goldens from the venv's transformers 4.33.3 whose prefill prompt starts with text before the first image.
COMPAT_NAME = "tiny-idefics-tf433"
COMPAT_CONFIG = {
    **CONFIG, "hidden_size": 16, "intermediate_size": 44, "num_hidden_layers": 1, "num_attention_heads": 4,
    "cross_layer_interval": 1,
    "vision_config": {"embed_dim": 16, "image_size": 32, "patch_size": 8, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "intermediate_size": 32},
    "perceiver_config": {"use_resampler": True, "resampler_n_latents": 4, "resampler_depth": 1,
                         "resampler_n_heads": 2, "resampler_head_dim": 8, "qk_layer_norms_perceiver": True},
}
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def make_tokenizer(out: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER))
    tok.add_special_tokens({"additional_special_tokens": ["<fake_token_around_image>", "<image>"],
                            "pad_token": "<unk>"})
    assert tok.convert_tokens_to_ids("<fake_token_around_image>") == 2048 and tok.convert_tokens_to_ids("<image>") == 2049
    tok.save_pretrained(str(out))
    return tok


def make_folder(out: Path, log=print, config: dict = CONFIG, no_media: str = "zero", prompt: Optional[str] = None,
                images=("chelsea.png", "rocket.jpg", "coffee.png")) -> Path:
    """The Hugging Face folder of a random-init fixture; the EOS-row heuristic runs the oracle of `no_media`
    (transformers 4.36.2 for the fixed behaviour, the venv's 4.33.3 for the compatibility mode) on `prompt`
    (default: export_idefics.PROMPT_2SHOT, the goldens' prefill prompt)."""
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor

    from ..export_idefics import PROMPT_2SHOT, _pil
    from . import idefics as fam

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    proc = IdeficsImageProcessor(image_size=config["vision_config"]["image_size"], image_mean=MEAN, image_std=STD)
    proc.save_pretrained(str(out))
    torch.manual_seed(SEED)
    model = IdeficsForVisionText2Text(IdeficsConfig(**config)).eval()
    # make EOS reachable: its head row takes the direction of a token that greedy decoding emits later on, so
    # that generation runs a few steps before it stops (checked with the oracle; the next candidate otherwise)
    model.save_pretrained(str(out), safe_serialization=True)
    import numpy as np

    inp = fam.processor_inputs(tok, proc, [prompt or PROMPT_2SHOT], [[_pil(n) for n in images]])
    S = inp["input_ids"].shape[1]
    req = {"g": {**inp, "op": np.array("generate"), "num_beams": np.array(1), "max_new_tokens": np.array(15),
                 "eos": np.array(2), "pad": np.array(2)}}

    def greedy():
        with tempfile.TemporaryDirectory() as work:
            return fam.reference(out, req, no_media, Path(work), log)["g.sequences"][0, S:].tolist()

    new = greedy()
    cands = [x for x in dict.fromkeys(new[3:]) if x not in new[:3]]
    if not cands:
        counts = Counter(new[2:])
        cands = [next(x for x in new[2:] if counts[x] == max(counts.values()))]
    original = model.lm_head.weight[2].clone()
    for t in cands:
        with torch.no_grad():
            model.lm_head.weight[2] = model.lm_head.weight[t] * 1.05
        model.save_pretrained(str(out), safe_serialization=True)
        got = greedy()
        if 2 in got[2:]:  # at least two tokens, then EOS
            break
        with torch.no_grad():
            model.lm_head.weight[2] = original
    else:
        raise RuntimeError(f"{out.name}: no EOS head row found that stops greedy decoding after 2+ tokens")
    log(f"[{out.name}] EOS head row set from token {t}: greedy {got}")
    return out


def main(argv=None):
    from ..export_idefics import export_folder
    from .idefics_goldens import write_goldens

    ap = argparse.ArgumentParser()
    ap.add_argument("--out-root", default=str(REPO / "tests" / "fixtures" / "models"))
    ap.add_argument("--compat-out", help="also export the transformers-4.33 compatibility mode here")
    ap.add_argument("--keep-folder", help="keep the Hugging Face folder here")
    ap.add_argument("--compat-fixture", metavar="ROOT", nargs="?", const=str(REPO / "tests" / "fixtures" / "models_compat"),
                    help=f"build only the committed compatibility-mode fixture ROOT/{COMPAT_NAME} (default ROOT: "
                         "tests/fixtures/models_compat), goldens from the venv's transformers 4.33.3")
    a = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    if a.compat_fixture:
        with tempfile.TemporaryDirectory() as work:
            from .idefics_goldens import PREFILL_IMAGES_COMPAT, PREFILL_PROMPT_COMPAT

            folder = make_folder(Path(work) / COMPAT_NAME, log, COMPAT_CONFIG, "uniform_all_media",
                                 PREFILL_PROMPT_COMPAT, PREFILL_IMAGES_COMPAT)
            rep = export_folder(folder, Path(a.compat_fixture) / COMPAT_NAME, name=COMPAT_NAME,
                                identity=f"random-init:{SEED}", compat="transformers-4.33", overwrite=True,
                                extra=lambda *x: write_goldens(*x, log=log), log=log)
        p = rep["parity"]
        print(f"{COMPAT_NAME}: {rep['seconds']}s, reference transformers {p['reference_transformers']}, max abs "
              f"diff {p['max_abs_diff']:.3g}, sizes {rep['sizes']}")
        return 0
    with tempfile.TemporaryDirectory() as work:
        folder = make_folder(Path(a.keep_folder) if a.keep_folder else Path(work) / "hf", log)
        rep = export_folder(folder, Path(a.out_root) / "tiny-idefics", name="tiny-idefics",
                            identity=f"random-init:{SEED}", overwrite=True,
                            extra=lambda *x: write_goldens(*x, log=log), log=log)
        summary = {"tiny-idefics": rep}
        if a.compat_out:
            summary["compat"] = export_folder(folder, Path(a.compat_out), name="tiny-idefics-tf433",
                                              identity=f"random-init:{SEED}", compat="transformers-4.33",
                                              overwrite=True, log=log)
    for k, r in summary.items():
        p = r["parity"]
        print(f"{k}: {r['seconds']}s, reference transformers {p['reference_transformers']}, max abs diff "
              f"{p['max_abs_diff']:.3g}, tokens identical "
              f"{all(v for kk, v in p.items() if kk.endswith('_identical'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
