"""What the runtime must do around the text of a prompt and after decoding, read off the tokenizer itself.

The runtime never guesses from a family name (CONTRACT.md): these explicit manifest fields are the whole story.

* `add_bos` / `bos`: does `tokenizer(text)` (what OpenFlamingo's eval calls, `add_special_tokens` on) put a
  BOS token before the text? A tokenizer that adds anything else (an EOS at the end, a template around the
  text) cannot be described by the contract and is refused.
* `clean_up_tokenization_spaces`: the flag `batch_decode` uses when not told otherwise (transformers 4.33: the
  tokenizer config's value, default true; LLaMA's tokenizer classes default to false).
"""
from __future__ import annotations

from .config import ExportError

# A few texts of different shapes; every one must agree on what the tokenizer adds.
_PROBES = ("a photo", "<image>Output:a cat.<|endofchunk|>", "Question: what is it? Short answer:")


def tokenizer_rules(tok, vocab_size: int) -> dict:
    """{'add_bos', 'bos', 'clean_up_tokenization_spaces'} for the manifest, checked against the tokenizer."""
    added = set()
    for text in _PROBES:
        full = list(tok(text).input_ids)
        plain = list(tok(text, add_special_tokens=False).input_ids)
        if full == plain:
            added.add(False)
        elif tok.bos_token_id is not None and full == [tok.bos_token_id] + plain:
            added.add(True)
        else:
            raise ExportError(
                f"the tokenizer ({type(tok).__name__}) adds special tokens around {text!r} that the contract cannot "
                f"express: tokenizer(text) gives {full[:8]}..., without special tokens {plain[:8]}... "
                "(only a leading BOS is supported, tokenizer.add_bos)")
    if len(added) != 1:
        raise ExportError(f"the tokenizer ({type(tok).__name__}) prepends BOS to some prompts but not others")
    add_bos = added.pop()
    bos = tok.bos_token_id if add_bos else None
    if bos is not None and not 0 <= bos < vocab_size:
        raise ExportError(f"BOS token id {bos} is outside the LM head ({vocab_size} rows)")
    clean = tok.clean_up_tokenization_spaces
    if not isinstance(clean, bool):
        raise ExportError(f"tokenizer.clean_up_tokenization_spaces is {clean!r}; expected true or false")
    return {"add_bos": add_bos, "bos": bos, "clean_up_tokenization_spaces": clean}
