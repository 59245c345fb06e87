"""Train the tiny demo Flamingo ("shapes-flamingo") on CPU, deterministically.

    export/demo_model/train.sh                 # the documented full retrain (tokenizer + weights), then export
    export/.venv/bin/python -m export.demo_model.train_tiny --steps 4 --out /tmp/w.safetensors   # smoke test

The model is built by open_flamingo's own factory from export/demo_model/config.yaml (export/build.py, as the
exporter builds it): an open_clip ViT (32 px, 8 px patches), OpenFlamingo's PerceiverResampler and a GPT-NeoX LM
extended with FlamingoLMMixin and GatedCrossAttentionBlocks, from random init. The loss goes through
OpenFlamingo's own Flamingo.forward, which encodes images under torch.no_grad() (OpenFlamingo freezes its CLIP
tower): the ViT keeps its random initialisation and the perceiver, cross-attention and LM are trained.

Training data is an endless seeded stream from export/demo_model/shapes.py (its own seed, disjoint from the
benchmark splits in data/shapes/): every sequence interleaves 1-9 image-text chunks of one task in exactly
the prompt formats of prompts/openflamingo_{caption,vqa,hateful_memes}.yaml --
`<image>Output:{caption}<|endofchunk|>`, `<image>Question:{q} Short answer:{a}<|endofchunk|>`,
`<image>is an image with: '{text}' written on it. Is it hateful? Answer:{label}<|endofchunk|>` -- joined
with the templates' separators, sometimes after two text-only demonstrations (OpenFlamingo's zero-shot
prompt). The loss is on each chunk's answer and its `<|endofchunk|>`; in the fast-binding task (nonce names
bound anew to colours in every sequence) only on answers whose colour was already shown earlier in the
sequence, i.e. the ones the demonstrations determine. Task shares (TASK_P, `--task-p`): caption 0.1, VQA 0.1,
HatefulMemes 0.05, binding 0.5, copy 0.25.

Two training aids get the fast binding off its plateau (README "Trained demo model" has the measurements):
* a copy task (`<image>Output:{names}<|endofchunk|>` with one list of 2-6 nonce names repeated in every chunk,
  loss from the second chunk on): dense in-context copying, so the LM forms a copy circuit early;
* an auxiliary colour loss (`--aux-colour`, weight 0.3): a linear head per decoder layer (training only; not
  part of the exported model) classifies, at every text token, the colour of the image that token follows
  (the one it cross-attends to). It keeps the image's colour in the residual stream of every position, so
  that the query's and the demonstrations' positions carry the key the binding lookup matches on. Without
  it the model copies a name of the prompt but not the one whose image has the query's colour.

Other options (off by default): `--binding-share B` (the binding share, caption/VQA/HatefulMemes scaled to the
rest), `--gate-init G` (initial tanh-gate value, default 0.1), `--curriculum C` (binding sequences hold at most
2 colours, so 2 names, at first and all 5 after a fraction C of the steps), `--config` (another model config),
`--train-vision`. `python -m export.demo_model.probe_binding --weights W` measures whether a weights file copies
names by colour.

Determinism: one thread, MKL_CBWR=COMPATIBLE, seeded torch and numpy, torch deterministic algorithms; the
output safetensors file is byte-identical for the same arguments on the same machine type.
"""
from __future__ import annotations

import os

for _k, _v in (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("MKL_CBWR", "COMPATIBLE"),
               ("TOKENIZERS_PARALLELISM", "false"), ("RAYON_NUM_THREADS", "1"), ("HF_HUB_OFFLINE", "1"),
               ("TRANSFORMERS_OFFLINE", "1")):
    os.environ.setdefault(_k, _v)

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..build import build_model, canonical_state_dict  # noqa: E402
from ..config import load_config  # noqa: E402
from . import shapes  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.yaml"
WEIGHTS = HERE / "weights.safetensors"
TRAIN_SEED = 5005  # data stream; the benchmark splits use shapes.SEED_DEMOS / SEED_TEST

EOC = "<|endofchunk|>"
TEMPLATES = {  # (demo format, separator): prompts/openflamingo_*.yaml
    "caption": ("<image>Output:{target}" + EOC, "\n"),
    "vqa": ("<image>Question:{question} Short answer:{target}" + EOC, "\n"),
    "meme": ("<image>is an image with: '{text}' written on it. Is it hateful? Answer:{target}" + EOC, ""),
}
TASKS = ["caption", "vqa", "meme", "binding", "copy"]
TASK_P = [0.1, 0.1, 0.05, 0.5, 0.25]  # --task-p; --binding-share B: binding B, caption/vqa/meme scaled to the rest
AUX_COLOUR = 0.3  # --aux-colour: weight of the auxiliary colour loss on the LM's hidden states (0: off)
GATE_INIT = 0.1  # --gate-init: initial value of every GatedCrossAttentionBlock tanh gate (OpenFlamingo: 0)
CURRICULUM = 0.0  # --curriculum C: binding sequences hold 2 colours at first, all 5 after C of the steps (0: off)
BINDING_WEIGHT = 1.0  # loss weight of the binding answers (the in-context skill the demo measures)


def make_chunk(task, scene, rng, binding):
    """(fields, colour) of one demonstration."""
    if task == "caption":
        return {"target": shapes.captions(scene)[0]}
    if task == "vqa":
        items = shapes.vqa_items(scene, rng)
        q, a, _, _ = items[rng.randint(len(items))]
        return {"question": q, "target": a}
    if task == "meme":
        text, label = shapes.meme_item(scene, rng)
        return {"text": text, "target": ["no", "yes"][label]}
    if task == "copy":
        return {"target": binding}
    return {"question": shapes.BINDING_QUESTION, "target": binding[scene["colour"]]}


def make_sequence(rng, n_images, max_colours=len(shapes.COLOURS), task_p=None):
    """One training sequence: (text, [scenes], [(start, end, loss weight)] answer character spans).
    max_colours: at most this many colours (so names) in a binding sequence (the curriculum's stage)."""
    task = TASKS[rng.choice(len(TASKS), p=TASK_P if task_p is None else task_p)]
    fmt, sep = TEMPLATES[{"binding": "vqa", "copy": "caption"}.get(task, task)]
    binding, colours = None, None
    if task == "copy":  # one list of nonce names, repeated in every chunk: dense in-context copying
        binding = " ".join(shapes.NONCE[i] for i in rng.permutation(len(shapes.NONCE))[:rng.randint(2, 7)])
    if task == "binding":
        names = [shapes.NONCE[i] for i in rng.permutation(len(shapes.NONCE))[:len(shapes.COLOURS)]]
        binding = dict(zip(shapes.COLOURS, names))
        colours = [list(shapes.COLOURS)[i] for i in rng.permutation(len(shapes.COLOURS))[:rng.randint(1, max_colours + 1)]]
    text, spans, scenes = "", [], []
    if task not in ("binding", "copy") and rng.rand() < 0.2:  # OpenFlamingo's zero-shot prompt: two text-only demos first
        for _ in range(2):
            f = make_chunk(task, shapes.sample_scene(rng), rng, None)
            text += fmt.replace("<image>", "").format(**f) + sep
    seen = set()
    for i in range(n_images):
        s = shapes.sample_scene(rng)
        if colours is not None:
            s["colour"] = colours[rng.randint(len(colours))]
        f = make_chunk(task, s, rng, binding)
        chunk = fmt.format(**f)
        start = len(text) + chunk.rindex(f["target"] + EOC)
        learnable = (task != "binding" or s["colour"] in seen) and not (task == "copy" and i == 0)
        seen.add(s["colour"])
        if learnable:
            spans.append((start, len(text) + len(chunk), BINDING_WEIGHT if task == "binding" else 1.0))
        text += chunk
        scenes.append(s)
        if i + 1 < n_images:
            text += sep
    return text, scenes, spans


def curriculum_colours(step, steps, curriculum=None):
    """Fast-binding curriculum: at most 2 colours (names) per binding sequence at first, one more every
    curriculum/3 of the run, all 5 from `curriculum` (a fraction of the steps) on; 0 = off (always 5).
    Fewer names per sequence make the copy-by-colour easier to find."""
    c = CURRICULUM if curriculum is None else curriculum
    if steps <= 0 or c <= 0:
        return len(shapes.COLOURS)
    return min(len(shapes.COLOURS), 2 + int(3 * step / (c * steps)))


class Batcher:
    def __init__(self, built, seed, batch_size, max_images, steps=0, curriculum=None, task_p=None):
        self.calls, self.steps, self.curriculum, self.task_p = 0, steps, curriculum, task_p
        self.tok = built.tokenizer
        self.proc = built.image_processor
        self.rng = np.random.RandomState(seed)
        self.bs = batch_size
        self.max_images = max_images
        self.pad = self.tok.convert_tokens_to_ids("<PAD>")

    def pixels(self, scene):
        from PIL import Image

        return self.proc(Image.fromarray(shapes.render(scene), "RGB"))

    def next(self):
        n = int(self.rng.randint(1, self.max_images + 1))
        k = curriculum_colours(self.calls, self.steps, self.curriculum)
        self.calls += 1
        rows = [make_sequence(self.rng, n, k, self.task_p) for _ in range(self.bs)]
        enc = [self.tok(t, return_offsets_mapping=True) for t, _, _ in rows]
        L = max(len(e["input_ids"]) for e in enc)
        ids = torch.full((self.bs, L), self.pad, dtype=torch.long)
        mask = torch.zeros((self.bs, L), dtype=torch.long)
        weight = torch.zeros((self.bs, L))
        for b, (e, (_, _, spans)) in enumerate(zip(enc, rows)):
            k = len(e["input_ids"])
            ids[b, :k] = torch.tensor(e["input_ids"])
            mask[b, :k] = 1
            for j, (s, t) in enumerate(e["offset_mapping"]):
                for a, z, wt in spans:
                    if a <= s and t <= z:
                        weight[b, j] = wt
        vision = torch.stack([torch.stack([self.pixels(s) for s in sc]) for _, sc, _ in rows])  # [B, n, C, H, W]
        self.colours = torch.tensor([[list(shapes.COLOURS).index(x["colour"]) for x in sc] for _, sc, _ in rows])
        return vision.unsqueeze(2), ids, mask, weight


def _encode_vision_x_trainable(self, vision_x):
    """Flamingo._encode_vision_x (open_flamingo 2.0.1) without its torch.no_grad() around the vision tower, so
    that the (randomly initialised) ViT is trained too. Same rearranges, perceiver and conditioning calls."""
    from einops import rearrange

    b, T, F = vision_x.shape[:3]
    vision_x = rearrange(vision_x, "b T F c h w -> (b T F) c h w")
    vision_x = self.vision_encoder(vision_x)[1]
    vision_x = rearrange(vision_x, "(b T F) v d -> b T F v d", b=b, T=T, F=F)
    vision_x = self.perceiver(vision_x)
    for layer in self.lang_encoder._get_decoder_layers():
        layer.condition_vis_x(vision_x)


def train(steps: int, out: Path, seed: int = TRAIN_SEED, batch_size: int = 8, max_images: int = 9,
          lr: float = 3e-3, threads: int = 1, log=print, train_vision: bool = False, binding_share=None,
          gate_init=None, curriculum=None, config=None, task_p=None, aux_colour=AUX_COLOUR) -> dict:
    prev = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(steps, out, seed, batch_size, max_images, lr, log, train_vision,
                      task_probabilities(binding_share, task_p), GATE_INIT if gate_init is None else gate_init, curriculum,
                      Path(config) if config else CONFIG, aux_colour)
    finally:
        torch.set_num_threads(prev[0])
        torch.use_deterministic_algorithms(prev[1])


def task_probabilities(binding_share=None, task_p=None) -> list:
    """TASK_P, or with the binding task's share set to `binding_share` and the other tasks' scaled to the rest."""
    if task_p is not None and binding_share is not None:
        raise ValueError("give --task-p or --binding-share, not both")
    if task_p is not None:
        try:
            p = [float(x) for x in task_p.split(",")]
        except ValueError:
            p = []
        if len(p) != len(TASKS) or min(p) < 0 or abs(sum(p) - 1.0) > 1e-9:
            raise ValueError(f"--task-p {task_p!r}: {len(TASKS)} non-negative shares summing to 1 ({', '.join(TASKS)})")
        return p
    if binding_share is None:
        return list(TASK_P)
    if not 0.0 <= binding_share <= 1.0 - TASK_P[4]:
        raise ValueError(f"binding share {binding_share} is not in [0, {1.0 - TASK_P[4]:g}] (the copy task keeps {TASK_P[4]:g})")
    rest = sum(TASK_P[:3])
    return [p * (1.0 - TASK_P[4] - binding_share) / rest for p in TASK_P[:3]] + [binding_share, TASK_P[4]]


def _train(steps, out, seed, batch_size, max_images, lr, log, train_vision, task_p, gate_init, curriculum, config,
           aux_colour=AUX_COLOUR):
    cfg = load_config(config)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as work:
        built = build_model(cfg, Path(work))
    model = built.model
    from open_flamingo.src.helpers import GatedCrossAttentionBlock

    torch.manual_seed(cfg["seed"] + 10)
    with torch.no_grad():  # open the tanh gates a little so the cross-attention gets gradient from step 0
        for m in model.modules():
            if isinstance(m, GatedCrossAttentionBlock):
                m.attn_gate.fill_(gate_init)
                m.ff_gate.fill_(gate_init)
    model.requires_grad_(True)
    model.train()
    if train_vision:
        import types

        model._encode_vision_x = types.MethodType(_encode_vision_x_trainable, model)
    if aux_colour < 0:
        raise ValueError(f"--aux-colour {aux_colour}: a loss weight must be >= 0 (0: off)")
    aux_heads, captured = None, []
    if aux_colour > 0:  # auxiliary colour classification on the LM's hidden states (training only, not exported)
        d = cfg["lang"]["config"]["hidden_size"]
        layers = model.lang_encoder._get_decoder_layers()
        aux_heads = torch.nn.ModuleList([torch.nn.Linear(d, len(shapes.COLOURS)) for _ in layers])
        for layer in layers:
            layer.register_forward_hook(lambda mod, args, out: captured.append(out[0] if isinstance(out, tuple) else out))
    params = [p for p in model.parameters() if p.requires_grad] + ([] if aux_heads is None else list(aux_heads.parameters()))
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-8)
    warm = min(100, max(1, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps))))))
    batcher = Batcher(built, seed, batch_size, max_images, steps, curriculum, task_p)
    history = []
    ema = None
    for step in range(steps):
        vision, ids, mask, weight = batcher.next()
        logits = model(vision_x=vision, lang_x=ids, attention_mask=mask).logits
        lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        nll = -lp.gather(-1, ids[:, 1:, None])[..., 0]
        w = weight[:, 1:]
        loss = (nll * w).sum() / w.sum().clamp(min=1.0)
        if aux_heads is not None:
            media = ids == batcher.tok.convert_tokens_to_ids("<image>")
            chunk = media.long().cumsum(1) - 1  # index of the image each token follows (-1: none)
            ok = (chunk >= 0) & (mask > 0)
            target = batcher.colours.gather(1, chunk.clamp(min=0))
            aux = sum(torch.nn.functional.cross_entropy(head(h)[ok], target[ok]) for head, h in zip(aux_heads, captured))
            loss = loss + aux_colour * aux / len(aux_heads)
        captured.clear()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            history.append({"step": step, "loss": round(loss.item(), 4), "ema": round(ema, 4),
                            "seconds": round(time.time() - t0, 1)})
            log(json.dumps(history[-1]))
    model.eval()
    model.requires_grad_(False)
    sd = canonical_state_dict(model)
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(sd, str(tmp))  # no metadata: safetensors writes a metadata map in random order
    os.replace(tmp, out)
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    return {"steps": steps, "seconds": round(time.time() - t0, 1), "final_loss_ema": ema, "sha256": sha,
            "parameters": sum(v.numel() for v in sd.values()), "bytes": out.stat().st_size, "history": history}


def main(argv=None):
    ap = argparse.ArgumentParser(description="train the tiny demo Flamingo (see module doc)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=TRAIN_SEED)
    ap.add_argument("--max-images", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-vision", action="store_true",
                    help="also train the ViT (OpenFlamingo's forward keeps it frozen under no_grad)")
    ap.add_argument("--binding-share", type=float, help=f"share of fast-binding sequences (default {TASK_P[3]})")
    ap.add_argument("--gate-init", type=float, default=GATE_INIT, help="initial tanh-gate value")
    ap.add_argument("--curriculum", type=float, default=CURRICULUM,
                    help="binding curriculum length, a fraction of the steps (2 -> 5 colours); 0: off")
    ap.add_argument("--task-p", help=f"task shares, comma-separated, in the order {','.join(TASKS)}")
    ap.add_argument("--aux-colour", type=float, default=AUX_COLOUR,
                    help="weight of an auxiliary colour-classification loss on the LM's hidden states (0: off)")
    ap.add_argument("--config", default=str(CONFIG), help="model config (default: the demo model's)")
    ap.add_argument("--out", default=str(WEIGHTS))
    ap.add_argument("--log", help="write the training report (json) here")
    a = ap.parse_args(argv)
    try:
        task_probabilities(a.binding_share, a.task_p)  # option errors before the model is built
    except ValueError as e:
        ap.error(str(e))
    if a.aux_colour < 0:
        ap.error(f"--aux-colour {a.aux_colour}: a loss weight must be >= 0 (0: off)")
    rep = train(a.steps, Path(a.out), seed=a.seed, batch_size=a.batch_size, max_images=a.max_images, lr=a.lr,
                train_vision=a.train_vision, threads=a.threads, binding_share=a.binding_share, gate_init=a.gate_init,
                curriculum=a.curriculum, config=a.config, task_p=a.task_p, aux_colour=a.aux_colour,
                log=lambda s: print(s, file=sys.stderr, flush=True))
    if a.log:
        Path(a.log).write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps({k: v for k, v in rep.items() if k != "history"}))


if __name__ == "__main__":
    main()
