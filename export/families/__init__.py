"""One module per language-model family (export/families/<name>.py), behind one interface (base.Family).

Everything family-specific the exporter needs lives in the family's module: which transformers class the
factory must end up with, OpenFlamingo's decoder-layers attribute, how a released LM folder is turned into the
folder the factory loads, how the decoder blocks run with an explicit KV cache / positions / mask for export,
the graph's inputs, the manifest field uses_position_ids and known checkpoint key fix-ups (BOS and decode
clean-up are read off the tokenizer itself: export/tokenizer_rules.py). The rest
of the exporter (build, onnx_export, parity, goldens) is shared and never branches on a family name.
"""
from __future__ import annotations

from ..config import ExportError
from .base import Family
from .gpt_neox import GptNeoX
from .llama import Llama
from .mosaic_gpt import MosaicGpt
from .mpt import Mpt

_REGISTRY = {f.name: f for f in (GptNeoX(), Llama(), Mpt(), MosaicGpt())}


def register(family: Family) -> None:
    """Add a family (a module of this package calls it for itself)."""
    _REGISTRY[family.name] = family


def names() -> list:
    return sorted(_REGISTRY)


def canonical(name: str) -> str:
    """`gpt-neox`, `GPT_NeoX` and `gpt_neox` are one family."""
    return str(name).strip().lower().replace("-", "_")


def get(name: str) -> Family:
    key = canonical(name)
    if key not in _REGISTRY:
        raise ExportError(f"unknown LM family {name!r}; supported: {', '.join(names())}")
    return _REGISTRY[key]


def known(name: str) -> bool:
    return canonical(name) in _REGISTRY
