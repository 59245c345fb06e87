"""Export the committed trained weights (export/demo_model/weights.safetensors) to the demo model directory.

    export/.venv/bin/python -m export.demo_model.export_demo [--weights W] [--out models/shapes-flamingo] [--dtype fp16]

Goes through the normal exporter (export_openflamingo.export_model: factory build, strict checkpoint load,
ONNX export, PyTorch/onnxruntime parity check, atomic write); `checkpoint_sha256` in model.yaml is the
SHA-256 of the weights file, and the runtime verifies every graph's hash on load.
"""
import argparse
import json
import os
import sys
from pathlib import Path

for _k, _v in (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("MKL_CBWR", "COMPATIBLE"),
               ("FLAMINGO_EXPORT_THREADS", "1"), ("TOKENIZERS_PARALLELISM", "false"), ("RAYON_NUM_THREADS", "1"),
               ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
    os.environ.setdefault(_k, _v)

from ..config import load_config  # noqa: E402
from ..export_openflamingo import export_model  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=str(HERE / "weights.safetensors"))
    ap.add_argument("--out", default=str(REPO / "models" / "shapes-flamingo"))
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"],
                    help="graph precision (export/precision.py); the committed model is fp32")
    a = ap.parse_args(argv)
    rep = export_model(load_config(HERE / "config.yaml"), Path(a.weights), Path(a.out), overwrite=True,
                       log=lambda s: print(s, file=sys.stderr), dtype=a.dtype)
    p = rep["parity"]
    print(f"{a.out}: {rep['seconds']}s, max abs diff {p['max_abs_diff']:.3g}, greedy identical "
          f"{p['greedy_tokens_identical']}, beam-3 identical {p['beam3_tokens_identical']}, "
          f"files {sum(rep['sizes'].values()) / 1e6:.2f} MB")
    print(json.dumps(rep, indent=1, sort_keys=True), file=sys.stderr)


if __name__ == "__main__":
    main()
