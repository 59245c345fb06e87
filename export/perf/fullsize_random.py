"""Random-init files of EXACTLY OpenFlamingo-3B-vitl-mpt1b's structure, in the layout a user downloads, so that
the full-size export can be proven through the preset path on a machine that cannot download the model:

    python -m export.perf.fullsize_random --out DIR [--seed 0] [--dtype fp32|fp16]
    python -m export.export_openflamingo --preset OpenFlamingo-3B-vitl-mpt1b --checkpoint DIR/checkpoint.pt \
        --lm DIR/mpt-1b-redpajama-200b --clip DIR/open_clip_pytorch_model.bin \
        --clip-model DIR/ViT-L-14-quickgelu.json --out MODEL

What is written (structure facts: /work/shared/reference/PROTOCOL.md §8, export/presets.py):

* `mpt-1b-redpajama-200b/`: the LM folder as MosaicML released it: config.json of their `mosaic_gpt` code
  (d_model 2048, 24 layers, 16 heads, mlp_ratio 4, ALiBi, attn_qk_ln, no biases, low-precision LayerNorm, vocab
  50432, max_seq_len 2048) and pytorch_model.bin under MosaicGPT's parameter names (1.31 B parameters). NOT the
  remote code itself (the exporter never runs it) and NOT the GPT-NeoX-20B tokenizer (not on this machine): the
  repository's tiny BPE tokenizer stands in for it, so prompts tokenise into other (more) tokens than with the
  real one. The embedding and LM head keep the published 50,280 rows (the checkpoint's), so every matmul has
  its published size.
* `open_clip_pytorch_model.bin` + `ViT-L-14-quickgelu.json`: the whole CLIP ViT-L/14 (224 px, patch 14, width
  1024, 24 layers, QuickGELU as OpenAI's weights use) as an open_clip state dict (OpenAI publishes a TorchScript
  archive of the same tensors).
* `checkpoint.pt`: what OpenFlamingo's filter_state_dict_to_trainable keeps: the published perceiver (6 layers,
  8 x 64 heads, 64 latents), gated cross-attention before every one of the 24 layers (8 x 64 heads, FF x4), the
  input embedding (50,280 rows; tied head), every key with a `module.` prefix (as tests/fixtures'
  tiny-of3b-mpt1b). Gates are 0.5 instead of trained values so that the cross-attention changes the logits.

Values are seeded random (N(0, 0.02) matrices, LayerNorm weights 1, open_flamingo's own init for its modules):
the numbers it produces mean nothing; sizes, memory and time are what the proof measures. The published
checkpoint.pt (~4.19 GB) and LM weights (~5.3 GB) are fp32; `--dtype fp16` halves the disk of these inputs
when space is short (the exporter casts them to the model's fp32 on loading, so the export is the same shape).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
TOKENIZER = HERE.parent / "tiny" / "base_tokenizer"

MPT1B = {  # mosaic_gpt config.json of anas-awadalla/mpt-1b-redpajama-200b (PROTOCOL.md §8b), remote-code keys
    "model_type": "mosaic_gpt", "architectures": ["MosaicGPT"], "d_model": 2048, "n_heads": 16, "n_layers": 24,
    "mlp_ratio": 4, "max_seq_len": 2048, "vocab_size": 50432, "alibi": True, "alibi_bias_max": 8,
    "attn_qk_ln": True, "attn_clip_qkv": None, "attn_impl": "torch", "attn_pdrop": 0, "attn_uses_sequence_id": False,
    "emb_pdrop": 0, "embedding_fraction": 1.0, "init_device": "cpu", "init_std": 0.02,
    "param_init_fn": "baseline_", "logit_scale": None, "low_precision_layernorm": True, "no_bias": True,
    "prefix_lm": False, "resid_pdrop": 0, "softmax_scale": None, "tokenizer_name": "EleutherAI/gpt-neox-20b",
    "use_cache": False, "verbose": 0,
    "auto_map": {"AutoConfig": "configuration_mosaic_gpt.MosaicGPTConfig",
                 "AutoModelForCausalLM": "mosaic_gpt.MosaicGPT"},
}
OF_VOCAB = 50280        # 50277 GPT-NeoX-20B tokens + <|endofchunk|>, <image>, <PAD>
VIS_DIM = 1024
GATE = 0.5
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def log(msg):
    print(f"[fullsize] {msg}", file=sys.stderr, flush=True)


def lm_state_dict(conf: dict, g: torch.Generator, dtype) -> dict:
    d, L, V = conf["d_model"], conf["n_layers"], conf["vocab_size"]
    ff = conf["mlp_ratio"] * d
    std, resid = 0.02, 0.02 / (2 * L) ** 0.5

    def normal(shape, s):
        return (torch.randn(shape, generator=g) * s).to(dtype)

    sd = {"transformer.wte.weight": normal((V, d), std)}
    for i in range(L):
        p = f"transformer.blocks.{i}."
        sd[p + "ln_1.weight"] = torch.ones(d, dtype=dtype)
        sd[p + "attn.Wqkv.weight"] = normal((3 * d, d), std)
        sd[p + "attn.q_ln.weight"] = torch.ones(d, dtype=dtype)
        sd[p + "attn.k_ln.weight"] = torch.ones(d, dtype=dtype)
        sd[p + "attn.out_proj.weight"] = normal((d, d), resid)
        sd[p + "ln_2.weight"] = torch.ones(d, dtype=dtype)
        sd[p + "mlp.mlp_up.weight"] = normal((ff, d), std)
        sd[p + "mlp.mlp_down.weight"] = normal((d, ff), resid)
    sd["transformer.ln_f.weight"] = torch.ones(d, dtype=dtype)
    return sd


def write_lm(out: Path, seed: int, dtype) -> Path:
    d = out / "mpt-1b-redpajama-200b"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(MPT1B, indent=1, sort_keys=True))
    for f in sorted(TOKENIZER.iterdir()):
        shutil.copy(f, d / f.name)
    g = torch.Generator().manual_seed(seed)
    sd = lm_state_dict(MPT1B, g, dtype)
    torch.save(sd, d / "pytorch_model.bin")
    n = sum(v.numel() for v in sd.values())
    log(f"LM folder {d}: {n / 1e9:.3f} B parameters")
    return d


def write_clip(out: Path, seed: int, dtype) -> tuple:
    import open_clip

    conf = dict(open_clip.get_model_config("ViT-L-14"))
    conf["quick_gelu"] = True  # OpenAI's CLIP weights (open_clip 'openai') run QuickGELU
    cj = out / "ViT-L-14-quickgelu.json"
    cj.write_text(json.dumps(conf, indent=1, sort_keys=True))
    open_clip.add_model_config(str(cj))
    torch.manual_seed(seed + 1)
    clip = open_clip.create_model("ViT-L-14-quickgelu")
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in clip.state_dict().items()}
    f = out / "open_clip_pytorch_model.bin"
    torch.save(sd, f)
    log(f"open_clip weights {f}: {sum(v.numel() for v in sd.values()) / 1e9:.3f} B parameters "
        f"(vision {sum(p.numel() for p in clip.visual.parameters()) / 1e9:.3f} B)")
    return f, cj


def write_checkpoint(out: Path, seed: int, dtype) -> Path:
    from open_flamingo.src.helpers import GatedCrossAttentionBlock, PerceiverResampler

    d, L = MPT1B["d_model"], MPT1B["n_layers"]
    sd = {}
    torch.manual_seed(seed + 2)
    for k, v in PerceiverResampler(dim=VIS_DIM).state_dict().items():
        sd["perceiver." + k] = v.to(dtype)
    for i in range(L):  # cross_attn_every_n_layers 1: before every decoder layer
        blk = GatedCrossAttentionBlock(dim=d, dim_visual=VIS_DIM)
        with torch.no_grad():
            blk.attn_gate.fill_(GATE)
            blk.ff_gate.fill_(GATE)
        for k, v in blk.state_dict().items():
            sd[f"lang_encoder.transformer.blocks.{i}.gated_cross_attn_layer.{k}"] = v.to(dtype)
        del blk
    g = torch.Generator().manual_seed(seed + 3)
    sd["lang_encoder.transformer.wte.weight"] = (torch.randn((OF_VOCAB, d), generator=g) * 0.02).to(dtype)
    sd = {"module." + k: v for k, v in sd.items()}
    f = out / "checkpoint.pt"
    torch.save(sd, f)
    log(f"checkpoint {f}: {sum(v.numel() for v in sd.values()) / 1e9:.3f} B parameters, {len(sd)} tensors")
    return f


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32",
                    help="dtype of the written files (published: fp32 checkpoint.pt and LM weights)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = DTYPES[a.dtype]
    t0 = time.time()
    ckpt = write_checkpoint(out, a.seed, dtype)
    lm = write_lm(out, a.seed, dtype)
    clip, cj = write_clip(out, a.seed, dtype)
    files = {"checkpoint": str(ckpt), "lm": str(lm), "clip": str(clip), "clip_model": str(cj)}
    sizes = {k: sum(p.stat().st_size for p in ([Path(v)] if Path(v).is_file() else Path(v).rglob("*")))
             for k, v in files.items()}
    print(json.dumps({"files": files, "bytes": sizes, "dtype": a.dtype, "seconds": round(time.time() - t0, 1)},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
