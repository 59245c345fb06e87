"""Diagnose the demo model's fast binding in PyTorch (no export, no Rust run): is colour available to the LM,
and does the model copy the name of the demonstration whose colour matches the query's?

    export/.venv/bin/python -m export.demo_model.probe_binding [--weights W] [--prompts 96] [--shots 0,4,8]

Prints one JSON object:
* `colour_probe`: held-out accuracy of a ridge-regression linear probe for the scene's colour (5 classes,
  400 train / 200 test scenes) on the ViT's patch tokens (max-pooled, and all flattened), on the perceiver's
  latents and, as a floor, on the mean pixel colour. The ViT is at its random init (OpenFlamingo's forward
  encodes images under no_grad); a high accuracy says colour reaches the perceiver's output.
* `residual_colour`: the same kind of probe on the LM's hidden states in 4-shot binding prompts (at the
  demonstrations' name tokens, the `:` before them and the query's last token; at the input of every decoder
  block and after each gated cross-attention): does the image's colour stay in the residual stream where the
  binding lookup has to match it?
* `binding[k]`: k-shot prompts built like the benchmark's (`<image>Question:What is it called? Short
  answer:NAME<|endofchunk|>` demonstrations in the prompts/openflamingo_vqa.yaml format, then the query) with
  a colour -> nonce-name binding drawn anew for every prompt, scored on the greedy first token:
  `acc` (the right name), `acc_shown` (the right name, among prompts whose demonstrations show the query's
  colour: what copying by colour would get to 100), `name_rate` (a nonce name at all), `in_context` (a name
  that is in the prompt) and `confusion` (query colour -> colour bound to the predicted name).
  A model that copies by colour has acc_shown near 100; one that copies some name of the prompt has
  acc_shown near 1 / (distinct names in the prompt) and in_context near 100; one that has learned neither has
  in_context near the share of prompts that happen to hold its favourite name.
"""
from __future__ import annotations

import os

for _k, _v in (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("MKL_CBWR", "COMPATIBLE"),
               ("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
    os.environ.setdefault(_k, _v)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..build import build_model, param_groups  # noqa: E402
from ..config import load_config  # noqa: E402
from . import shapes  # noqa: E402
from .train_tiny import CONFIG, EOC, WEIGHTS  # noqa: E402

COLOURS = list(shapes.COLOURS)


def load(weights: Path, config: Path = CONFIG):
    """The model built by the factory from `config`, with the tensors of the safetensors file `weights`."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as work:
        built = build_model(load_config(config), Path(work))
    sd = load_file(str(weights))
    state = built.model.state_dict()
    missing = []
    with torch.no_grad():
        for names in param_groups(built.model):
            if names[0] not in sd:
                missing.append(names[0])
                continue
            for n in names:
                state[n].copy_(sd[names[0]])
    if missing:
        raise SystemExit(f"{weights}: {len(missing)} tensor(s) of the model missing, e.g. {missing[:3]}; "
                         f"not weights of the model {config} describes")
    built.model.eval()
    return built


def pixels(built, scene):
    from PIL import Image

    return built.image_processor(Image.fromarray(shapes.render(scene), "RGB"))


def _ridge_accuracy(feats: np.ndarray, y: np.ndarray, n_train: int) -> float:
    f = feats.astype(np.float64)
    mu, sd = f[:n_train].mean(0), f[:n_train].std(0) + 1e-6
    f = np.c_[(f - mu) / sd, np.ones(len(f))]
    onehot = np.eye(len(COLOURS))[y]
    w = np.linalg.solve(f[:n_train].T @ f[:n_train] + np.eye(f.shape[1]), f[:n_train].T @ onehot[:n_train])
    return float((np.argmax(f[n_train:] @ w, 1) == y[n_train:]).mean())


def colour_probe(built, n_train=400, n_test=200, seed=0) -> dict:
    rng = np.random.RandomState(seed)
    scenes = [shapes.sample_scene(rng) for _ in range(n_train + n_test)]
    x = torch.stack([pixels(built, s) for s in scenes])
    y = np.array([COLOURS.index(s["colour"]) for s in scenes])
    m = built.model
    with torch.no_grad():
        tokens = m.vision_encoder(x)[1]  # [N, patches, d], as Flamingo._encode_vision_x takes it
        latents = m.perceiver(tokens[:, None, None])  # [N, 1, latents, d]
    out = {
        "vit_tokens_maxpool": _ridge_accuracy(tokens.max(1).values.numpy(), y, n_train),
        "vit_tokens_flat": _ridge_accuracy(tokens.reshape(len(x), -1).numpy(), y, n_train),
        "perceiver_latents": _ridge_accuracy(latents.reshape(len(x), -1).numpy(), y, n_train),
        "mean_pixel": _ridge_accuracy(x.mean((2, 3)).numpy(), y, n_train),
    }
    return {k: round(100 * v, 1) for k, v in out.items()}


def binding_eval(built, shots: int, prompts: int, seed: int) -> dict:
    tok, m = built.tokenizer, built.model
    name_ids = {tok(n)["input_ids"][0]: n for n in shapes.NONCE}
    assert len(name_ids) == len(shapes.NONCE), "every nonce name must be a single token"
    rng = np.random.RandomState(seed)
    acc = shown = acc_shown = named = in_ctx = 0
    confusion = {q: {c: 0 for c in COLOURS + ["other"]} for q in COLOURS}
    for _ in range(prompts):
        names = [shapes.NONCE[i] for i in rng.permutation(len(shapes.NONCE))[:len(COLOURS)]]
        bind = dict(zip(COLOURS, names))
        scenes = [shapes.sample_scene(rng) for _ in range(shots + 1)]
        text = "".join(f"<image>Question:{shapes.BINDING_QUESTION} Short answer:{bind[s['colour']]}{EOC}\n"
                       for s in scenes[:-1])
        text += f"<image>Question:{shapes.BINDING_QUESTION} Short answer:"
        ids = torch.tensor([tok(text)["input_ids"]])
        vision = torch.stack([pixels(built, s) for s in scenes])[None, :, None]
        with torch.no_grad():
            pred = int(m(vision_x=vision, lang_x=ids).logits[0, -1].argmax())
        query = scenes[-1]["colour"]
        demo_names = {bind[s["colour"]] for s in scenes[:-1]}
        pname = name_ids.get(pred)
        ok = pname == bind[query]
        acc += ok
        named += pname is not None
        in_ctx += pname in demo_names
        if bind[query] in demo_names:
            shown += 1
            acc_shown += ok
        inv = {v: k for k, v in bind.items()}
        confusion[query][inv.get(pname, "other")] += 1
    pct = lambda a, b: round(100 * a / max(1, b), 1)  # noqa: E731
    return {"prompts": prompts, "acc": pct(acc, prompts), "shown": shown, "acc_shown": pct(acc_shown, shown),
            "name_rate": pct(named, prompts), "in_context": pct(in_ctx, prompts), "confusion": confusion}


def residual_colour_probe(built, prompts: int = 150, shots: int = 4, seed: int = 5) -> dict:
    """Is the image's colour in the LM's residual stream where the binding lookup needs it? 4-shot binding prompts;
    ridge-probe accuracy (%) for the colour of the image a token follows, at the demonstrations' name tokens,
    at the `:` before each name, and at the query's last token, at six depths: the input of every decoder block
    (`in{i}`, before its gated cross-attention) and the input of its LM layer (`x{i}`, after the cross-attention)."""
    tok, m = built.tokenizer, built.model
    name_ids = {tok(n)["input_ids"][0] for n in shapes.NONCE}
    layers = m.lang_encoder._get_decoder_layers()
    depth = [f"{k}{i}" for i in range(len(layers)) for k in ("in", "x")]
    rng = np.random.RandomState(seed)
    feats = {k: [[] for _ in depth] for k in ("name", "colon", "query")}
    ys = {k: [] for k in feats}
    for _ in range(prompts):
        bind = dict(zip(COLOURS, [shapes.NONCE[i] for i in rng.permutation(len(shapes.NONCE))[:len(COLOURS)]]))
        scenes = [shapes.sample_scene(rng) for _ in range(shots + 1)]
        text = "".join(f"<image>Question:{shapes.BINDING_QUESTION} Short answer:{bind[s['colour']]}{EOC}\n"
                       for s in scenes[:-1]) + f"<image>Question:{shapes.BINDING_QUESTION} Short answer:"
        ids = tok(text)["input_ids"]
        hs = []
        grab = lambda mod, args, kw: hs.append(args[0] if args else kw["hidden_states"])  # noqa: E731
        hooks = [h for layer in layers for h in (layer.register_forward_pre_hook(grab, with_kwargs=True),
                                                 layer.decoder_layer.register_forward_pre_hook(grab, with_kwargs=True))]
        try:
            with torch.no_grad():
                m(vision_x=torch.stack([pixels(built, s) for s in scenes])[None, :, None], lang_x=torch.tensor([ids]))
        finally:
            for h in hooks:
                h.remove()
        names = [j for j, t in enumerate(ids) if t in name_ids]
        where = {"name": (names, scenes[:-1]), "colon": ([j - 1 for j in names], scenes[:-1]),
                 "query": ([len(ids) - 1], scenes[-1:])}
        for kind, (pos, sc) in where.items():
            for d, h in enumerate(hs):
                feats[kind][d] += [h[0, p].numpy() for p in pos]
            ys[kind] += [COLOURS.index(s["colour"]) for s in sc]
    out = {}
    for kind in feats:
        y = np.array(ys[kind])
        n = int(len(y) * 2 / 3)
        out[kind] = {d: round(100 * _ridge_accuracy(np.array(f), y, n), 1) for d, f in zip(depth, feats[kind])}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=str(WEIGHTS))
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--prompts", type=int, default=96)
    ap.add_argument("--shots", default="0,4,8")
    ap.add_argument("--seed", type=int, default=77)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    built = load(Path(a.weights), Path(a.config))
    rep = {"weights": a.weights, "colour_probe": colour_probe(built), "residual_colour": residual_colour_probe(built),
           "binding": {k: binding_eval(built, k, a.prompts, a.seed + k) for k in map(int, a.shots.split(","))}}
    print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
