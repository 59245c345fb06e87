"""Tiny open_clip image encoder for RICES tests: random weights in the two file layouts open_clip reads.

    export/.venv/bin/python -m export.tiny.make_tiny_clip WEIGHTS_DIR           # write the weights files only
    export/.venv/bin/python -m export.tiny.make_tiny_clip WEIGHTS_DIR --fixture  # + tests/fixtures/clip/tiny-clip

`export/tiny/clip/tiny-clip.json` is an open_clip model config with the ViT-L-14 structure at toy size (ViT,
class token, ln_pre / ln_post, projection; widths that are multiples of 64 so that open_clip's OpenAI loader,
which derives head counts as width // 64, rebuilds the same model). Written with seed 0:
* `tiny-clip-openai.pt`: a TorchScript archive of the QuickGELU model (`torch.jit.script` + `torch.jit.save`)
  with float16 weights, the layout of OpenAI's `ViT-L-14.pt` that open_clip downloads for `pretrained="openai"`;
* `tiny-clip-state_dict.pt`: the same weights as a plain float32 state dict (`torch.save(model.state_dict())`).
`--fixture` exports the TorchScript file with `export.export_clip` into `tests/fixtures/clip/tiny-clip/` (or `--out`)
and adds `golden.json`: open_clip's `encode_image` of its own preprocessing of the fixture images, read from the
files. The archive's bytes (hence `source.weights_sha256`) depend on PYTHONHASHSEED (make_fixtures.sh sets it to 0)
and on where the venv lives (TorchScript's debug pickles record the absolute source paths), so that one manifest
line is checked against the archive actually exported rather than byte for byte (export/tests/test_determinism.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "export" / "tiny" / "clip" / "tiny-clip.json"
FIXTURE = REPO / "tests" / "fixtures" / "clip" / "tiny-clip"
GOLDEN_IMAGES = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"]


def write_weights(d: Path, seed: int = 0) -> dict:
    import open_clip
    import torch

    d.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(CONFIG.read_text())
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg, quick_gelu=True).eval()
    with torch.no_grad():  # non-trivial LayerNorms and scales, so that a wrong wiring shows
        for name, p in model.named_parameters():
            if name.endswith((".weight", "_embedding", "proj", "class_embedding")) and p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
        # OpenAI's files hold float16 weights and open_clip's OpenAI loader rounds every weight it loads to
        # float16 (convert_weights_to_fp16 before load_state_dict): use values that float16 represents exactly,
        # so the state-dict file and the archive describe the same encoder.
        for p in model.parameters():
            p.copy_(p.half().float())
    sd_path, ts_path = d / "tiny-clip-state_dict.pt", d / "tiny-clip-openai.pt"
    torch.save(model.state_dict(), sd_path)
    from open_clip.model import convert_weights_to_lp

    convert_weights_to_lp(model, torch.float16)  # the archive's layout: float16 linear / conv / attention weights
    # OpenAI's archives hold the text attention mask as a plain attribute, not a buffer (their state dict, which
    # open_clip's loader reads strictly, has no `attn_mask`): do the same before scripting.
    mask = model.attn_mask
    del model._buffers["attn_mask"]
    model.attn_mask = mask
    torch.jit.save(torch.jit.script(model), str(ts_path))
    return {"config": CONFIG, "state_dict": sd_path, "torchscript": ts_path}


def write_fixture(weights: dict, out: Path = FIXTURE) -> dict:
    import open_clip
    import torch
    from PIL import Image

    from export.export_clip import export_clip

    rep = export_clip(str(weights["config"]), weights["torchscript"], out, overwrite=True,
                      log=lambda s: print(s, file=sys.stderr))
    model = open_clip.load_openai_model(str(weights["torchscript"]), precision="fp32", device="cpu")
    transform = open_clip.image_transform(model.visual.image_size, is_train=False)
    with torch.no_grad():
        x = torch.stack([transform(Image.open(REPO / "tests" / "fixtures" / "images" / n)) for n in GOLDEN_IMAGES])
        emb = model.encode_image(x)
    golden = {"description": "open_clip encode_image (unnormalised) of open_clip's preprocessing of each image file, "
                             "open_clip.load_openai_model on the TorchScript archive",
              "images_dir": "tests/fixtures/images", "images": GOLDEN_IMAGES,
              "image_embedding": [[float(v) for v in row] for row in emb]}
    (Path(out) / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    return rep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights_dir")
    ap.add_argument("--fixture", action="store_true")
    ap.add_argument("--out", default=str(FIXTURE), help="where --fixture writes (default tests/fixtures/clip/tiny-clip)")
    a = ap.parse_args(argv)
    w = write_weights(Path(a.weights_dir))
    if a.fixture:
        rep = write_fixture(w, Path(a.out))
        print(json.dumps({"tiny-clip": rep["parity"], "sizes": rep["sizes"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
