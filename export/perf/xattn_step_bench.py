"""Decode-step CPU time of a contract-2 decoder (cross-attention keys/values recomputed from vision_latents) and
the contract-3 decoder of the same weights (cached xattn_kv inputs), interleaved, onnxruntime CPU.

    export/.venv/bin/python -m export.perf.xattn_step_bench V2_MODEL_DIR V3_MODEL_DIR THREADS REPS [B,...] [PK]
    export/.venv/bin/python -m export.perf.xattn_step_bench - V3_MODEL_DIR THREADS REPS [B,...] [PK]

One decode step (S=1) after a cache of PK positions (default 80), at each batch size B (default 1,8), one image per
row; with both models also checks that they give bit-identical logits. With `-` for the contract-2 model (a
model exported only once, e.g. the full-size one) the recompute side is measured by decomposition: the v3 step
plus the xattn_kv graph on the step's latents `[B, 1, L, Dv]`, which is exactly the projection a v2 decoder runs
in every step (`to_kv` of each gated layer; tests/xattn_cache.rs pins the two paths bit-identical). Thread CPU
time (time.thread_time, exact with THREADS=1: onnxruntime then runs in the calling thread), so that a loaded
machine distorts it less than wall time.
"""
import sys, time, numpy as np, onnxruntime as ort, yaml


def sess(p):
    so = ort.SessionOptions(); so.intra_op_num_threads = int(sys.argv[3]); so.inter_op_num_threads = 1; so.log_severity_level = 3
    return ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])


d2, d3 = sys.argv[1], sys.argv[2]
reps = int(sys.argv[4])
batches = [int(b) for b in sys.argv[5].split(",")] if len(sys.argv) > 5 else [1, 8]
Pk = int(sys.argv[6]) if len(sys.argv) > 6 else 80
m = yaml.safe_load(open(f"{d3}/model.yaml"))
L, H, Dh, Dv, Lat = m["lang"]["n_layers"], m["lang"]["n_heads"], m["lang"]["head_dim"], m["vision"]["width"], m["perceiver"]["num_latents"]
xl, W = m["cross_attn_cache"]["layers"], m["cross_attn_cache"]["width"]
s3, kvg = sess(f"{d3}/lang_decoder.onnx"), sess(f"{d3}/xattn_kv.onnx")
s2 = sess(f"{d2}/lang_decoder.onnx") if d2 != "-" else None
names3 = {i.name for i in s3.get_inputs()}
rng = np.random.default_rng(0)


def cpu_ms(f):
    t = time.thread_time(); f(); return (time.thread_time() - t) * 1e3


for B in batches:
    lat = rng.standard_normal((B, 1, Lat, Dv)).astype(np.float32)
    base = {"input_ids": np.full((B, 1), 5, np.int64), "attention_mask": np.ones((B, Pk + 1), np.int64),
            "media_index": np.ones((B, 1), np.int64), "logits_keep": np.array([1], np.int64)}
    if "position_ids" in names3:
        base["position_ids"] = np.full((B, 1), Pk, np.int64)
    for i in range(L):
        base[f"past_key_{i}"] = base[f"past_value_{i}"] = rng.standard_normal((B, H, Pk, Dh)).astype(np.float32)
    kv = kvg.run(None, {"latents": lat})
    f3 = dict(base, **{f"xattn_kv_{i}": k for i, k in zip(xl, kv)})
    if s2 is not None:
        f2 = dict(base, vision_latents=lat)
        o2, o3 = s2.run(["logits"], f2)[0], s3.run(["logits"], f3)[0]
        assert (o2 == o3).all(), "logits differ"
    t2, t3 = [], []
    for _ in range(reps):
        if s2 is not None:
            t2.append(cpu_ms(lambda: s2.run(["logits"], f2)))
        else:  # the v2 step = the v3 step + the per-step projection it no longer does
            t2.append(cpu_ms(lambda: kvg.run(None, {"latents": lat})) + cpu_ms(lambda: s3.run(["logits"], f3)))
        t3.append(cpu_ms(lambda: s3.run(["logits"], f3)))
    t2, t3 = np.array(t2), np.array(t3)
    how = "recompute (v2)" if s2 is not None else "recompute (v3 step + xattn_kv of the step's latents)"
    tail = "; logits bit-identical" if s2 is not None else ""
    print(f"B={B} Pk={Pk}: {how} CPU min {t2.min():.2f} median {np.median(t2):.2f} ms; cached (v3) min {t3.min():.2f} "
          f"median {np.median(t3):.2f} ms{tail}", flush=True)
