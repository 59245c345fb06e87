"""Decode-step CPU time of a contract-2 decoder (cross-attention keys/values recomputed from vision_latents) and
the contract-3 decoder of the same weights (cached xattn_kv inputs), interleaved, onnxruntime CPU.

    export/.venv/bin/python -m export.perf.xattn_step_bench V2_MODEL_DIR V3_MODEL_DIR THREADS REPS

One decode step (S=1) after a cache of 80 positions, B = 1 and 8, one image per row; also checks that both give
bit-identical logits. Thread CPU time (time.thread_time, exact with THREADS=1: onnxruntime then runs in the
calling thread), so that a loaded machine distorts it less than wall time.
"""
import sys, time, numpy as np, onnxruntime as ort, yaml
def sess(p):
    so = ort.SessionOptions(); so.intra_op_num_threads = int(sys.argv[3]); so.inter_op_num_threads = 1; so.log_severity_level = 3
    return ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
d2, d3 = sys.argv[1], sys.argv[2]
m = yaml.safe_load(open(f"{d3}/model.yaml"))
L, H, Dh, Dv, Lat = m["lang"]["n_layers"], m["lang"]["n_heads"], m["lang"]["head_dim"], m["vision"]["width"], m["perceiver"]["num_latents"]
xl, W = m["cross_attn_cache"]["layers"], m["cross_attn_cache"]["width"]
s2, s3, kvg = sess(f"{d2}/lang_decoder.onnx"), sess(f"{d3}/lang_decoder.onnx"), sess(f"{d3}/xattn_kv.onnx")
rng = np.random.default_rng(0)
for B in (1, 8):
    Pk = 80
    lat = rng.standard_normal((B, 1, Lat, Dv)).astype(np.float32)
    base = {"input_ids": np.full((B, 1), 5, np.int64), "attention_mask": np.ones((B, Pk + 1), np.int64),
            "position_ids": np.full((B, 1), Pk, np.int64), "media_index": np.ones((B, 1), np.int64),
            "logits_keep": np.array([1], np.int64)}
    for i in range(L):
        base[f"past_key_{i}"] = base[f"past_value_{i}"] = rng.standard_normal((B, H, Pk, Dh)).astype(np.float32)
    f2 = dict(base, vision_latents=lat)
    kv = kvg.run(None, {"latents": lat})
    f3 = dict(base, **{f"xattn_kv_{i}": k for i, k in zip(xl, kv)})
    o2, o3 = s2.run(["logits"], f2)[0], s3.run(["logits"], f3)[0]
    assert (o2 == o3).all(), "logits differ"
    t2, t3 = [], []
    for _ in range(int(sys.argv[4])):
        t = time.thread_time(); s2.run(["logits"], f2); t2.append(time.thread_time() - t)
        t = time.thread_time(); s3.run(["logits"], f3); t3.append(time.thread_time() - t)
    t2, t3 = np.array(t2) * 1e3, np.array(t3) * 1e3
    print(f"B={B} Pk={Pk}: recompute (v2) CPU min {t2.min():.2f} median {np.median(t2):.2f} ms; cached (v3) min {t3.min():.2f} median {np.median(t3):.2f} ms; logits bit-identical")
