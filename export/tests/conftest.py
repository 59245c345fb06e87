import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = REPO / "tests" / "fixtures" / "models"
TINY = sorted(p.stem for p in (REPO / "export" / "tiny" / "configs").glob("*.yaml"))


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def gptneox_checkpoint(tmp_path_factory):
    """A full state dict of tiny-gptneox's architecture (random init), for the exporter's own tests."""
    import torch

    from export.build import build_model, canonical_state_dict
    from export.config import load_config

    cfg = load_config(REPO / "export" / "tiny" / "configs" / "tiny-gptneox.yaml")
    d = tmp_path_factory.mktemp("ckpt")
    built = build_model(cfg, d / "work")
    from open_flamingo.src.helpers import GatedCrossAttentionBlock

    with torch.no_grad():  # non-zero gates, so that images matter
        for m in built.model.modules():
            if isinstance(m, GatedCrossAttentionBlock):
                m.attn_gate.fill_(0.5)
                m.ff_gate.fill_(0.5)
    sd = canonical_state_dict(built.model)
    path = d / "checkpoint.pt"
    torch.save(sd, path)
    return path, sd
