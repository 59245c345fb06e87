"""Half-precision graphs (the exporter's `--dtype`; contract version 4, export/CONTRACT.md "Precision").

    export/.venv/bin/python -m export.precision --dtype fp16 SRC_MODEL_DIR OUT_DIR

converts an exported fp32 model directory; the exporter (`export_openflamingo --dtype`) calls the same
functions on its fp32 graphs before its PyTorch parity check. What each dtype means:

* `fp32`: the graphs as torch.onnx wrote them (contract 3; the exporter's default, unchanged bytes).
* `fp16`: every float tensor of the graphs is float16 — initializers, Constant nodes (clamped to ±65504, so that
  `finfo(float32).min` mask fill values stay finite), activations and the graph inputs/outputs the runtime keeps
  between calls (`patch_tokens`, `latents`, `xattn_kv_{i}`, `past_*` / `present_*`) — except the three the runtime
  produces or reads as numbers, which stay float32 behind a Cast inside the graph: `pixels` (in),
  `image_embedding` and `logits` (out). Converted by onnxruntime's own converter
  (onnxruntime.transformers.float16, its default op block list plus Softmax, which stays float32 as under
  autocast). On onnxruntime's CPU provider, nodes without an
  fp16 CPU kernel (most of them) run in fp32 behind Casts the session inserts (InsertCastTransformer), so on a
  CPU this is fp16 storage (weights, KV cache) with mostly-fp32 arithmetic; on CUDA it is fp16 arithmetic.
* `bf16`: onnxruntime's CPU provider has almost no bfloat16 kernels, so the graphs stay float32 (I/O as `fp32`)
  and every float32 initializer — the modules' parameters and buffers — is rounded to the nearest bfloat16
  (round-to-nearest-even, stored as float32). That reproduces the weights of OpenFlamingo's `--precision bf16`
  (`model.to(torch.bfloat16)`), NOT its bf16 activations / bf16 arithmetic, and not `amp_bf16` autocast exactly
  either (autocast rounds the weights and inputs of matmul/linear/conv ops only; LayerNorm and embeddings stay
  fp32 there, and every matmul input activation is rounded). Constant nodes (values computed in forward: mask
  fills, scales, shape arithmetic) stay exact fp32.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np

if __package__ in (None, ""):  # allow `python export/precision.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "export"

from .config import ExportError, staging_dir  # noqa: E402

DTYPES = ("fp32", "fp16", "bf16")
# contract version of a manifest with `dtype` (fp32 exports keep writing version 3, byte for byte)
PRECISION_CONTRACT_VERSION = 4
GRAPHS = ("vision_encoder", "perceiver", "xattn_kv", "lang_decoder")
# graph inputs/outputs that stay float32 in an fp16 graph (the runtime writes pixels and reads these numbers)
FP32_BOUNDARY = {"vision_encoder": ["pixels", "image_embedding"], "perceiver": [], "xattn_kv": [],
                 "lang_decoder": ["logits"]}
# ops kept in float32 (behind Casts) in an fp16 graph, besides the converter's default block list: softmax (as
# autocast keeps it; measured on the tiny fixtures it does not change the parity numbers' order of magnitude)
FP32_OPS = ("Softmax",)
# Parity tolerance per dtype against the fp32 PyTorch model: fp32 max abs difference of every compared tensor
# (logits included); fp16 / bf16 relative to each tensor's size, max abs diff <= tol x max(1, max |reference|)
# (export/parity.py). Measured (export/README.md "Half precision"): fp16 at most 5.0e-3 (trained demo model;
# tiny fixtures 0.8e-3..2.2e-3), bf16 at most 1.35e-2; the defaults leave about 4x / 6x headroom and are still
# far below what a broken conversion gives (overflow, NaN, a wrong graph: O(1)).
DEFAULT_TOL = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 8e-2}


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ExportError(f"unknown --dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    return dtype


def graph_float_type(dtype: str) -> str:
    """Element type of a graph's converted float tensors for a manifest dtype (CONTRACT.md)."""
    return "float16" if dtype == "fp16" else "float32"


def round_to_bf16(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), as float32. NaN stays NaN, ±inf stays ±inf;
    values beyond bf16's largest finite value round to ±inf as torch's `.to(torch.bfloat16)` does."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    out = rounded.view(np.float32)
    return np.where(np.isnan(a), a, out).reshape(a.shape)


def _load(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=True)


def _save(model, path: Path, external: bool) -> None:
    """Write `model` to `path`, its tensors in `<file>.data` (4 KiB aligned, export/staged.py) when `external`."""
    import onnx

    from .onnx_export import external_data_file
    from .staged import stream_external_data

    data = external_data_file(path)
    if data.exists():
        data.unlink()
    if not external:
        onnx.save_model(model, str(path))
        return
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        tmp = Path(work) / "graph.onnx"
        onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="graph.onnx.data", size_threshold=1024)
        stream_external_data(tmp, path, data.name, consume=True)


def _tensor_bytes(model) -> int:
    from onnx.external_data_helper import _get_all_tensors

    return sum(len(t.raw_data) for t in _get_all_tensors(model))


def convert_graph(path: Path, component: str, dtype: str) -> None:
    """Rewrites graph `path` (an fp32 contract graph) in place for `dtype`."""
    import onnx

    from .onnx_export import EXTERNAL_DATA_BYTES, external_data_file

    if dtype == "fp32":
        return
    path = Path(path)
    had_external = external_data_file(path).exists()
    model = _load(path)
    if dtype == "bf16":
        from onnx import numpy_helper

        for init in model.graph.initializer:
            if init.data_type == onnx.TensorProto.FLOAT:
                init.CopyFrom(numpy_helper.from_array(round_to_bf16(numpy_helper.to_array(init)), init.name))
    else:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        import logging

        # the converter logs a warning for every clamped constant (finfo(float32).min mask fills: expected)
        lg = logging.getLogger("onnxruntime.transformers.float16")
        level = lg.level
        lg.setLevel(logging.ERROR)
        try:
            from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

            model = convert_float_to_float16(model, keep_io_types=FP32_BOUNDARY[component],
                                             op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(FP32_OPS),
                                             disable_shape_infer=_tensor_bytes(model) > EXTERNAL_DATA_BYTES)
        finally:
            lg.setLevel(level)
        _toposort(model.graph)
        _check_fp16_io(model, component, path)
    _save(model, path, external=had_external or _tensor_bytes(model) > EXTERNAL_DATA_BYTES)


def _toposort(graph) -> None:
    """The converter appends its boundary Casts at the end of the node list; ONNX wants nodes in topological
    order (onnx.checker refuses otherwise). Stable: each node keeps its place unless an input comes later."""
    import heapq

    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [set() for _ in nodes]
    users = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        for x in n.input:
            j = producer.get(x)
            if j is not None and j != i:
                deps[i].add(j)
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    left = [len(d) for d in deps]
    ready = [i for i, k in enumerate(left) if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            left[u] -= 1
            if left[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise ExportError("the fp16 graph has a cycle (internal error of the conversion)")
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)


def _check_fp16_io(model, component: str, path: Path) -> None:
    import onnx

    want32 = set(FP32_BOUNDARY[component])
    for vi in list(model.graph.input) + list(model.graph.output):
        et = vi.type.tensor_type.elem_type
        if et not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            continue
        expect = onnx.TensorProto.FLOAT if vi.name in want32 else onnx.TensorProto.FLOAT16
        if et != expect:
            raise ExportError(f"{path}: after the fp16 conversion '{vi.name}' is "
                              f"{onnx.TensorProto.DataType.Name(et)}, expected "
                              f"{onnx.TensorProto.DataType.Name(expect)} (CONTRACT.md, Precision)")


def convert_graphs(model_dir: Path, dtype: str, log=None) -> None:
    """Every contract graph of an (fp32) model directory converted in place (model.yaml is not touched)."""
    import time

    for comp in GRAPHS:
        p = Path(model_dir) / f"{comp}.onnx"
        if not p.exists():
            continue
        t = time.time()
        convert_graph(p, comp, dtype)
        if log:
            log(f"[export] {comp}.onnx converted to {dtype} in {time.time() - t:.1f}s")


def manifest_for(manifest: dict, dtype: str) -> dict:
    """The manifest of a converted export: contract version 4 with `dtype` after `opset`; fp32 unchanged."""
    if dtype == "fp32":
        return manifest
    out = {}
    for k, v in manifest.items():
        out[k] = PRECISION_CONTRACT_VERSION if k == "contract_version" else v
        if k == "opset":
            out["dtype"] = dtype
    if "dtype" not in out:
        out["dtype"] = dtype
    return out


def manifest_dtype(manifest: dict) -> str:
    """`dtype` of a manifest (absent: fp32, every version before 4)."""
    return manifest.get("dtype", "fp32")


def convert_model_dir(src: Path, out: Path, dtype: str, tol: Optional[float] = None, log=print) -> dict:
    """A converted copy of an exported fp32 model directory, checked against the source's own graphs under
    onnxruntime (parity.compare_ort_models). Written to a temporary sibling and renamed into place."""
    import yaml

    from .build import sha256_file
    from .export_openflamingo import _component, dump_manifest

    check_dtype(dtype)
    src, out = Path(src).resolve(), Path(out).resolve()
    m = yaml.safe_load((src / "model.yaml").read_text())
    if manifest_dtype(m) != "fp32":
        raise ExportError(f"{src}: model.yaml says dtype {manifest_dtype(m)}; convert an fp32 export")
    if out.exists():
        raise ExportError(f"output {out} exists; choose a new --out")
    tmp = staging_dir(out)
    try:
        for p in src.iterdir():
            if p.is_file():
                shutil.copy2(p, tmp / p.name)
        convert_graphs(tmp, dtype, log)
        comps = dict(m["components"])
        for k, entry in comps.items():
            comps[k] = _component(tmp / entry["file"], entry["file"]) if k in GRAPHS else \
                {"file": entry["file"], "sha256": sha256_file(tmp / entry["file"])}
        m2 = manifest_for({**m, "components": comps}, dtype)
        (tmp / "model.yaml").write_text(dump_manifest(m2))
        from .parity import compare_ort_models

        rep = compare_ort_models(src, tmp, DEFAULT_TOL[dtype] if tol is None else tol)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="export.precision", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="an exported fp32 model directory")
    ap.add_argument("out", help="the converted model directory to create")
    ap.add_argument("--dtype", required=True, choices=[d for d in DTYPES if d != "fp32"])
    ap.add_argument("--tol", type=float, help="max abs difference allowed against the fp32 graphs "
                                              f"(default per dtype: {DEFAULT_TOL})")
    a = ap.parse_args(argv)
    try:
        rep = convert_model_dir(Path(a.src), Path(a.out), a.dtype, a.tol, log=lambda s: print(s, file=sys.stderr))
    except ExportError as e:
        print(f"export.precision: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
