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


def make_folder(out: Path, log=print) -> Path:
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor

    from ..export_idefics import PROMPT_2SHOT, _pil
    from . import idefics as fam

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    proc = IdeficsImageProcessor(image_size=64, image_mean=MEAN, image_std=STD)
    proc.save_pretrained(str(out))
    torch.manual_seed(SEED)
    model = IdeficsForVisionText2Text(IdeficsConfig(**CONFIG)).eval()
    # make EOS reachable: its head row takes the direction of a token that greedy decoding (of the fixed model:
    # the transformers 4.36 oracle) emits later on, so that generation runs a few steps before it stops
    model.save_pretrained(str(out), safe_serialization=True)
    import numpy as np

    inp = fam.processor_inputs(tok, proc, [PROMPT_2SHOT], [[_pil(n) for n in ("chelsea.png", "rocket.jpg",
                                                                               "coffee.png")]])

    req = {"g": {**inp, "op": np.array("generate"), "num_beams": np.array(1), "max_new_tokens": np.array(15),
                 "eos": np.array(2), "pad": np.array(2)}}
    with tempfile.TemporaryDirectory() as work:
        new = fam.reference(out, req, "zero", Path(work), log)["g.sequences"][0, inp["input_ids"].shape[1]:].tolist()
    t = next((x for x in new[3:] if x not in new[:3]), None)
    if t is None:
        counts = Counter(new[2:])
        t = next(x for x in new[2:] if counts[x] == max(counts.values()))
    with torch.no_grad():
        model.lm_head.weight[2] = model.lm_head.weight[t] * 1.05
    log(f"[tiny-idefics] EOS head row set from token {t}")
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def main(argv=None):
    from ..export_idefics import export_folder
    from .idefics_goldens import write_goldens

    ap = argparse.ArgumentParser()
    ap.add_argument("--out-root", default=str(REPO / "tests" / "fixtures" / "models"))
    ap.add_argument("--compat-out", help="also export the transformers-4.33 compatibility mode here")
    ap.add_argument("--keep-folder", help="keep the Hugging Face folder here")
    a = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
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
