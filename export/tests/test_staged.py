"""The memory-bounded (staged) export of export/staged.py, on the tiny models: lazy checkpoint reading, sharded
LM conversion, tensors streamed into aligned external-data files, graphs left unfolded for onnxruntime, the
PyTorch model freed before the onnxruntime half of the parity check. The full-size run is
scripts/fullsize_proof.sh (not in CI)."""
import numpy as np
import pytest
import torch
import yaml

from export import staged
from export.checkpoint import load_state_dict_file
from export.config import ExportError
from export.export_openflamingo import export_preset
from export.ortrun import OrtModel, prepare_rows

from .conftest import FIXTURES
from .test_external_data import _generate
from .test_published import _downloads


def test_lazy_state_dict_reads_what_torch_load_reads(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    sd = {"f32": base, "tied": base, "t": base.t(), "rows": base[2:4], "f16": torch.randn(3, 4, generator=g).half(),
          "bf16": torch.randn(7, generator=g).bfloat16(), "i64": torch.arange(10), "flag": torch.tensor([True, False]),
          "scalar": torch.tensor(-1e9), "empty": torch.zeros(0, 3)}
    torch.save(sd, tmp_path / "c.pt")
    ref = torch.load(tmp_path / "c.pt")
    lazy = staged.lazy_state_dict(tmp_path / "c.pt")
    assert list(lazy) == list(ref)
    for k, v in ref.items():
        assert isinstance(lazy[k], staged.LazyTensor), k
        assert lazy[k].shape == v.shape and lazy[k].dtype == v.dtype, k
        got = lazy[k].to(None)
        assert got.dtype == v.dtype and torch.equal(got, v), k
    assert torch.equal(lazy["f16"].to(torch.float32), ref["f16"].float())
    # load_state_dict_file(lazy=True): the same keys (module. prefix stripped), tensors read on use
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.pt")
    got = load_state_dict_file(tmp_path / "w.pt", lazy=True)
    assert sorted(got) == sorted(sd) and torch.equal(got["t"].to(None), base.t())
    # a truncated archive is refused naming the file, as without lazy reading
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match=r"cut.pt cannot be read.*truncated"):
        load_state_dict_file(tmp_path / "cut.pt", lazy=True)


def test_save_sharded_writes_the_transformers_index(tmp_path):
    from safetensors.torch import load_file

    g = torch.Generator().manual_seed(1)
    sd = {f"w{i}": torch.randn(64, 64, generator=g) for i in range(5)}
    files = staged.save_sharded(sd, tmp_path, shard_bytes=2 * 64 * 64 * 4)
    assert [f.name for f in files] == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    idx = yaml.safe_load((tmp_path / "model.safetensors.index.json").read_text())
    assert sorted(idx["weight_map"]) == sorted(sd) and idx["metadata"]["total_size"] == 5 * 64 * 64 * 4
    back = {}
    for f in files:
        back.update(load_file(str(f)))
    assert all(torch.equal(back[k], v) for k, v in sd.items())
    one = tmp_path / "one"
    one.mkdir()
    assert [f.name for f in staged.save_sharded(sd, one)] == ["model.safetensors"]


@pytest.fixture(scope="module")
def of3b(tmp_path_factory):
    return _downloads("tiny-of3b-mpt1b", tmp_path_factory.mktemp("dl3b_staged"))


def _export(files, out, **kw):
    args = {k: files[k] for k in ("checkpoint", "lm", "clip", "clip_model")}
    lines = []
    rep = export_preset("OpenFlamingo-3B-vitl-mpt1b", out, max_new_tokens=6, log=lines.append, **args, **kw)
    return rep, lines


def test_staged_export_runs_like_the_plain_one(of3b, tmp_path, monkeypatch):
    # the plain export of these downloads is the committed fixture (export/make_fixtures.sh builds it so)
    plain_dir = FIXTURES / "tiny-of3b-mpt1b"
    # everything the full-size export does, forced on the tiny model: external data, no torch folding, the LM
    # conversion sharded (and loaded shard by shard by from_pretrained)
    monkeypatch.setenv("FLAMINGO_EXPORT_EXTERNAL_DATA", "1")
    monkeypatch.setenv("FLAMINGO_EXPORT_NO_FOLD", "1")
    monkeypatch.setattr(staged, "SHARD_BYTES", 200_000)
    rep, lines = _export(of3b, tmp_path / "staged", staged=True)
    assert rep["staged"] is True
    assert any("freed" in s and "converted LM weights" in s for s in lines), lines
    assert any("PyTorch model freed before the onnxruntime checks" in s for s in lines), lines
    assert rep["parity"]["greedy_tokens_identical"] is True and rep["parity"]["beam3_tokens_identical"] is True
    d = tmp_path / "staged"
    m = yaml.safe_load((d / "model.yaml").read_text())
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors

    for g in ("vision_encoder", "perceiver", "lang_decoder"):
        comp = m["components"][g]
        assert comp["external_data"]["file"] == comp["file"] + ".data"
        proto = onnx.load(str(d / comp["file"]), load_external_data=False)
        ext = [ExternalDataInfo(t) for t in _get_all_tensors(proto) if t.data_location == onnx.TensorProto.EXTERNAL]
        assert ext and all(e.offset % staged.ALIGN == 0 and e.location == comp["external_data"]["file"] for e in ext)
        # unfolded: the decoder's weights are stored as the module holds them, transposed by onnxruntime
        if g == "lang_decoder":
            assert any(n.op_type == "Transpose" and n.input[0] in {t.name for t in proto.graph.initializer}
                       for n in proto.graph.node)
    # the same numbers under onnxruntime on a prompt the parity check does not use
    a, b = OrtModel(plain_dir), OrtModel(d)
    ids = np.array([[a.image_token, 5, 9, 11, 7, a.image_token, 3, 4]], dtype=np.int64)
    rows = prepare_rows(ids, np.ones_like(ids), a.image_token)
    px = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    outs = []
    for mdl in (a, b):
        lat = mdl.latents_for_rows([px])
        logits, _ = mdl.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat,
                               ids.shape[1], mdl.empty_past(1))
        outs.append(logits)
    assert np.abs(outs[0] - outs[1]).max() < 1e-5
    # and the Rust runtime generates exactly what it generates with the plain export
    assert _generate(d) == _generate(plain_dir)


def test_stream_external_data_moves_the_tensor_files(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = {n: rng.standard_normal(s).astype(np.float32) for n, s in (("w1", (16, 32)), ("w2", (32, 8)))}
    small = np.arange(8, dtype=np.float32)  # under 1 KiB: stays inline
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y0"]),
             helper.make_node("Add", ["y0", "b"], ["y"])]
    inits = [numpy_helper.from_array(v, n) for n, v in w.items()] + [numpy_helper.from_array(small, "b")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    src_dir = tmp_path / "torch"
    src_dir.mkdir()
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(m, str(src_dir / "g.onnx"), save_as_external_data=True, all_tensors_to_one_file=False,
                    size_threshold=1024)  # one file per tensor, as torch.onnx writes them
    files = sorted(p.name for p in src_dir.iterdir() if p.name != "g.onnx")
    assert files == ["w1", "w2"]
    out = tmp_path / "out"
    out.mkdir()
    staged.stream_external_data(src_dir / "g.onnx", out / "g.onnx", "g.onnx.data", consume=True)
    assert sorted(p.name for p in src_dir.iterdir()) == ["g.onnx"]  # the tensor files were moved, not copied
    x = rng.standard_normal((1, 16)).astype(np.float32)
    got = ort.InferenceSession(str(out / "g.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, x @ w["w1"] @ w["w2"] + small, rtol=1e-5, atol=1e-5)
    assert (out / "g.onnx.data").stat().st_size >= 4096 + 32 * 8 * 4


def test_export_lean_writes_the_same_graph_without_copying_the_weights():
    import io

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = torch.nn.LayerNorm(256)
            self.up = torch.nn.Linear(256, 1280)  # 1.25 MiB: over SHAPE_INFERENCE_PARAM_BYTES
            self.down = torch.nn.Linear(1280, 256, bias=False)
            self.register_buffer("scale", torch.full((256,), 0.5))

        def forward(self, x):
            h = self.down(torch.nn.functional.gelu(self.up(self.ln(x))))
            return x + h.reshape(x.shape[0], -1, 256) * self.scale + x.clone()  # a clone of its own stays

    torch.manual_seed(0)
    m = torch.nn.Sequential(Block(), Block()).eval()
    x = torch.randn(2, 3, 256)
    n_state = len(list(m.parameters()) + list(m.buffers()))
    for fold in (True, False):
        kw = dict(input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "B", 1: "S"}}, opset_version=17,
                  do_constant_folding=fold)
        plain, lean_buf = io.BytesIO(), io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(m, (x,), plain, **kw)
            with staged.export_lean(m) as lean:
                torch.onnx.export(m, (x,), lean_buf, **kw)
        # every state tensor's tracer copy skipped; the 4 big weights hidden from both shape-inference passes
        assert lean.skipped == n_state and lean.hidden == 8
        assert lean_buf.getvalue() == plain.getvalue(), f"fold={fold}"
    # restored afterwards, and the model still computes what it did
    assert torch._C._jit_pass_onnx_graph_shape_type_inference.__name__ == "_jit_pass_onnx_graph_shape_type_inference"
    assert torch.allclose(m(x), m(x))


def test_low_memory_layout_writes_the_graph_torch_writes(tmp_path):
    # under 2 GiB torch.onnx builds the whole protobuf in memory; low_memory_layout exports the graph without its
    # weights and writes them from the module's tensors (attach_params_external): the same initializers (names,
    # values; deduplicated ones once), the same nodes, aligned external data, the same numbers under onnxruntime
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnx.external_data_helper import ExternalDataInfo

    from export import onnx_export

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.LayerNorm(96), torch.nn.GELU(),
                            torch.nn.Linear(96, 64, bias=False), torch.nn.LayerNorm(64)).eval()
    x = torch.randn(2, 5, 64)
    io_ = (["x"], ["y"], {"x": {0: "B", 1: "S"}, "y": {0: "B", 1: "S"}})
    monkey = pytest.MonkeyPatch()
    monkey.setenv("FLAMINGO_EXPORT_EXTERNAL_DATA", "1")
    monkey.setenv("FLAMINGO_EXPORT_NO_FOLD", "1")
    try:
        onnx_export._export(m, (x,), tmp_path / "torch.onnx", *io_)  # torch writes the weights
    finally:
        monkey.undo()
    with onnx_export.low_memory_layout():
        onnx_export._export(m, (x,), tmp_path / "lean.onnx", *io_)
    a = onnx.load(str(tmp_path / "torch.onnx"))
    b_raw = onnx.load(str(tmp_path / "lean.onnx"), load_external_data=False)
    b = onnx.load(str(tmp_path / "lean.onnx"))
    assert [i.name for i in b.graph.input] == ["x"]
    assert {t.name: numpy_helper.to_array(t).tolist() for t in a.graph.initializer} == \
        {t.name: numpy_helper.to_array(t).tolist() for t in b.graph.initializer}
    assert [(n.op_type, list(n.input)) for n in a.graph.node] == [(n.op_type, list(n.input)) for n in b.graph.node]
    ext = [ExternalDataInfo(t) for t in b_raw.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert len(ext) == 2 and all(e.offset % staged.ALIGN == 0 and e.location == "lean.onnx.data" for e in ext)
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(run(tmp_path / "lean.onnx"), m(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(run(tmp_path / "lean.onnx"), run(tmp_path / "torch.onnx"))
