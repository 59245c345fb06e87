"""Memory-bounded export of full-size models (OpenFlamingo-3B and up on a machine with less RAM than twice the
model): lazy checkpoint reading, tensors streamed into the external-data file, sharded LM conversion, and a
staged export that frees each PyTorch module once its graph is written and the PyTorch copy before any
onnxruntime session is created.

Where the memory of a naive export goes (fp32, OpenFlamingo-3B: vision 0.30 B, perceiver 0.06 B, decoder
2.2 B parameters, ~10 GB), and what replaces it here:

* checkpoint.pt (~4.2 GB) held whole while the model is built -> `lazy_state_dict`: the torch zip archive's
  pickle is read with each tensor left as a `LazyTensor` (shape and dtype known, bytes read when the tensor is
  copied into its parameter), so one tensor at a time is in memory;
* the released LM folder converted into one model.safetensors -> `save_sharded`: shards that transformers'
  from_pretrained loads one at a time;
* torch.onnx's constant folding writing a transposed copy of every Linear weight -> left to onnxruntime
  (export/onnx_export.py: not folded above the external-data size, nor in the staged export);
* torch.onnx's tracer cloning the whole module state, and its ONNX shape inference holding every parameter as
  a constant until the pass ends (+1 x the weights each; +8.6 GB for the decoder) -> `export_lean`;
* torch.onnx building graphs under 2 GiB as one in-memory protobuf (+3-4 x their weights: the vision encoder)
  -> in the staged export every graph is exported without its weights, which `attach_params_external` writes
  from the module's tensors into the one aligned `<graph>.onnx.data`;
* onnx.load + save_model of a > 2 GiB graph (every tensor in memory again) -> `stream_external_data`: the graph
  proto is read without its tensors, each tensor file torch wrote is appended to the one `<graph>.onnx.data`
  (the plain export of a graph over the external-data size);
* PyTorch and onnxruntime copies at once during the parity check -> `export_staged`: the PyTorch half of the
  parity check runs first (export/parity.py torch_reference), each module is freed after its graph is
  written, the onnxruntime half runs after the whole PyTorch model is gone.

The staged export writes the same graphs as the plain one (the tests compare the runtime's outputs).
"""
from __future__ import annotations

import gc
import io
import json
import os
import pickle
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Dict, Optional

import torch

from .config import ExportError

# staged mode is switched on by --staged, or by itself when the model's fp32 weights exceed this
AUTO_STAGED_BYTES = 6 * 1024 ** 3
# external-data tensors start on this boundary (onnxruntime memory-maps aligned external data)
ALIGN = 4096
SHARD_BYTES = 1 << 30


# --------------------------------------------------------------------------------------------------
# lazy checkpoint reading
# --------------------------------------------------------------------------------------------------

class LazyTensor:
    """A tensor of a torch zip archive, not read yet: `.shape`, `.dtype`; `.to(dtype)` / `.load()` read it."""

    def __init__(self, archive: "_Archive", key: str, dtype, storage_numel: int, offset: int, size, stride):
        self.archive, self.key, self.dtype = archive, key, dtype
        self.storage_numel, self.offset = storage_numel, offset
        self.shape, self.stride_ = torch.Size(size), tuple(stride)

    def numel(self) -> int:
        return self.shape.numel()

    def dim(self) -> int:
        return len(self.shape)

    def load(self) -> torch.Tensor:
        storage = self.archive.read_storage(self.key, self.dtype, self.storage_numel)
        t = storage.as_strided(self.shape, self.stride_, self.offset)
        # a view of part of a storage (or of a shared one) is copied out so the storage can be freed
        return t.clone() if t.numel() != storage.numel() or not t.is_contiguous() else t

    def to(self, dtype=None) -> torch.Tensor:
        t = self.load()
        return t if dtype is None else t.to(dtype)

    def contiguous(self) -> torch.Tensor:
        return self.load().contiguous()

    def __repr__(self):
        return f"LazyTensor({self.archive.path.name}:{self.key}, {tuple(self.shape)}, {self.dtype})"


class _Archive:
    def __init__(self, path: Path, zf: zipfile.ZipFile, prefix: str):
        self.path, self.zf, self.prefix = path, zf, prefix

    def read_storage(self, key: str, dtype, numel: int) -> torch.Tensor:
        itemsize = torch.empty((), dtype=dtype).element_size()
        buf = bytearray(numel * itemsize)
        with self.zf.open(f"{self.prefix}data/{key}") as f:
            n = f.readinto(buf)
        if n != len(buf):
            raise ExportError(f"checkpoint {self.path}: tensor data {key} is truncated ({n} of {len(buf)} bytes); "
                              "the file is incomplete — download it again")
        return torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)


def _rebuild(storage, storage_offset, size, stride, *rest):
    archive, key, dtype, numel = storage
    return LazyTensor(archive, key, dtype, numel, storage_offset, size, stride)


class _LazyUnpickler(pickle.Unpickler):
    def __init__(self, f, archive: _Archive):
        super().__init__(f)
        self.archive = archive

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        return super().find_class(module, name)

    def persistent_load(self, pid):
        kind = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
        storage_type, key, _location, numel = pid[1:]
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
        return (self.archive, str(key), dtype, int(numel))


def is_torch_zip(path) -> bool:
    p = Path(path)
    if not p.is_file() or not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any(n.endswith("/data.pkl") for n in z.namelist())


def lazy_state_dict(path) -> dict:
    """The pickled object of a torch zip archive (torch.save since 1.6) with every tensor a LazyTensor."""
    path = Path(path)
    zf = zipfile.ZipFile(path)
    pkl = [n for n in zf.namelist() if n.endswith("/data.pkl")]
    if len(pkl) != 1:
        raise ExportError(f"checkpoint {path}: not a torch archive with one data.pkl")
    archive = _Archive(path, zf, pkl[0][:-len("data.pkl")])
    with zf.open(pkl[0]) as f:
        return _LazyUnpickler(io.BytesIO(f.read()), archive).load()


def materialize(v):
    return v.load() if isinstance(v, LazyTensor) else v


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------

def save_sharded(tensors: Dict[str, torch.Tensor], folder: Path, shard_bytes: Optional[int] = None,
                 name: str = "model") -> list:
    """`tensors` as `name.safetensors`, or, above `shard_bytes`, as transformers' sharded layout
    (`name-0000i-of-0000n.safetensors` + `name.safetensors.index.json`), which from_pretrained loads one shard at
    a time. LazyTensors are read one shard at a time. Returns the files written."""
    from safetensors.torch import save_file

    folder = Path(folder)
    shard_bytes = shard_bytes or SHARD_BYTES
    sizes = {k: v.numel() * torch.empty((), dtype=v.dtype).element_size() for k, v in tensors.items()}
    total = sum(sizes.values())
    if total <= shard_bytes:
        save_file({k: materialize(v).contiguous() for k, v in tensors.items()}, str(folder / f"{name}.safetensors"),
                  metadata={"format": "pt"})
        return [folder / f"{name}.safetensors"]
    shards, cur, cur_bytes = [], [], 0
    for k in tensors:
        if cur and cur_bytes + sizes[k] > shard_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(k)
        cur_bytes += sizes[k]
    shards.append(cur)
    files, weight_map = [], {}
    for i, keys in enumerate(shards):
        fn = f"{name}-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: materialize(tensors[k]).contiguous() for k in keys}, str(folder / fn), metadata={"format": "pt"})
        weight_map.update({k: fn for k in keys})
        files.append(folder / fn)
    (folder / f"{name}.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1, sort_keys=True))
    return files


def _point_external(t, location: str, start: int, length: int) -> None:
    import onnx

    del t.external_data[:]
    for k, v in (("location", location), ("offset", str(start)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    t.data_location = onnx.TensorProto.EXTERNAL


def stream_external_data(src: Path, dst: Path, location: str, consume: bool = False) -> None:
    """Graph `src` (as torch.onnx wrote it: external tensors in files beside it, or all inline) rewritten as
    `dst` with every tensor over 1 KiB in ONE file `location` beside `dst`, copied file by file (never all in
    memory), each tensor starting on a 4 KiB boundary. With `consume`, each of src's tensor files is deleted
    once copied, so the disk holds the weights about once, not twice (a full-size decoder is ~9 GB)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors

    def point(t, start, length):
        _point_external(t, location, start, length)

    src, dst = Path(src), Path(dst)
    model = onnx.load(str(src), load_external_data=False)
    data_path = dst.parent / location
    offset = 0
    left = {}  # tensors still to copy out of each of src's files
    for t in _get_all_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = ExternalDataInfo(t).location
            left[loc] = left.get(loc, 0) + 1
    with open(data_path, "wb") as out:
        for t in _get_all_tensors(model):
            if t.data_location == onnx.TensorProto.EXTERNAL:
                info = ExternalDataInfo(t)
                with open(src.parent / info.location, "rb") as f:
                    if info.offset:
                        f.seek(info.offset)
                    remaining = info.length if info.length else None
                    pad = (-offset) % ALIGN
                    out.write(b"\0" * pad)
                    offset += pad
                    start = offset
                    while True:
                        chunk = f.read(1 << 24 if remaining is None else min(1 << 24, remaining))
                        if not chunk:
                            break
                        out.write(chunk)
                        offset += len(chunk)
                        if remaining is not None:
                            remaining -= len(chunk)
                            if remaining == 0:
                                break
                left[info.location] -= 1
                if consume and left[info.location] == 0:
                    (src.parent / info.location).unlink()
                point(t, start, offset - start)
            elif t.HasField("raw_data") and len(t.raw_data) > 1024:
                pad = (-offset) % ALIGN
                out.write(b"\0" * pad)
                offset += pad
                start = offset
                out.write(t.raw_data)
                offset += len(t.raw_data)
                t.ClearField("raw_data")
                point(t, start, offset - start)
    onnx.save_model(model, str(dst))


def attach_params_external(src: Path, params: dict, dst: Path, location: str) -> None:
    """Graph `src`, exported by torch.onnx with `export_params=False` (each parameter a graph input), rewritten as
    `dst` with those inputs turned into initializers whose data (every tensor over 1 KiB, each on a 4 KiB
    boundary) is written straight from the torch tensors `params` (export_lean's `params`: the names torch gave
    them) into ONE file `location` beside `dst`. The same graph torch writes with its weights, without the
    in-memory protobuf torch builds for graphs under 2 GiB (its raw copy, the serialised bytes and the checker's
    parse: 3-4 x the weights at once)."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors
    from onnx.helper import tensor_dtype_to_np_dtype

    src, dst = Path(src), Path(dst)
    if params is None:
        raise ExportError(f"{dst.name}: torch.onnx did not hand over its parameters (unsupported torch version for the "
                          "low-memory export; run with --no-staged)")
    model = onnx.load(str(src))  # no weights in it: small
    inputs = {i.name: i for i in model.graph.input}
    missing = [k for k in params if k not in inputs]
    if missing:
        raise ExportError(f"{dst.name}: torch.onnx left parameters {missing[:3]} out of the graph inputs "
                          "(unsupported torch version for the low-memory export; run with --no-staged)")
    offset = 0
    with open(dst.parent / location, "wb") as out:
        def put(t, data) -> None:
            nonlocal offset
            pad = (-offset) % ALIGN
            out.write(b"\0" * pad)
            offset += pad
            out.write(data)
            _point_external(t, location, offset, len(data))
            offset += len(data)

        for name, v in params.items():
            elem = inputs[name].type.tensor_type.elem_type
            v = v.detach().contiguous()
            if tensor_dtype_to_np_dtype(elem).itemsize != v.element_size():
                raise ExportError(f"{dst.name}: parameter {name} is {v.dtype} but its graph input has ONNX type {elem}")
            data = memoryview(v.reshape(-1).view(torch.uint8).numpy()) if v.numel() else memoryview(b"")
            t = model.graph.initializer.add()
            t.name, t.data_type = name, elem
            t.dims.extend(int(d) for d in v.shape)
            if len(data) > 1024:
                put(t, data)
            else:
                t.raw_data = bytes(data)
        for t in _get_all_tensors(model):  # constants of the graph's nodes, as stream_external_data moves them
            if t.data_location != onnx.TensorProto.EXTERNAL and t.HasField("raw_data") and len(t.raw_data) > 1024:
                data = t.raw_data
                t.ClearField("raw_data")
                put(t, data)
    keep = [i for i in model.graph.input if i.name not in params]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.save_model(model, str(dst))


# --------------------------------------------------------------------------------------------------
# the staged export
# --------------------------------------------------------------------------------------------------

def param_bytes(model) -> int:
    seen, n = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            n += t.numel() * t.element_size()
    return n


def drop_temp_lm_weights(built, workdir: Path, log=None) -> None:
    """The converted LM folder the factory loaded (a copy in the export's work folder, e.g. mosaic_gpt -> native
    MPT) is not read again once the model is built: free its disk."""
    lm_dir = Path(built.lm_dir).resolve()
    try:
        lm_dir.relative_to(Path(workdir).resolve())
    except ValueError:
        return  # the user's own folder
    freed = 0
    for p in lm_dir.iterdir():
        if p.is_file() and not p.is_symlink() and p.suffix in (".safetensors", ".bin"):
            freed += p.stat().st_size
            p.unlink()
    if log and freed:
        log(f"[export] staged: freed {freed / 1e9:.2f} GB of converted LM weights in the work folder")


def free_module(built, name: str, log=None) -> None:
    attr = {"vision_encoder": "vision_encoder", "perceiver": "perceiver"}.get(name)
    if attr is None:
        return  # the decoder goes with the whole model (free_model)
    setattr(built.model, attr, None)
    gc.collect()
    if log:
        log(f"[export] staged: {name} written, its PyTorch module freed")


def free_model(built, log=None) -> None:
    built.model = None
    gc.collect()
    if log:
        log("[export] staged: PyTorch model freed before the onnxruntime checks")


def rss_gb() -> Optional[float]:
    """Peak resident memory of this process so far (GB), for the log."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    except Exception:
        return None


AUTO_STAGED_CHECKPOINT_BYTES = 1_000_000_000


def decide(flag: Optional[bool], checkpoint) -> bool:
    """--staged / --no-staged, else staged for a checkpoint file of 1 GB or more (every published one: 4-6 GB;
    the fixtures are kilobytes)."""
    if flag is not None:
        return bool(flag)
    env = os.environ.get("FLAMINGO_EXPORT_STAGED")
    if env in ("0", "1"):
        return env == "1"
    try:
        return Path(checkpoint).stat().st_size >= AUTO_STAGED_CHECKPOINT_BYTES
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------
# torch.onnx.export without second copies of the weights
# --------------------------------------------------------------------------------------------------

# tensors from this size on are left out of the params torch's ONNX shape inference sees (export_lean)
SHAPE_INFERENCE_PARAM_BYTES = 1 << 20


class _SkipTraceStateClones(torch.overrides.TorchFunctionMode):
    """torch.onnx.export traces through torch.jit's ONNXTracedModule, whose inner `wrapper` clones every traced
    input — the module's whole state (every parameter and buffer) included — into a list the ONNX export never
    reads (torch 2.0: `ret_inputs`, used only with `_return_inputs`): one more copy of all the weights for the
    whole trace. This mode answers exactly those clones (`Tensor.clone` called from that wrapper on a tensor
    whose storage is one of the module's) with the tensor itself; they are dead code in the traced graph. Any
    other clone runs as usual."""

    def __init__(self, module):
        super().__init__()
        self.ptrs = {t.data_ptr() for t in list(module.parameters()) + list(module.buffers())} - {0}
        self.skipped = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.clone and isinstance(args[0] if args else None, torch.Tensor) \
                and args[0].data_ptr() in self.ptrs:
            caller = sys._getframe(1)
            if caller.f_code.co_filename == torch.jit._trace.__file__ and caller.f_back is not None \
                    and caller.f_back.f_code.co_name == "wrapper":
                self.skipped += 1
                return args[0]
        return func(*args, **(kwargs or {}))


class export_lean:
    """`with export_lean(module) as lean: torch.onnx.export(module, ...)`: the same graph (test_staged compares
    the bytes) without the two transient copies of the weights torch 2.0 makes (measured on a 2.4 GB stack of
    Linears, external data, no folding: peak 2 x weights + 0.4 GB without, 1 x weights + 0.05 GB with):

    * the tracer's clone of the module state (`_SkipTraceStateClones`; `lean.skipped` counts them);
    * ONNX shape inference (`_jit_pass_onnx_graph_shape_type_inference`) given the parameter values: it embeds
      them as constants of the one-node graphs it infers and keeps them until the pass ends. Tensors of
      SHAPE_INFERENCE_PARAM_BYTES and more are left out of the params it sees (`lean.hidden` counts them):
      it still knows their types and shapes (graph inputs typed by the trace); only their values are unseen,
      which shape inference needs for shape arguments (small integer tensors), not for weights."""

    def __init__(self, module, keep_params: bool = False):
        self.mode = _SkipTraceStateClones(module)
        self.hidden = 0
        self._orig = None
        self.keep_params = keep_params
        self.params: Optional[dict] = None  # keep_params: the initializers torch would write, by name
        self._orig_dedup = None

    @property
    def skipped(self) -> int:
        return self.mode.skipped

    def _shape_inference(self, graph, params_dict, opset):
        small = {}
        for k, v in params_dict.items():
            if isinstance(v, torch.Tensor) and v.numel() * v.element_size() >= SHAPE_INFERENCE_PARAM_BYTES:
                self.hidden += 1
            else:
                small[k] = v
        return self._orig(graph, small, opset)

    def _dedup(self, graph, params_dict, training):
        out = self._orig_dedup(graph, params_dict, training)  # the last pass on the params before writing
        self.params = dict(out)
        return out

    def __enter__(self):
        import torch.jit._trace  # noqa: F401  (the file the tracer's wrapper lives in)

        self._orig = torch._C._jit_pass_onnx_graph_shape_type_inference
        torch._C._jit_pass_onnx_graph_shape_type_inference = self._shape_inference
        if self.keep_params:
            self._orig_dedup = torch._C._jit_pass_onnx_deduplicate_initializers
            torch._C._jit_pass_onnx_deduplicate_initializers = self._dedup
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            return self.mode.__exit__(*exc)
        finally:
            torch._C._jit_pass_onnx_graph_shape_type_inference = self._orig
            if self._orig_dedup is not None:
                torch._C._jit_pass_onnx_deduplicate_initializers = self._orig_dedup
