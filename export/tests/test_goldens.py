"""The committed goldens (PyTorch) agree with the committed graphs under onnxruntime, through the reference
driver export/ortrun.py (prefill, KV-cached decoding, greedy, beam-3, cached candidate scoring)."""
import pytest

from .conftest import FIXTURES, TINY
from .golden_check import check_model


@pytest.mark.parametrize("name", TINY)
def test_goldens_match_onnxruntime(name):
    res = check_model(FIXTURES / name, tol=1e-4)
    assert res["generate_greedy"] and res["generate_beam3"] and res["batch2.tokens"]
