"""Tokenizer rules in the manifest (CONTRACT.md "Tokenisation and decoding"): BOS and decode clean-up are read
off the real tokenizer, and the committed decode goldens are what transformers' batch_decode gives."""
import json

import pytest
import yaml

from .conftest import FIXTURES, REPO, TINY

BASE = REPO / "export" / "tiny" / "base_tokenizer"
# the base tokenizer each fixture was built from (default BASE)
SOURCE_TOKENIZER = {"tiny-llama": REPO / "export" / "tiny" / "llama_tokenizer"}


def _fast(path, **kw):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(path), **kw)


def _with_template(single: str, special: dict, **kw):
    """The fixture tokenizer with a post-processor template (what LLaMA-style fast tokenizers carry)."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer.from_file(str(FIXTURES / "tiny-mpt" / "tokenizer.json"))
    t.post_processor = TemplateProcessing(single=single, special_tokens=list(special.items()))
    return PreTrainedTokenizerFast(tokenizer_object=t, **kw)


@pytest.mark.parametrize("name", TINY)
def test_decode_goldens_match_transformers(name):
    """goldens `decode` == batch_decode of the fixture's tokenizer.json with the manifest's clean-up flag."""
    d = FIXTURES / name
    m = yaml.safe_load((d / "model.yaml").read_text())
    case = json.loads((d / "golden" / "goldens.json").read_text())["cases"]["decode"]
    flag = m["tokenizer"]["clean_up_tokenization_spaces"]
    assert case["clean_up_tokenization_spaces"] == flag
    from transformers import AutoTokenizer

    # the flag the exporter wrote is the one the tokenizer the model was built with uses
    assert AutoTokenizer.from_pretrained(str(SOURCE_TOKENIZER.get(name, BASE))).clean_up_tokenization_spaces == flag
    tok = _fast(d / "tokenizer.json", clean_up_tokenization_spaces=flag)
    assert [list(tok(t, add_special_tokens=False).input_ids) for t in case["texts"]] == case["token_ids"]
    assert tok.batch_decode(case["token_ids"], skip_special_tokens=True) == case["expected"]
    assert tok.batch_decode(case["token_ids"], skip_special_tokens=True, clean_up_tokenization_spaces=False) \
        == case["expected_without_cleanup"]
    if not flag:  # LLaMA's tokenizer: no clean-up, " ' " stays as decoded
        assert case["expected"] == case["expected_without_cleanup"]
        return
    # the case can tell the two apart, and joins " ' " as OpenFlamingo's eval does
    assert case["expected"] != case["expected_without_cleanup"]
    by_text = dict(zip(case["texts"], case["expected"]))
    assert by_text[" ' "] == "'" and by_text["it ' s a cat ."] == "it's a cat."


def test_rules_of_the_tiny_tokenizer():
    from transformers import AutoTokenizer

    from export.tokenizer_rules import tokenizer_rules

    tok = AutoTokenizer.from_pretrained(str(BASE))
    assert tokenizer_rules(tok, 2051) == {"add_bos": False, "bos": None, "clean_up_tokenization_spaces": True}
    off = AutoTokenizer.from_pretrained(str(BASE), clean_up_tokenization_spaces=False)
    assert tokenizer_rules(off, 2051)["clean_up_tokenization_spaces"] is False


def test_leading_bos_is_detected():
    from export.tokenizer_rules import tokenizer_rules

    tok = _with_template("<|endoftext|> $A", {"<|endoftext|>": 0}, bos_token="<|endoftext|>")
    assert tok("a photo").input_ids[0] == 0
    assert tokenizer_rules(tok, 2051) == {"add_bos": True, "bos": 0, "clean_up_tokenization_spaces": True}
    with pytest.raises(Exception, match="outside the LM head"):
        tokenizer_rules(tok, 0)


def test_llama_tokenizer_class_adds_bos_and_does_not_clean_up():
    """transformers' own LLaMA fast tokenizer class (as OpenFlamingo v1 / Med-Flamingo use it): BOS on, clean-up off."""
    from transformers import LlamaTokenizerFast

    from export.tokenizer_rules import tokenizer_rules

    tok = LlamaTokenizerFast(tokenizer_file=str(FIXTURES / "tiny-mpt" / "tokenizer.json"), bos_token="<|endoftext|>",
                             eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    assert tokenizer_rules(tok, 2051) == {"add_bos": True, "bos": 0, "clean_up_tokenization_spaces": False}


def test_other_special_tokens_are_refused():
    from export.config import ExportError
    from export.tokenizer_rules import tokenizer_rules

    tok = _with_template("$A <|endoftext|>", {"<|endoftext|>": 0}, eos_token="<|endoftext|>")
    with pytest.raises(ExportError, match="cannot express"):
        tokenizer_rules(tok, 2051)
    tok = _with_template("<PAD> $A", {"<PAD>": 2050}, bos_token="<|endoftext|>")
    with pytest.raises(ExportError, match="only a leading BOS"):
        tokenizer_rules(tok, 2051)
