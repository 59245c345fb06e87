"""PyTorch reference outputs of an IDEFICS model folder, computed by whatever transformers this process imports.

A standalone script (no import of the `export` package), so that it can run with another transformers on
sys.path than the exporter's pinned 4.33.3:

    python export/families/idefics_oracle.py MODEL_FOLDER REQUESTS.npz OUT.npz

The exporter runs it twice over:
* in a child process with transformers 4.36.2 (and the tokenizers it needs) first on PYTHONPATH
  (export/families/idefics.py: ensure_fixed_transformers): the reference of the *fixed* cross-attention
  (transformers >= 4.36.0: a token that attends to no image gets no cross-attention output);
* in-process with the venv's transformers 4.33.3 (function `run` below): the reference of the
  `transformers-4.33` compatibility mode (such a token attends to a uniform average of every image).

REQUESTS.npz holds, per request k: `k.input_ids`, `k.attention_mask`, `k.image_attention_mask`,
`k.pixel_values` (what IdeficsProcessor returns) and `k.op` ("logits" | "generate"), plus for generate
`k.num_beams`, `k.max_new_tokens`, `k.eos`, `k.pad`. OUT.npz holds `k.logits` [B,S,V], or `k.sequences`,
`k.scores` [steps,B*beams,V] (greedy) / `k.sequences_scores` (beam search), and `transformers_version`.
"""
import sys

import numpy as np
import torch


def _requests(npz):
    keys = sorted({k.split(".", 1)[0] for k in npz.files})
    for k in keys:
        yield k, {name.split(".", 1)[1]: npz[name] for name in npz.files if name.split(".", 1)[0] == k}


def run(model, reqs: dict) -> dict:
    """reqs: {key: {field: array}} -> {key.output: array}."""
    import transformers

    out = {"transformers_version": np.array(transformers.__version__)}
    for k, r in sorted(reqs.items()):
        ids = torch.from_numpy(np.asarray(r["input_ids"], dtype=np.int64))
        mask = torch.from_numpy(np.asarray(r["attention_mask"], dtype=np.int64))
        iam = torch.from_numpy(np.asarray(r["image_attention_mask"], dtype=np.int64))
        px = torch.from_numpy(np.asarray(r["pixel_values"], dtype=np.float32))
        op = str(r["op"])
        with torch.no_grad():
            if op == "logits":
                res = model(input_ids=ids, attention_mask=mask, pixel_values=px, image_attention_mask=iam)
                out[f"{k}.logits"] = res.logits.float().numpy()
            elif op == "generate":
                nb = int(r["num_beams"])
                res = model.generate(input_ids=ids, attention_mask=mask, pixel_values=px, image_attention_mask=iam,
                                     num_beams=nb, max_new_tokens=int(r["max_new_tokens"]), min_new_tokens=0,
                                     length_penalty=0.0, do_sample=False, eos_token_id=int(r["eos"]),
                                     pad_token_id=int(r["pad"]), return_dict_in_generate=True, output_scores=True)
                out[f"{k}.sequences"] = res.sequences.numpy()
                if nb == 1:
                    out[f"{k}.scores"] = torch.stack(list(res.scores)).float().numpy()
                else:
                    out[f"{k}.sequences_scores"] = res.sequences_scores.float().numpy()
            else:
                raise SystemExit(f"unknown op {op!r} in request {k}")
    return out


def main(argv):
    folder, req_path, out_path = argv
    from transformers import IdeficsForVisionText2Text

    torch.set_num_threads(1)
    model = IdeficsForVisionText2Text.from_pretrained(folder, torch_dtype=torch.float32).eval()
    with np.load(req_path, allow_pickle=False) as npz:
        reqs = dict(_requests(npz))
    np.savez(out_path, **run(model, reqs))


if __name__ == "__main__":
    main(sys.argv[1:])
