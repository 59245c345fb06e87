"""The report of scripts/fullsize_proof.sh: OUT/proof.json and OUT/proof.md from what the script left in OUT.

    python -m export.perf.fullsize_report OUT MODEL_DIR
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def gnu_time(path: Path) -> dict:
    """Peak RSS (GB) and wall seconds of a GNU `time -v` output file."""
    if not path.is_file():
        return {}
    s = path.read_text()
    out = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", s)
    if m:
        out["peak_rss_gb"] = round(int(m.group(1)) * 1024 / 1e9, 2)  # GNU time reports KiB
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", s)
    if m:
        parts = [float(x) for x in m.group(1).split(":")]
        secs = 0.0
        for p in parts:
            secs = secs * 60 + p
        out["wall_s"] = round(secs, 1)
    m = re.search(r"Exit status: (\d+)", s)
    if m:
        out["exit"] = int(m.group(1))
    return out


def main(argv=None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    out, model = Path(argv[0]), Path(argv[1])
    from .flops import matmul_gflops, run_flops

    rep = {"release": gnu_time(out / "release.time"), "export": gnu_time(out / "export.time")}
    def nonempty(f):
        return f.is_file() and f.stat().st_size > 0

    if nonempty(out / "release.json"):
        rep["release"].update(json.loads((out / "release.json").read_text()))
    if nonempty(out / "export.json"):
        e = json.loads((out / "export.json").read_text())
        rep["export"].update({"seconds": e["seconds"], "sizes": e["sizes"], "parity_max_abs_diff":
                              e["parity"]["max_abs_diff"], "greedy_identical": e["parity"]["greedy_tokens_identical"],
                              "beam3_identical": e["parity"]["beam3_tokens_identical"]})
    if nonempty(out / "export.bytes"):
        rep["export"]["disk_bytes"] = int((out / "export.bytes").read_text())
    if (out / "export.log").is_file():
        rep["export"]["log"] = [l for l in (out / "export.log").read_text().splitlines() if l.startswith("[export]")]
    gflops = matmul_gflops()
    rep["matmul_gflops_fp32"] = round(gflops, 2)
    runs = {}
    for d in sorted((out / "runs").iterdir()) if (out / "runs").is_dir() else []:
        if not d.is_dir() or not (d / "summary.json").is_file():
            continue
        s = json.loads((d / "summary.json").read_text())
        prov = s["provenance"]
        t = prov["times"]
        n = prov["samples_evaluated_this_invocation"]
        f = run_flops(model, d)
        runs[d.name] = {"n": n, **gnu_time(d.with_suffix(".time")), "times": t,
                        "per_sample_s": {k[:-2]: round(t[k] / n, 2) for k in
                                         ("vision_encoder_s", "perceiver_s", "lang_decoder_s", "preprocess_s",
                                          "prompt_building_s") if k in t},
                        "eval_s_per_sample": round((t["total_s"] - t["model_load_s"]) / n, 2),
                        "images_encoded": prov["images_encoded"], "flops": f,
                        "limit_s_per_sample": round(f["total_flops"] / (gflops * 1e9) / n, 2),
                        "metric": [r["mean"] for r in s["results"]]}
    rep["runs"] = runs
    (out / "proof.json").write_text(json.dumps(rep, indent=1, sort_keys=True))
    ex = rep["export"]
    lines = ["# Full-size proof (OpenFlamingo-3B-vitl-mpt1b structure, random init)", "",
             f"export: {ex.get('wall_s')} s wall, peak RSS {ex.get('peak_rss_gb')} GB, disk "
             f"{ex.get('disk_bytes', 0) / 1e9:.2f} GB, parity max abs diff {ex.get('parity_max_abs_diff')}, "
             f"greedy identical {ex.get('greedy_identical')}, beam-3 identical {ex.get('beam3_identical')}",
             f"matmul throughput (onnxruntime fp32 MatMul 2048^3): {rep['matmul_gflops_fp32']} GFLOP/s", "",
             "| run | n | peak RSS GB | wall s | model load s | eval s/sample | vision s/sample | perceiver s/sample | "
             "decoder s/sample | images encoded | physical limit s/sample |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        p = r["per_sample_s"]
        lines.append(f"| {name} | {r['n']} | {r.get('peak_rss_gb')} | {r.get('wall_s')} | {r['times']['model_load_s']} | "
                     f"{r['eval_s_per_sample']} | {p.get('vision_encoder')} | {p.get('perceiver')} | "
                     f"{p.get('lang_decoder')} | {r['images_encoded']} | {r['limit_s_per_sample']} |")
    (out / "proof.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
