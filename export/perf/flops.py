"""The "physical limit" of a run: the matmul FLOPs it cannot avoid, divided by the machine's measured matmul
throughput.

    python -m export.perf.flops --bench [--threads N]            # measured fp32 GFLOP/s (onnxruntime MatMul)
    python -m export.perf.flops --model DIR --run RUN_DIR [--gflops X]   # the limit of one flamingo-eval run

FLOPs (2 per multiply-add; parameter counts P read off the graphs' initializers, dims off model.yaml):

* vision, per DISTINCT image encoded (`images_encoded` in summary.json): 2 * P_vision * (num_patches + 1)
  + attention 4 * L_v * (num_patches + 1)^2 * width, with L_v = P_vision / (12 * width^2) (ViT blocks: 12 W^2);
* perceiver, per distinct image: 2 * P_perceiver * num_latents (latent-side matmuls) + the keys/values of the
  patch tokens, 4 * depth * num_patches * width * heads * dim_head;
* decoder, per prompt token (prefill, each prompt once) and per generated token of every beam:
  2 * (P_decoder - embedding rows * hidden) (every weight but the input-embedding lookup, head included)
  + self-attention 4 * n_layers * context * hidden; the keys/values of the media latents in the cross-attention
  layers counted once per image (what a per-prompt cache would need: 4 * n_xattn * num_latents * width * inner,
  inner = heads * dim_head of the cross-attention, estimated as 512 when the graph does not say).

The limit is that sum over the run divided by the measured GFLOP/s: the time a run would take if every matmul
ran at the speed of one large fp32 MatMul on the same cores, with nothing else. Memory bandwidth (a decode step
reads every decoder weight once) is not in it, so decode-heavy rows sit well above it on a CPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def matmul_gflops(threads: int = 0, n: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of an n x n x n MatMul under onnxruntime's CPU provider (the kernels the runtime uses)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", [a, b], [c])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    s.run(None, {"a": x, "b": y})
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        s.run(None, {"a": x, "b": y})
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def graph_params(path: Path) -> dict:
    """{initializer name: element count} of an ONNX graph, without reading external data."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {t.name: int(np.prod(t.dims)) if len(t.dims) else 1 for t in m.graph.initializer}


def model_costs(model_dir: Path) -> dict:
    import yaml

    model_dir = Path(model_dir)
    man = yaml.safe_load((model_dir / "model.yaml").read_text())
    comp = man["components"]
    P = {k: sum(graph_params(model_dir / comp[k]["file"]).values())
         for k in ("vision_encoder", "perceiver", "lang_decoder")}
    v, pc, lang = man["vision"], man["perceiver"], man["lang"]
    T, W = v["num_patches"] + 1, v["width"]
    L_v = P["vision_encoder"] / (12 * W * W)
    vision = 2 * P["vision_encoder"] * T + 4 * L_v * T * T * W
    inner_p = pc["heads"] * pc["dim_head"]
    perceiver = 2 * P["perceiver"] * pc["num_latents"] + 4 * pc["depth"] * v["num_patches"] * W * inner_p
    H, L = lang["hidden"], lang["n_layers"]
    emb = lang["vocab_size"] * H
    per_token = 2 * (P["lang_decoder"] - emb)
    n_x = L // lang["cross_attn_every_n_layers"]
    xattn_kv_per_image = 4 * n_x * pc["num_latents"] * W * 512
    return {"params": P, "vision_per_image": vision, "perceiver_per_image": perceiver,
            "decoder_per_token": per_token, "attn_per_token_per_ctx": 4 * L * H,
            "xattn_kv_per_image": xattn_kv_per_image}


def run_flops(model_dir: Path, run_dir: Path) -> dict:
    """FLOPs of one flamingo-eval run directory (summary.json, samples.jsonl, run.json's benchmark)."""
    import yaml
    from tokenizers import Tokenizer

    c = model_costs(model_dir)
    run_dir = Path(run_dir)
    summ = json.loads((run_dir / "summary.json").read_text())
    prov = summ["provenance"]
    images = prov["images_encoded"]
    bench = yaml.safe_load(Path(prov["benchmark_file"]).read_text()) if Path(prov["benchmark_file"]).is_file() else {}
    beams = int(((bench.get("generation") or {}).get("num_beams")) or 1)
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    prefill = decode = 0.0
    n = n_prompt = n_gen = 0
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        r = json.loads(line)
        p = len(tok.encode(r["prompt"], add_special_tokens=False).ids)
        g = len(r.get("tokens") or [])
        n += 1
        n_prompt += p
        n_gen += g
        prefill += p * c["decoder_per_token"] + c["attn_per_token_per_ctx"] * p * (p + 1) / 2
        decode += beams * (g * c["decoder_per_token"] + c["attn_per_token_per_ctx"] * (g * p + g * (g + 1) / 2))
    vision = images * (c["vision_per_image"] + c["perceiver_per_image"] + c["xattn_kv_per_image"])
    return {"samples": n, "images_encoded": images, "prompt_tokens": n_prompt, "generated_tokens": n_gen,
            "beams": beams, "vision_flops": vision, "prefill_flops": prefill, "decode_flops": decode,
            "total_flops": vision + prefill + decode}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--model")
    ap.add_argument("--run")
    ap.add_argument("--gflops", type=float)
    a = ap.parse_args(argv)
    if a.bench:
        print(json.dumps({"matmul_gflops_fp32": round(matmul_gflops(a.threads), 2), "threads": a.threads}))
        return 0
    if not (a.model and a.run):
        ap.error("--bench, or --model and --run")
    f = run_flops(Path(a.model), Path(a.run))
    if a.gflops:
        f["limit_s"] = f["total_flops"] / (a.gflops * 1e9)
    print(json.dumps(f, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
