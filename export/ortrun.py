"""A small reference driver of an exported model directory under onnxruntime (numpy only).

Used by the exporter's parity check and by the tests. It follows CONTRACT.md exactly (it is the Python
twin of what the Rust runtime does) and mirrors Hugging Face 4.33 greedy and beam search as
OpenFlamingo's eval calls them (eos = pad = `<|endofchunk|>`, length penalty applied as in
`BeamHypotheses`, early_stopping=False).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import yaml


def log_softmax(x: np.ndarray, axis=-1) -> np.ndarray:
    x = x.astype(np.float32)
    m = x.max(axis=axis, keepdims=True)
    y = x - m
    return y - np.log(np.exp(y).sum(axis=axis, keepdims=True))


@dataclass
class Rows:
    """A left-padded batch as the runtime prepares it."""
    input_ids: np.ndarray        # [B,S] int64
    attention_mask: np.ndarray   # [B,S] int64
    media_index: np.ndarray      # [B,S] int64
    position_ids: np.ndarray     # [B,S] int64
    n_media: np.ndarray          # [B] images per row


def prepare_rows(input_ids: np.ndarray, attention_mask: np.ndarray, image_token: int) -> Rows:
    input_ids = np.asarray(input_ids, dtype=np.int64)
    attention_mask = np.asarray(attention_mask, dtype=np.int64)
    media_index = np.cumsum(input_ids == image_token, axis=1).astype(np.int64)
    position_ids = np.cumsum(attention_mask, axis=1) - 1
    position_ids[attention_mask == 0] = 1
    return Rows(input_ids, attention_mask, media_index, position_ids.astype(np.int64), media_index[:, -1].copy())


class OrtModel:
    def __init__(self, model_dir, threads: int = 0):
        import onnxruntime as ort

        self.dir = Path(model_dir)
        self.manifest = yaml.safe_load((self.dir / "model.yaml").read_text())
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        comps = self.manifest["components"]

        def sess(name):
            return ort.InferenceSession(str(self.dir / comps[name]["file"]), so, providers=["CPUExecutionProvider"])

        # contract 4 `dtype: fp16`: the graphs' float inputs are float16 except pixels (CONTRACT.md, Precision);
        # every float input is cast to what its graph declares and every output read back as float32
        self.dtype = self.manifest.get("dtype", "fp32")
        self.vision = sess("vision_encoder")
        self.perceiver = sess("perceiver")
        self.decoder = sess("lang_decoder")
        # contract 3: cross-attention keys/values computed once per media by xattn_kv.onnx, fed to the decoder
        xc = self.manifest.get("cross_attn_cache")
        self.xattn = sess("xattn_kv") if xc else None
        self.xattn_layers = list(xc["layers"]) if xc else []
        lang = self.manifest["lang"]
        self.n_layers = lang["n_layers"]
        self.n_heads = lang["n_heads"]
        self.head_dim = lang["head_dim"]
        self.uses_position_ids = lang["uses_position_ids"]
        self.dv = self.manifest["vision"]["width"]
        self.n_latents = self.manifest["perceiver"]["num_latents"]
        st = self.manifest["special_tokens"]
        self.image_token = st["image"]
        self.eoc = st["endofchunk"]

    # ---- components
    @staticmethod
    def run(session, names, feeds: dict) -> list:
        """session.run with each float feed cast to the element type its graph declares (float16 inputs of an
        fp16 graph; fp16 values round-trip through float32 exactly) and float outputs returned as float32."""
        types = {i.name: i.type for i in session.get_inputs()}
        cast = {}
        for k, v in feeds.items():
            v = np.asarray(v)
            if v.dtype.kind == "f":
                v = v.astype(np.float16 if types.get(k) == "tensor(float16)" else np.float32)
            cast[k] = v
        return [o.astype(np.float32) if o.dtype == np.float16 else o for o in session.run(names, cast)]

    def encode_images(self, pixels: np.ndarray):
        tokens, emb = self.run(self.vision, ["patch_tokens", "image_embedding"], {"pixels": pixels.astype(np.float32)})
        return tokens, emb

    def perceive(self, patch_tokens: np.ndarray) -> np.ndarray:
        return self.run(self.perceiver, ["latents"], {"patch_tokens": patch_tokens.astype(np.float32)})[0]

    def latents_for_rows(self, pixels_per_row: Sequence[np.ndarray]) -> np.ndarray:
        """pixels_per_row[b]: [n_b,3,H,W] (n_b may be 0) -> vision_latents [B,T,L,Dv] zero-padded."""
        T = max(1, max(len(p) for p in pixels_per_row))
        out = np.zeros((len(pixels_per_row), T, self.n_latents, self.dv), dtype=np.float32)
        for b, px in enumerate(pixels_per_row):
            if len(px) == 0:
                continue
            tokens, _ = self.encode_images(np.asarray(px))
            lat = self.perceive(tokens[:, None, None])  # media as B, T=1, F=1
            out[b, : len(px)] = lat[:, 0]
        return out

    def empty_past(self, batch: int):
        z = np.zeros((batch, self.n_heads, 0, self.head_dim), dtype=np.float32)
        return [z] * (2 * self.n_layers)

    def media_feeds(self, vision_latents) -> dict:
        """The decoder's media inputs for latents [B,T,L,Dv]: `vision_latents` itself (contract <= 2), or
        each gated layer's `xattn_kv_{i}` [B,T,L,W] from xattn_kv.onnx (contract 3). Computed once per prompt
        batch by greedy / beam_search and reused by every decode step."""
        if isinstance(vision_latents, dict):
            return vision_latents
        lat = np.asarray(vision_latents, dtype=np.float32)
        if self.xattn is None:
            return {"vision_latents": lat}
        names = [f"xattn_kv_{i}" for i in self.xattn_layers]
        return dict(zip(names, self.run(self.xattn, names, {"latents": lat})))

    def decode(self, input_ids, attention_mask, position_ids, media_index, vision_latents, keep, past):
        """One decoder call; `vision_latents` is the latents array or media_feeds() of it."""
        feeds = {
            "input_ids": np.asarray(input_ids, dtype=np.int64),
            "attention_mask": np.asarray(attention_mask, dtype=np.int64),
            "media_index": np.asarray(media_index, dtype=np.int64),
            **self.media_feeds(vision_latents),
            "logits_keep": np.array([keep], dtype=np.int64),
        }
        if self.uses_position_ids:
            feeds["position_ids"] = np.asarray(position_ids, dtype=np.int64)
        for i in range(self.n_layers):
            feeds[f"past_key_{i}"] = past[2 * i]
            feeds[f"past_value_{i}"] = past[2 * i + 1]
        out = self.run(self.decoder, None, feeds)
        return out[0], out[1:]

    # ---- generation (Hugging Face 4.33 semantics as OpenFlamingo's eval uses them)
    def _step_inputs(self, mask):
        pos = (np.cumsum(mask, axis=1) - 1)[:, -1:]
        return pos.astype(np.int64)

    def greedy(self, rows: Rows, latents: np.ndarray, max_new_tokens: int, eos: Optional[int] = None,
               pad: Optional[int] = None, record_logits: Optional[list] = None) -> np.ndarray:
        eos = self.eoc if eos is None else eos
        pad = eos if pad is None else pad
        B = rows.input_ids.shape[0]
        latents = self.media_feeds(latents)
        logits, past = self.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index,
                                   latents, 1, self.empty_past(B))
        mask = rows.attention_mask.copy()
        unfinished = np.ones(B, dtype=bool)
        out = []
        for step in range(max_new_tokens):
            last = logits[:, -1, :]
            if record_logits is not None:
                record_logits.append(last.copy())
            tok = last.argmax(-1).astype(np.int64)
            tok = np.where(unfinished, tok, pad)
            out.append(tok)
            unfinished &= tok != eos
            if not unfinished.any() or step == max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((B, 1), np.int64)], axis=1)
            logits, past = self.decode(tok[:, None], mask, self._step_inputs(mask), rows.n_media[:, None],
                                       latents, 1, past)
        return np.stack(out, axis=1)

    def beam_search(self, rows: Rows, latents: np.ndarray, max_new_tokens: int, num_beams: int = 3,
                    length_penalty: float = 0.0, eos: Optional[int] = None, pad: Optional[int] = None):
        """Returns (new tokens [B, n] padded with pad, best scores [B])."""
        eos = self.eoc if eos is None else eos
        pad = eos if pad is None else pad
        B, S0 = rows.input_ids.shape
        rep = lambda a: np.repeat(a, num_beams, axis=0)  # noqa: E731
        ids = rep(rows.input_ids)
        mask = rep(rows.attention_mask)
        n_media = rep(rows.n_media)
        lat = self.media_feeds(rep(latents))
        max_length = S0 + max_new_tokens
        hyps: List[list] = [[] for _ in range(B)]  # (score, tokens)
        worst = [1e9] * B
        done = [False] * B
        beam_scores = np.zeros((B, num_beams), dtype=np.float32)
        beam_scores[:, 1:] = -1e9
        beam_scores = beam_scores.reshape(-1)

        def add(b, hyp, sum_logprobs):
            score = sum_logprobs / (len(hyp) ** length_penalty)
            if len(hyps[b]) < num_beams or score > worst[b]:
                hyps[b].append((score, hyp))
                if len(hyps[b]) > num_beams:
                    order = sorted([(s, i) for i, (s, _) in enumerate(hyps[b])])
                    del hyps[b][order[0][1]]
                    worst[b] = order[1][0]
                else:
                    worst[b] = min(score, worst[b])

        def is_done(b, best_sum, cur_len):
            if len(hyps[b]) < num_beams:
                return False
            return worst[b] >= best_sum / cur_len ** length_penalty

        logits, past = self.decode(ids, mask, rep(rows.position_ids), rep(rows.media_index), lat, 1,
                                   self.empty_past(B * num_beams))
        cur_len = S0
        while True:
            scores = log_softmax(logits[:, -1, :]) + beam_scores[:, None]
            V = scores.shape[-1]
            flat = scores.reshape(B, num_beams * V)
            k = 2 * num_beams
            top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
            top_scores = np.take_along_axis(flat, top, axis=1)
            next_beam_scores = np.zeros((B, num_beams), np.float32)
            next_beam_tokens = np.zeros((B, num_beams), np.int64)
            next_beam_idx = np.zeros((B, num_beams), np.int64)
            for b in range(B):
                if done[b]:
                    next_beam_tokens[b, :] = pad
                    next_beam_idx[b, :] = 0  # as HF: a finished row's beams are never read again
                    continue
                j = 0
                for rank in range(k):
                    tok = int(top[b, rank] % V)
                    src = b * num_beams + int(top[b, rank] // V)
                    sc = float(top_scores[b, rank])
                    if tok == eos:
                        if rank >= num_beams:
                            continue
                        add(b, ids[src].copy(), sc)
                    else:
                        next_beam_scores[b, j] = sc
                        next_beam_tokens[b, j] = tok
                        next_beam_idx[b, j] = src
                        j += 1
                    if j == num_beams:
                        break
                done[b] = done[b] or is_done(b, float(top_scores[b].max()), cur_len + 1)
            beam_scores = next_beam_scores.reshape(-1)
            sel = next_beam_idx.reshape(-1)
            tokens = next_beam_tokens.reshape(-1)
            ids = np.concatenate([ids[sel], tokens[:, None]], axis=1)
            mask = np.concatenate([mask[sel], np.ones((B * num_beams, 1), np.int64)], axis=1)
            past = [p[sel] for p in past]
            cur_len += 1
            if all(done) or cur_len >= max_length:
                break
            logits, past = self.decode(tokens[:, None], mask, self._step_inputs(mask), n_media[:, None],
                                       lat, 1, past)
        # finalize
        for b in range(B):
            if done[b]:
                continue
            for i in range(num_beams):
                add(b, ids[b * num_beams + i].copy(), float(beam_scores[b * num_beams + i]))
        best, best_scores = [], []
        for b in range(B):
            s, h = sorted(hyps[b], key=lambda x: x[0])[-1]
            best.append(h)
            best_scores.append(s)
        lens = [len(h) for h in best]
        sent_max = min(max(lens) + 1, max_length)
        outm = np.full((B, sent_max), pad, dtype=np.int64)
        for b, h in enumerate(best):
            outm[b, : len(h)] = h
            if len(h) < sent_max:
                outm[b, len(h)] = eos
        return outm[:, S0:], np.array(best_scores, dtype=np.float32)
