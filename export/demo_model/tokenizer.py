"""Train the demo model's small byte-level BPE tokenizer on the shapes task texts (deterministic).

Same style as export/tiny/train_tokenizer.py (GPT-NeoX-like base tokenizer: `<|endoftext|>` = id 0 as
bos/eos/unk, no BOS added; OpenFlamingo's factory adds `<|endofchunk|>`, `<image>`, `<PAD>`), but a vocabulary
of at most 512 (469 in practice) so that the LM head stays small, trained on texts rendered by export/demo_model/shapes.py and the three
OpenFlamingo prompt templates. Every task word and nonce name is a single token.

    export/.venv/bin/python -m export.demo_model.tokenizer export/demo_model/tokenizer
"""
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from . import shapes  # noqa: E402

VOCAB_SIZE = 512  # an upper bound: the corpus runs out of pairs at 469
CORPUS_SEED = 4004


def corpus_lines():
    rng = np.random.RandomState(CORPUS_SEED)
    for _ in range(3000):
        s = shapes.sample_scene(rng)
        for c in shapes.captions(s):
            yield f"Output:{c}"
        for q, a, _, _ in shapes.vqa_items(s, rng):
            yield f"Question:{q} Short answer:{a}"
        text, label = shapes.meme_item(s, rng)
        yield f"is an image with: '{text}' written on it. Is it hateful? Answer:{['no', 'yes'][label]}"
    for _ in range(40):
        for name in shapes.NONCE:
            yield f"Question:{shapes.BINDING_QUESTION} Short answer:{name}"
    for w in ("violet", "one", "two", "three", "four"):
        for _ in range(20):
            yield w


def train(out_dir: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(corpus_lines()), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", model_max_length=512)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir), legacy_format=False)
    return out_dir


if __name__ == "__main__":
    train(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "tokenizer"))
