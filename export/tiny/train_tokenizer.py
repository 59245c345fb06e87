"""Train the small byte-level BPE tokenizer shared by the tiny fixture models.

Deterministic: fixed corpus order (real captions / questions / answers from /work/shared/data/real or
$FLAMINGO_REAL_DATA), single-threaded training. The result is a *base* LM tokenizer in the GPT-NeoX style
(`<|endoftext|>` = id 0 as bos/eos/unk, no BOS added); OpenFlamingo's factory then adds `<|endofchunk|>`,
`<image>` and `<PAD>` exactly as it does for real models.

    python -m export.tiny.train_tokenizer OUT_DIR
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

VOCAB_SIZE = 2048
DEFAULT_DATA = "/work/shared/data/real"


def corpus_lines(data_dir: Path):
    """Yield the training text in a fixed order."""
    coco = json.loads((data_dir / "coco_captions/captions_val2014_subset4800.json").read_text())
    for ann in coco["annotations"]:
        cap = ann["caption"].strip()
        yield cap
        yield f"Output:{cap}"
    for ds in ("textvqa", "vizwiz"):
        qs = json.loads((data_dir / ds / "val_questions_vqa_format.json").read_text())["questions"]
        anns = json.loads((data_dir / ds / "val_annotations_vqa_format.json").read_text())["annotations"]
        by_id = {a["question_id"]: a for a in anns}
        for q in qs:
            a = by_id.get(q["question_id"])
            ans = a["answers"][0]["answer"] if a else ""
            yield f"Question:{q['question']} Short answer:{ans}"
            if a:
                for x in a["answers"]:
                    yield x["answer"]
    vq = json.loads((data_dir / "vqav2_sample/questions.json").read_text())["questions"]
    va = json.loads((data_dir / "vqav2_sample/annotations.json").read_text())["annotations"]
    for q, a in zip(vq, va):
        yield f"Question:{q['question']} Short answer:{a['answers'][0]['answer']}"
    fl = json.loads((data_dir / "flickr30k_sample/captions_plain.json").read_text())
    for stem in sorted(fl):
        for cap in fl[stem]:
            yield f"Output:{cap.strip()}"
    # the classification prompts of PROTOCOL.md §1
    for label in ("yes", "no"):
        yield f"is an image with: 'text' written on it. Is it hateful? Answer:{label}"


def train(out_dir: Path, data_dir: Path = None) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    data_dir = Path(data_dir or os.environ.get("FLAMINGO_REAL_DATA", DEFAULT_DATA))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus_lines(data_dir)), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=2048,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir), legacy_format=False)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(train(Path(sys.argv[1])))
