"""Train the small LLaMA-style tokenizer of the tiny LLaMA fixture (export/tiny/llama_tokenizer).

The layout is that of the published LLaMA-7B tokenizer as transformers 4.33's `LlamaTokenizerFast` holds it:
a sentencepiece-style BPE with byte fallback (`<unk>` 0, `<s>` 1 = BOS, `</s>` 2 = EOS, the 256 byte pieces
`<0x00>`..`<0xFF>` at ids 3..258, then the learned pieces), spaces written as `▁` with one `▁` prepended to
every text segment (the "legacy" LLaMA normalizer), a decoder that undoes it, and BOS prepended by the
tokenizer (`add_bos_token: true`, a template post-processor). There is no pad token, so OpenFlamingo's factory
adds `<PAD>` after `<|endofchunk|>` and `<image>`, as it does for LLaMA-7B.

Deterministic: the corpus of export/tiny/train_tokenizer.py in its fixed order, single-threaded training.

    python -m export.tiny.train_llama_tokenizer OUT_DIR
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from .train_tokenizer import DEFAULT_DATA, corpus_lines  # noqa: E402

VOCAB_SIZE = 2048          # total, specials and byte pieces included
SPECIALS = ["<unk>", "<s>", "</s>"]
SPACE = "\u2581"           # ▁


def _normalizer():
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])


def train(out_dir: Path, data_dir: Path = None) -> Path:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizerFast

    data_dir = Path(data_dir or os.environ.get("FLAMINGO_REAL_DATA", DEFAULT_DATA))
    # 1. learn pieces that never cross a word start (sentencepiece's split_by_whitespace)
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.normalizer = _normalizer()
    learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - 256, min_frequency=2, special_tokens=SPECIALS,
                                  show_progress=False)
    learner.train_from_iterator(list(corpus_lines(data_dir)), trainer=trainer)
    learned = json.loads(learner.to_str())["model"]
    # 2. renumber: specials, the 256 byte pieces, then the learned pieces in learned order
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    # 3. the LLaMA pipeline: no pre-tokenizer, byte fallback, `▁` decoder
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = _normalizer()
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in SPECIALS])
    fast = LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                              add_bos_token=True, add_eos_token=False, model_max_length=2048)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir), legacy_format=False)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(train(Path(sys.argv[1])))
