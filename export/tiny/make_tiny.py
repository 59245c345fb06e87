"""Create a tiny random-initialised OpenFlamingo fixture model and export it (with goldens).

    python -m export.tiny.make_tiny NAME [--out-root tests/fixtures/models]

NAME is a config in export/tiny/configs/. The model is built by open_flamingo's factory with a fixed seed,
its cross-attention gates are set to 0.5 (so that images change the text), its state dict is written to a
temporary checkpoint and that checkpoint goes through the normal exporter (export_openflamingo), which
also runs the parity check; goldens (export/goldens.py) are added before the model directory is renamed
into place.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from ..build import build_model, canonical_state_dict, draw_added_head_rows
from ..config import load_config
from ..export_openflamingo import export_model
from .release_layout import LAYOUTS, save_published

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GATE = 0.5


def make_eoc_reachable(built, factor: float = 1.05) -> int:
    """A random LM practically never emits <|endofchunk|>, so stopping would go untested. Give the
    <|endofchunk|> row of the LM head the direction of a token the model does generate for the goldens'
    2-shot prompt (the most frequent one from the 3rd generated token on), scaled by `factor`: wherever
    that token would win, <|endofchunk|> now wins by a clear margin. Returns the token copied."""
    from collections import Counter

    from ..goldens import GEN_MAX_NEW_TOKENS, PREFILL_IMAGES, load_pixels
    from ..parity import PROMPT_2SHOT, of_generate, tokenize, vision_x_for

    model, tok = built.model, built.tokenizer
    ids, mask = tokenize(tok, [PROMPT_2SHOT])
    vx = vision_x_for([load_pixels(built.image_processor, PREFILL_IMAGES)])
    out = of_generate(model, vx, ids, mask, GEN_MAX_NEW_TOKENS, 1).sequences[0, ids.shape[1]:].tolist()
    counts = Counter(out[2:])
    best = max(counts.values())
    t = next(x for x in out[2:] if counts[x] == best)
    eoc = tok.convert_tokens_to_ids("<|endofchunk|>")
    out_emb = model.lang_encoder.get_output_embeddings()
    # tied heads (MosaicGPT has no output-embedding module at all): the head is the input embedding
    head = (out_emb if out_emb is not None else model.lang_encoder.get_input_embeddings()).weight
    with torch.no_grad():
        head[eoc] = head[t] * factor
    return t


def build_tiny(name: str, workdir: Path):
    """The tiny model exactly as exported: factory build with the config's seed, gates 0.5, eoc row."""
    from open_flamingo.src.helpers import GatedCrossAttentionBlock

    import yaml

    raw = yaml.safe_load((HERE / "configs" / f"{name}.yaml").read_text())
    if "published" in raw:  # the original classes (export/tiny/published.py), gates and eoc row already set
        from .published import build_original

        built = build_original(name, raw, Path(workdir))
        return built.cfg, built
    cfg = load_config(HERE / "configs" / f"{name}.yaml")
    built = build_model(cfg, Path(workdir))
    with torch.no_grad():
        for m in built.model.modules():
            if isinstance(m, GatedCrossAttentionBlock):
                m.attn_gate.fill_(GATE)
                m.ff_gate.fill_(GATE)
    if name in LAYOUTS and getattr(built.lm_family, "added_head_rows_unpublished", False):
        # the release holds no LM-head rows for the added tokens: the export draws them from --added-head-seed
        # (default 0), so the model "as exported" has those rows (and no engineered <|endofchunk|> row)
        draw_added_head_rows(built.model.lang_encoder, int(cfg["lang"]["config"]["vocab_size"]), 0)
    else:
        make_eoc_reachable(built)
    return cfg, built


def make(name: str, out_root: Path, goldens: bool = True, log=print, added_head_seed: int = 0) -> dict:
    """Configs with a `published:` section: export/tiny/published.py (original remote code). Fixtures listed in
    release_layout.LAYOUTS are saved as their release is laid out (base LM folder, open_clip weights file,
    trainable-only checkpoint) and exported from those files through their --preset; the others from one full
    state dict of the random model through the config path."""
    import yaml

    raw = yaml.safe_load((HERE / "configs" / f"{name}.yaml").read_text())
    if "published" in raw:  # a tiny model of a published structure, from the original classes
        from .published import make as make_published

        return make_published(name, raw, out_root, goldens=goldens, log=log)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        cfg, built = build_tiny(name, work / "build")
        extra = None
        if goldens:
            from ..goldens import write_goldens

            extra = write_goldens
        if name in LAYOUTS:
            from ..export_openflamingo import export_preset

            lay = LAYOUTS[name]
            pub = save_published(cfg, built, work / "published", lay)
            del built
            label = f"random-init:{cfg['seed']}:published-layout:{lay['checkpoint']}"
            return export_preset(lay["preset"], Path(out_root) / name, checkpoint=pub["checkpoint"], lm=pub["lm"],
                                 clip=pub["clip"], clip_model=str(pub["clip_model"]), name=cfg["name"],
                                 checkpoint_sha=label, overwrite=True, extra=extra, log=log,
                                 added_head_seed=added_head_seed)
        ckpt = work / "checkpoint.pt"
        torch.save(canonical_state_dict(built.model), ckpt)
        del built
        return export_model(cfg, ckpt, Path(out_root) / name, checkpoint_sha=f"random-init:{cfg['seed']}",
                            overwrite=True, extra=extra, log=log)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="+")
    ap.add_argument("--out-root", default=str(REPO / "tests" / "fixtures" / "models"))
    ap.add_argument("--no-goldens", action="store_true")
    ap.add_argument("--summary", action="store_true", help="print one line per model instead of the report")
    a = ap.parse_args(argv)
    for n in a.names:
        rep = make(n, Path(a.out_root), goldens=not a.no_goldens, log=lambda s: print(s, file=sys.stderr))
        if a.summary:
            p = rep["parity"]
            print(f"{n}: {rep['seconds']}s, max abs diff {p['max_abs_diff']:.3g}, greedy identical "
                  f"{p['greedy_tokens_identical']}, beam-3 identical {p['beam3_tokens_identical']}, "
                  f"files {sum(rep['sizes'].values()) / 1e6:.2f} MB")
        else:
            print(json.dumps(rep, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
