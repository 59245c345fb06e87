"""Export an open_clip image encoder for RICES (`demo_selection: {encoder: clip_onnx, clip_onnx: DIR}`).

    export/.venv/bin/python -m export.export_clip --model ViT-L-14 --pretrained ~/.cache/clip/ViT-L-14.pt --out DIR

OpenFlamingo's RICES embeds images with a separate open_clip model (ViT-L-14, OpenAI weights) through
`encode_image` and L2-normalises. This command builds that model the way open_clip builds it, exports
`encode_image` (unnormalised, the runtime normalises) to ONNX, checks onnxruntime against open_clip on real
images preprocessed by open_clip's own transform, and writes DIR with `clip_image_encoder.onnx` and `clip.yaml`
(the preprocessing, read off open_clip's transform, and the hashes). See export/README.md ("export_clip").

* `--model`: an open_clip model name (`open_clip.list_models()`), or a JSON model config file: either the
  config itself (`{"embed_dim": …, "vision_cfg": …, "text_cfg": …}`, as in open_clip's model_configs) or an
  `open_clip_config.json` (`{"model_cfg": …, "preprocess_cfg": {"mean": …, "std": …}}`).
* `--pretrained`: the weights file. A TorchScript archive (OpenAI's `ViT-L-14.pt`, what open_clip downloads for
  `pretrained="openai"`) is loaded by open_clip's OpenAI loader, which builds the model from the archive's
  state dict with QuickGELU, as OpenFlamingo gets it; its architecture must match `--model`. Any other file is a
  state dict (`torch.load`; `{"state_dict": …}` and `module.` prefixes as open_clip accepts them) loaded strictly
  into `--model` by open_clip; QuickGELU then comes from the config (`"quick_gelu": true`, the `-quickgelu`
  names) or `--quick-gelu`.
Nothing is written unless the parity check passes (max abs difference of the embeddings <= --tol).
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):  # allow `python export/export_clip.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "export"

from .config import ExportError, staging_dir  # noqa: E402

CLIP_FORMAT_VERSION = 1
EXPORTER_VERSION = "0.1.0"
OPSET = 17
ONNX_FILE = "clip_image_encoder.onnx"
MANIFEST_FILE = "clip.yaml"
REPO = Path(__file__).resolve().parent.parent
PARITY_IMAGES = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"]


def _vision_first(key: str):
    """The vision tower's tensors first: they are what this export is about."""
    return (not key.startswith("visual."), key)


def _fmt(keys, n=5) -> str:
    keys = sorted(keys, key=_vision_first)
    return ", ".join(keys[:n]) + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def resolve_model_config(model: str) -> tuple[str, dict, dict]:
    """(display name, open_clip model config, preprocess_cfg) for a model name or a JSON config file."""
    import open_clip

    p = Path(model)
    if p.suffix == ".json" or p.is_file():
        if not p.is_file():
            raise ExportError(f"--model {model}: JSON config file not found")
        try:
            doc = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ExportError(f"--model {p}: not valid JSON ({e})")
        if not isinstance(doc, dict):
            raise ExportError(f"--model {p}: a JSON object is expected")
        pre = {}
        if "model_cfg" in doc:  # open_clip_config.json (Hugging Face hub layout)
            pre = doc.get("preprocess_cfg") or {}
            doc = doc["model_cfg"]
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in doc]
        if missing:
            raise ExportError(f"--model {p}: an open_clip model config needs {', '.join(missing)} "
                              "(see open_clip/model_configs/*.json)")
        return p.stem, doc, pre
    cfg = open_clip.get_model_config(model)
    if cfg is None:
        close = difflib.get_close_matches(model, open_clip.list_models(), n=3)
        raise ExportError(f"--model {model!r} is neither an open_clip model name nor a JSON config file"
                          + (f"; did you mean {', '.join(close)}?" if close else ""))
    return model, cfg, {}


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive (OpenAI's CLIP files) rather than a pickled state dict."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _load_state_dict(path: Path) -> dict:
    import torch

    try:
        sd = torch.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad weights file
        raise ExportError(f"--pretrained {path}: cannot be read as a PyTorch state dict ({type(e).__name__}: {e})")
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ExportError(f"--pretrained {path}: not a state dict (a mapping of parameter names to tensors)")
    if next(iter(sd)).startswith("module"):  # as open_clip's load_state_dict strips it
        sd = {k[7:]: v for k, v in sd.items()}
    return sd


def _check_against(model, sd: dict, path: Path, what: str) -> None:
    """Keys and shapes of `sd` must be exactly those of `model` (a few named, then a count)."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in sd.items() if k not in ("input_resolution", "context_length",
                                                                     "vocab_size")}
    missing, unexpected = set(want) - set(have), set(have) - set(want)
    wrong = [f"{k} {list(have[k])} (config: {list(want[k])})" for k in sorted(set(want) & set(have), key=_vision_first)
             if want[k] != have[k]]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches: {'; '.join(wrong[:3])}" + (" …" if len(wrong) > 3 else ""))
        if missing:
            parts.append(f"missing keys: {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt(unexpected)}")
        raise ExportError(f"--pretrained {path} does not hold weights of {what}: " + "; ".join(parts)
                          + ". Check that --model names the architecture these weights were trained as")


@contextlib.contextmanager
def _quiet():
    """open_clip / torch log and warn a lot; the export's own report goes to stderr in one line per step."""
    import logging

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.getLogger().setLevel(level)


def build_clip(model: str, pretrained: Path, quick_gelu: Optional[bool]):
    """The open_clip model and its eval transform, loaded the way open_clip loads the file; plus facts."""
    import open_clip
    import torch

    name, cfg, pre_cfg = resolve_model_config(model)
    if not pretrained.is_file():
        raise ExportError(f"--pretrained {pretrained}: weights file not found")
    if cfg.get("custom_text") or "hf_model_name" in cfg.get("text_cfg", {}) or \
            "timm_model_name" in cfg.get("vision_cfg", {}):
        raise ExportError(f"--model {model}: only open_clip's own CLIP towers are supported (no timm / Hugging "
                          "Face towers, no custom text towers)")
    torchscript = is_torchscript(pretrained)
    if torchscript:
        qg = True  # open_clip's OpenAI loader always builds QuickGELU
    else:
        qg = bool(cfg.get("quick_gelu", False)) if quick_gelu is None else quick_gelu
    cfg = {**cfg, "quick_gelu": qg}
    with _quiet(), tempfile.TemporaryDirectory() as work:
        # registered under a name of its own, so a file can never shadow one of open_clip's configs
        reg = f"flamingo-export-clip-{hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]}"
        (Path(work) / f"{reg}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(str(Path(work) / f"{reg}.json"))
        if torchscript:
            if quick_gelu is False:
                raise ExportError(f"--pretrained {pretrained} is an OpenAI TorchScript archive: open_clip loads it "
                                  "with QuickGELU (as OpenFlamingo does); --quick-gelu off contradicts that")
            # The reference architecture, to say clearly when the archive is another model.
            ref = open_clip.create_model(reg, pretrained=None)
            try:
                script_sd = torch.jit.load(str(pretrained), map_location="cpu").state_dict()
            except Exception as e:  # noqa: BLE001
                raise ExportError(f"--pretrained {pretrained}: cannot load the TorchScript archive ({e})")
            _check_against(ref, script_sd, pretrained, f"--model {name}")
            del ref, script_sd
            clip = open_clip.load_openai_model(str(pretrained), precision="fp32", device="cpu")
            weights_format = "torchscript"
        else:
            sd = _load_state_dict(pretrained)
            clip = open_clip.create_model(reg, pretrained=None)
            _check_against(clip, sd, pretrained, f"--model {name}")
            del sd
            # open_clip's own loader for a local file (what create_model(pretrained=FILE) calls)
            open_clip.load_checkpoint(clip, str(pretrained))
            weights_format = "state_dict"
        mean = pre_cfg.get("mean") or getattr(clip.visual, "image_mean", None)
        std = pre_cfg.get("std") or getattr(clip.visual, "image_std", None)
        transform = open_clip.image_transform(clip.visual.image_size, is_train=False, mean=mean, std=std)
    clip.eval().requires_grad_(False)
    facts = {"name": name, "config": cfg, "weights_format": weights_format, "quick_gelu": qg}
    return clip, transform, facts


def encode_image_module(clip):
    """`encode_image(pixels)` of the real open_clip model (not normalised), as a module for torch.onnx."""
    import torch

    class EncodeImage(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, pixels):
            return self.clip.encode_image(pixels)

    return EncodeImage(clip)


def export_graph(clip, path: Path, image_size: int) -> None:
    import io

    import torch

    from .wrappers import export_mode

    module = encode_image_module(clip).eval()
    x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with export_mode(OPSET), torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buf, input_names=["pixels"], output_names=["image_embedding"],
                          dynamic_axes={"pixels": {0: "N"}, "image_embedding": {0: "N"}}, opset_version=OPSET,
                          do_constant_folding=True, export_params=True, verbose=False)
    path.write_bytes(buf.getvalue())


def parity_pixels(transform):
    """open_clip's own preprocessing of real images (PNG and JPEG) plus one of random noise."""
    import torch
    from PIL import Image

    px = []
    for n in PARITY_IMAGES:
        with Image.open(REPO / "tests" / "fixtures" / "images" / n) as im:
            px.append(transform(im))
    x = torch.stack(px)
    noise = torch.rand(1, *x.shape[1:], generator=torch.Generator().manual_seed(7)) * 4 - 2
    return torch.cat([x, noise])


def onnx_embed(path: Path, pixels):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # what the Rust runtime uses
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(["image_embedding"], {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def check_parity(clip, transform, path: Path, tol: float) -> dict:
    import numpy as np
    import torch

    x = parity_pixels(transform)
    with torch.no_grad():
        want = clip.encode_image(x).float().numpy()
    got = onnx_embed(path, x.numpy())
    if got.shape != want.shape:
        raise ExportError(f"parity: ONNX embedding shape {got.shape} != open_clip's {want.shape}")
    d = float(np.abs(got - want).max())
    # one image alone (batch 1) must give the same as in the batch
    d1 = float(np.abs(onnx_embed(path, x[:1].numpy()) - want[:1]).max())
    nrm = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    dc = float(np.abs(nrm(got) @ nrm(got).T - nrm(want) @ nrm(want).T).max())
    if not (d <= tol and d1 <= tol):
        raise ExportError(f"parity failed: onnxruntime vs open_clip encode_image max abs diff {max(d, d1):.3g} > "
                          f"tol {tol:g}; nothing was written")
    return {"max_abs_diff": max(d, d1), "cosine_similarity_max_abs_diff": dc, "images": len(x)}


def _check_out_dir(out: Path, overwrite: bool):
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"output {out} exists and is not a directory; choose another --out")
    if any(out.iterdir()) and not overwrite:
        what = "an exported CLIP encoder" if (out / MANIFEST_FILE).is_file() else "other files"
        raise ExportError(f"output directory {out} is not empty (it holds {what}); choose a new --out or pass "
                          "--overwrite to replace it")


def export_clip(model: str, pretrained, out, *, quick_gelu: Optional[bool] = None, tol: float = 1e-4,
                overwrite: bool = False, log=print) -> dict:
    import open_clip  # noqa: F401  (fail early when the venv lacks it)
    import onnx
    import torch

    from .build import sha256_file
    from .export_openflamingo import _swap_into_place, dump_manifest, preprocess_info

    t0 = time.time()
    pretrained = Path(pretrained)
    out = Path(out).resolve()
    _check_out_dir(out, overwrite)
    threads = int(os.environ.get("FLAMINGO_EXPORT_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    clip, transform, facts = build_clip(model, pretrained, quick_gelu)
    pre = preprocess_info(transform)
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    if isinstance(clip.visual.image_size, (tuple, list)) and len(set(clip.visual.image_size)) != 1:
        raise ExportError(f"--model {model}: non-square image size {clip.visual.image_size} is not supported")
    log(f"[export_clip] built {facts['name']} from {pretrained.name} ({facts['weights_format']}, "
        f"{'QuickGELU' if facts['quick_gelu'] else 'GELU'}) in {time.time() - t0:.1f}s")
    tmp = staging_dir(out)
    try:
        t1 = time.time()
        graph = tmp / ONNX_FILE
        export_graph(clip, graph, int(size))
        onnx.checker.check_model(str(graph))
        parity = check_parity(clip, transform, graph, tol)
        log(f"[export_clip] exported and parity-checked in {time.time() - t1:.1f}s: max abs diff "
            f"{parity['max_abs_diff']:.3g} on {parity['images']} images")
        embed_dim = int(clip.visual.output_dim)
        manifest = {
            "clip_format_version": CLIP_FORMAT_VERSION,
            "exporter_version": EXPORTER_VERSION,
            "opset": OPSET,
            "name": facts["name"],
            "source": {
                "model_config_sha256": hashlib.sha256(json.dumps(facts["config"], sort_keys=True).encode()).hexdigest(),
                "weights_sha256": sha256_file(pretrained),
                "weights_format": facts["weights_format"],
                "quick_gelu": facts["quick_gelu"],
                "open_clip_version": metadata.version("open_clip_torch"),
            },
            "component": {"file": ONNX_FILE, "sha256": sha256_file(graph)},
            "preprocess": pre,
            "embed_dim": embed_dim,
        }
        (tmp / MANIFEST_FILE).write_text(dump_manifest(manifest))
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"name": facts["name"], "out": str(out), "seconds": round(time.time() - t0, 1), "parity": parity,
            "weights_format": facts["weights_format"], "quick_gelu": facts["quick_gelu"],
            "sizes": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="export_clip", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="open_clip model name, or a JSON model config file")
    ap.add_argument("--pretrained", required=True, help="weights file: OpenAI TorchScript archive or a state dict")
    ap.add_argument("--out", required=True, help="directory to create (clip_image_encoder.onnx + clip.yaml)")
    ap.add_argument("--quick-gelu", choices=("auto", "on", "off"), default="auto",
                    help="activation for a state-dict file (auto: the config's quick_gelu; TorchScript: always on)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs embedding difference allowed (fp32)")
    ap.add_argument("--overwrite", action="store_true", help="replace what is in --out")
    a = ap.parse_args(argv)
    qg = {"auto": None, "on": True, "off": False}[a.quick_gelu]
    try:
        rep = export_clip(a.model, a.pretrained, a.out, quick_gelu=qg, tol=a.tol, overwrite=a.overwrite,
                          log=lambda s: print(s, file=sys.stderr))
    except ExportError as e:
        print(f"export_clip: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
