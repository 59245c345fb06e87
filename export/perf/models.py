"""Models for the speed benchmark: build (once) and load the same weights on both sides.

    python -m export.perf.models build --cache .cache/perf      # exports mid-b16 (cached) and prints the dirs

* `tiny-gptneox` is the committed fixture (tests/fixtures/models/tiny-gptneox); its PyTorch twin is rebuilt by
  export/tiny/make_tiny.py's `build_tiny` (the export is byte-deterministic, tested).
* `mid-b16` (export/perf/mid-b16.yaml) is built by open_flamingo's factory with the config's seed, its
  cross-attention gates set to 0.5 (so images change the text) and <|endofchunk|> made reachable exactly as the
  tiny fixtures do; the state dict is saved as CACHE/mid-b16/checkpoint.pt and exported with the project's
  exporter (parity check included) to CACHE/mid-b16/model. A finished export is reused.
"""
import argparse
import atexit
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MODELS = ("tiny-gptneox", "mid-b16")


def _set_gates(model, value=0.5):
    from open_flamingo.src.helpers import GatedCrossAttentionBlock

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, GatedCrossAttentionBlock):
                m.attn_gate.fill_(value)
                m.ff_gate.fill_(value)


def model_dir(name: str, cache: Path) -> Path:
    if name == "tiny-gptneox":
        return REPO / "tests" / "fixtures" / "models" / name
    return Path(cache) / name / "model"


def build_mid(cache: Path, log=print) -> Path:
    """Exports mid-b16 into CACHE/mid-b16/model unless it is already there."""
    from ..build import build_model, canonical_state_dict
    from ..config import load_config
    from ..export_openflamingo import export_model
    from ..tiny.make_tiny import make_eoc_reachable

    out = model_dir("mid-b16", cache)
    ckpt = out.parent / "checkpoint.pt"
    if (out / "model.yaml").exists() and ckpt.exists():
        return out
    cfg = load_config(HERE / "mid-b16.yaml")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        built = build_model(cfg, Path(work))
        _set_gates(built.model)
        make_eoc_reachable(built)
        torch.save(canonical_state_dict(built.model), ckpt)
        del built
        rep = export_model(cfg, ckpt, out, checkpoint_sha=f"random-init:{cfg['seed']}", overwrite=True,
                           log=lambda s: log(s))
    log(f"[perf] exported mid-b16 in {rep['seconds']}s: {json.dumps(rep['parity'], sort_keys=True)[:300]}")
    return out


def load_torch(name: str, cache: Path):
    """The PyTorch OpenFlamingo model with exactly the exported weights: (model, image_processor, tokenizer)."""
    if name == "tiny-gptneox":
        from ..tiny.make_tiny import build_tiny

        work = tempfile.mkdtemp(prefix="perf-tiny-")
        atexit.register(shutil.rmtree, work, ignore_errors=True)
        _, built = build_tiny(name, Path(work))
    else:
        from ..build import apply_checkpoint, build_model, load_state_dict_file
        from ..config import load_config

        cfg = load_config(HERE / f"{name}.yaml")
        work = tempfile.mkdtemp(prefix="perf-mid-")
        atexit.register(shutil.rmtree, work, ignore_errors=True)
        built = build_model(cfg, Path(work))
        ckpt = model_dir(name, cache).parent / "checkpoint.pt"
        apply_checkpoint(built, load_state_dict_file(ckpt), ckpt)
    built.model.eval()
    return built.model, built.image_processor, built.tokenizer


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["build"])
    ap.add_argument("--cache", default=str(REPO / ".cache" / "perf"))
    a = ap.parse_args(argv)
    build_mid(Path(a.cache), log=lambda s: print(s, file=sys.stderr))
    for n in MODELS:
        print(f"{n}\t{model_dir(n, Path(a.cache))}")


if __name__ == "__main__":
    main()
