"""Half precision (`--dtype`, export/precision.py, CONTRACT.md "Precision"): an fp16 / bf16 export of a tiny model
passes its parity check against the fp32 PyTorch model with the dtype's tolerance, its manifest says so
(contract 4), its graphs have the promised element types, and fp32 exports are unchanged (contract 3, no
`dtype`)."""
import numpy as np
import onnx
import pytest
import yaml

from export.config import ExportError
from export.export_openflamingo import export_model
from export.precision import DEFAULT_TOL, FP32_BOUNDARY, convert_model_dir, round_to_bf16

from .conftest import FIXTURES, REPO

CFG = REPO / "export" / "tiny" / "configs" / "tiny-gptneox.yaml"
F16, F32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT


def _float_io(path):
    m = onnx.load(str(path), load_external_data=False)
    return {v.name: v.type.tensor_type.elem_type for v in list(m.graph.input) + list(m.graph.output)
            if v.type.tensor_type.elem_type in (F16, F32)}


def _cfg(tmp_path):
    raw = yaml.safe_load(CFG.read_text())
    raw["tokenizer"]["path"] = str(REPO / "export" / "tiny" / "base_tokenizer")
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_fp16_export_passes_parity_and_says_fp16(tmp_path, gptneox_checkpoint):
    out = tmp_path / "m16"
    rep = export_model(_cfg(tmp_path), gptneox_checkpoint[0], out, dtype="fp16", max_new_tokens=6, log=lambda s: None)
    p = rep["parity"]
    assert p["dtype"] == "fp16" and p["tol"] == DEFAULT_TOL["fp16"]
    # half precision is visibly not fp32 (a converter that did nothing would give ~1e-6) and within tolerance
    assert p["max_abs_diff"] > 1e-4 and p["max_rel_diff"] <= DEFAULT_TOL["fp16"], p
    assert p["greedy_steps_agreeing"] >= 1
    m = yaml.safe_load((out / "model.yaml").read_text())
    assert m["contract_version"] == 4 and m["dtype"] == "fp16"
    for comp, fp32_names in FP32_BOUNDARY.items():
        io = _float_io(out / m["components"][comp]["file"])
        assert io, comp
        for name, et in io.items():
            assert et == (F32 if name in fp32_names else F16), (comp, name, et)
    # and no float32 weights are left in the decoder
    dec = onnx.load(str(out / "lang_decoder.onnx"))
    kinds = {i.data_type for i in dec.graph.initializer}
    assert F32 not in kinds and F16 in kinds


def test_a_tolerance_too_tight_for_the_dtype_fails_the_export(tmp_path, gptneox_checkpoint):
    out = tmp_path / "m16"
    with pytest.raises(ExportError, match=r"parity check failed \(fp16"):
        export_model(_cfg(tmp_path), gptneox_checkpoint[0], out, dtype="fp16", tol=1e-5, max_new_tokens=4,
                     log=lambda s: None)
    assert not out.exists()


def test_bf16_rounds_the_weights_and_keeps_fp32_graphs(tmp_path):
    src = FIXTURES / "tiny-gptneox"
    out = tmp_path / "mbf16"
    rep = convert_model_dir(src, out, "bf16", log=lambda s: None)
    assert rep["max_abs_diff"] > 1e-4 and rep["max_rel_diff"] <= DEFAULT_TOL["bf16"]
    m = yaml.safe_load((out / "model.yaml").read_text())
    assert m["contract_version"] == 4 and m["dtype"] == "bf16"
    assert set(_float_io(out / "lang_decoder.onnx").values()) == {F32}
    dec = onnx.load(str(out / "lang_decoder.onnx"))
    for init in dec.graph.initializer:
        if init.data_type == F32:
            bits = onnx.numpy_helper.to_array(init).astype(np.float32).view(np.uint32)
            assert not (bits & 0xFFFF).any(), f"{init.name} is not bf16-rounded"


def test_fp16_conversion_of_a_fixture_matches_its_fp32_graphs(tmp_path):
    rep = convert_model_dir(FIXTURES / "tiny-mpt", tmp_path / "m", "fp16", log=lambda s: None)
    assert rep["max_abs_diff"] > 1e-4 and rep["max_rel_diff"] <= DEFAULT_TOL["fp16"]
    with pytest.raises(ExportError, match="exists"):
        convert_model_dir(FIXTURES / "tiny-mpt", tmp_path / "m", "fp16", log=lambda s: None)
    with pytest.raises(ExportError, match="dtype fp16; convert an fp32 export"):
        convert_model_dir(tmp_path / "m", tmp_path / "m2", "bf16", log=lambda s: None)


def test_round_to_bf16_is_round_to_nearest_even():
    x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -9, -2.5e-3, 0.0, np.inf, -np.inf, np.nan,
                  3.4e38], np.float32)
    got = round_to_bf16(x)
    # 1+2^-8 is a tie between 1 and 1+2^-7: to even (1.0); 1+3*2^-8 ties up to 1+2^-6
    assert got[0] == 1.0 and got[1] == 1.0 and got[2] == np.float32(1.0 + 2 ** -6) and got[3] == 1.0
    assert np.isnan(got[8]) and got[6] == np.inf and got[7] == -np.inf and got[9] == np.inf
    try:
        import ml_dtypes
    except ImportError:
        return
    r = np.random.default_rng(0).standard_normal(10000).astype(np.float32) * 10
    np.testing.assert_array_equal(round_to_bf16(r), r.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_fp32_export_is_contract_3_without_dtype(tmp_path, gptneox_checkpoint):
    out = tmp_path / "m32"
    export_model(_cfg(tmp_path), gptneox_checkpoint[0], out, max_new_tokens=2, log=lambda s: None)
    m = yaml.safe_load((out / "model.yaml").read_text())
    assert m["contract_version"] == 3 and "dtype" not in m
