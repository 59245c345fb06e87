"""Check a fixture model's goldens against its ONNX graphs under onnxruntime (used by the tests)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from export.ortrun import OrtModel, Rows, log_softmax

DT = {"float32": "<f4", "int64": "<i8"}


def load_goldens(model_dir):
    g = Path(model_dir) / "golden"
    doc = json.loads((g / "goldens.json").read_text())

    def tensor(name):
        t = doc["tensors"][name]
        return np.frombuffer((g / t["file"]).read_bytes(), dtype=DT[t["dtype"]]).reshape(t["shape"])

    return doc, tensor


def rows_of(case) -> Rows:
    ids = np.array(case["input_ids"], np.int64)
    return Rows(ids, np.array(case["attention_mask"], np.int64), np.array(case["media_index"], np.int64),
                np.array(case["position_ids"], np.int64), np.array(case["num_media"], np.int64))


def check_model(model_dir, tol=1e-4) -> dict:
    """Returns {case: max abs diff or True}; raises AssertionError on a mismatch."""
    m = OrtModel(model_dir)
    doc, T = load_goldens(model_dir)
    c = doc["cases"]
    res = {}

    def close(key, a, b):
        d = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
        assert d <= tol, f"{model_dir}: {key}: max abs diff {d} > {tol}"
        res[key] = max(res.get(key, 0.0), d)

    tokens, emb = m.encode_images(T(c["vision"]["pixels"]))
    close("vision.patch_tokens", tokens, T(c["vision"]["patch_tokens"]))
    close("vision.image_embedding", emb, T(c["vision"]["image_embedding"]))
    close("perceiver", m.perceive(T(c["perceiver"]["patch_tokens"])), T(c["perceiver"]["latents"]))
    if "perceiver_video" in c:
        v = c["perceiver_video"]
        close("perceiver_video", m.perceive(T(v["patch_tokens"])), T(v["latents"]))
        close("perceiver_video_2f", m.perceive(T(v["patch_tokens_2frames"])), T(v["latents_2frames"]))
    px = {k: T(c[k]["pixels"]) for k in ("preprocess_png", "preprocess_jpeg")}
    pix_by_name = {c["preprocess_png"]["image"]: px["preprocess_png"][0],
                   c["preprocess_jpeg"]["image"]: px["preprocess_jpeg"][0]}

    def pixels(names):
        # images without a stored pixel tensor are preprocessed with the model's own open_clip transform
        from PIL import Image
        import open_clip  # noqa: F401  (only to make sure the export env is used)
        out = []
        for n in names:
            if n in pix_by_name:
                out.append(pix_by_name[n])
            else:
                out.append(_preprocess(m.manifest["preprocess"], Path(doc["images_dir"]), n))
        return np.stack(out) if out else np.zeros((0,))

    def latents(case):
        return m.latents_for_rows([pixels(names) for names in case["images"]])

    p = c["prefill_2shot"]
    r = rows_of(p)
    logits, _ = m.decode(r.input_ids, r.attention_mask, r.position_ids, r.media_index, latents(p),
                         r.input_ids.shape[1], m.empty_past(1))
    close("prefill_2shot.logits", logits, T(p["logits"]))
    for key in ("generate_greedy", "generate_beam3"):
        g = c[key]
        r = rows_of(g)
        lat = latents(g)
        if g["num_beams"] == 1:
            rec = []
            out = m.greedy(r, lat, g["max_new_tokens"], record_logits=rec)
            close(f"{key}.first_step_logits", rec[0], T(g["first_step_logits"]))
        else:
            out, scores = m.beam_search(r, lat, g["max_new_tokens"], num_beams=g["num_beams"])
            close(f"{key}.sequence_scores", scores, g["expected_sequence_scores"])
        assert out.tolist() == g["expected_new_tokens"], f"{model_dir}: {key}: {out.tolist()}"
        res[key] = True
    ll = c["loglik"]
    r = rows_of(ll)
    lat = latents(ll)
    _, past = m.decode(r.input_ids, r.attention_mask, r.position_ids, r.media_index, lat, 1, m.empty_past(1))
    logits_prompt, _ = m.decode(r.input_ids, r.attention_mask, r.position_ids, r.media_index, lat, 1,
                                m.empty_past(1))
    S = r.input_ids.shape[1]
    for cand in ll["candidates"]:
        ids = np.array([cand["token_ids"]], np.int64)
        n = ids.shape[1]
        mask = np.ones((1, S + n), np.int64)
        pos = np.arange(S, S + n)[None]
        media = np.full((1, n), r.n_media[0], np.int64)
        lg, _ = m.decode(ids, mask, pos, media, lat, n, past)
        allg = np.concatenate([logits_prompt[:, -1:], lg[:, :-1]], axis=1)
        lp = log_softmax(allg)[0, np.arange(n), ids[0]]
        close("loglik.token_logprobs", lp, cand["token_logprobs"])
        close("loglik.sum", lp.sum(), cand["sum"])
    b = c["batch2_leftpad"]
    r = rows_of(b)
    lat = latents(b)
    logits, _ = m.decode(r.input_ids, r.attention_mask, r.position_ids, r.media_index, lat, 1, m.empty_past(2))
    close("batch2.last_logits", logits[:, -1], T(b["last_logits"]))
    out = m.greedy(r, lat, b["max_new_tokens"])
    assert out.tolist() == b["expected_greedy_new_tokens"], f"{model_dir}: batch greedy {out.tolist()}"
    out, scores = m.beam_search(r, lat, b["max_new_tokens"], num_beams=3)
    assert out.tolist() == b["expected_beam3_new_tokens"], f"{model_dir}: batch beam {out.tolist()}"
    close("batch2.beam3_scores", scores, b["expected_beam3_sequence_scores"])
    res["batch2.tokens"] = True
    return res


def _preprocess(pre, images_dir, name):
    """Preprocess like the manifest says, with torchvision/PIL (what open_clip uses)."""
    from PIL import Image
    from torchvision import transforms as Tv

    repo = Path(__file__).resolve().parents[2]
    interp = {"bicubic": Tv.InterpolationMode.BICUBIC, "bilinear": Tv.InterpolationMode.BILINEAR,
              "nearest": Tv.InterpolationMode.NEAREST, "lanczos": Tv.InterpolationMode.LANCZOS}
    tf = Tv.Compose([Tv.Resize(pre["image_size"], interpolation=interp[pre["interpolation"]]),
                     Tv.CenterCrop(pre["image_size"]), lambda im: im.convert("RGB"), Tv.ToTensor(),
                     Tv.Normalize(pre["mean"], pre["std"])])
    with Image.open(repo / images_dir / name) as im:
        return tf(im).numpy()
