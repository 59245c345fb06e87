"""Collects one benchmark run (scripts/bench_vs_openflamingo.sh) into a table.

    python -m export.perf.table RUN_DIR        # prints the Markdown table; writes RUN_DIR/table.md, results.json

RUN_DIR/<model>/<task>/<shots>/ holds fe/ (the flamingo-eval results folder), fe.time and of.time (GNU time -v
output of each process), of.json (export/perf/run_openflamingo.py's report).
* samples/s, like for like: OpenFlamingo = samples / the `evaluate_*` call (building the PyTorch model and
  loading its weights excluded); flamingo-eval = samples / (its run time minus loading the model folder:
  manifest, hashes, tokenizer, ORT session creation; `times.model_load_s` in summary.json). The ratio uses these.
* fe whole process: samples / wall time of the entire `flamingo-eval run` process, loading included.
* images/sample: images that went through the vision encoder per evaluated sample.
* peak RSS: maximum resident set size of each process (GNU time).
* identical: share of samples whose post-processed predictions are byte-identical.
* outside ORT: flamingo-eval's wall time not spent in ONNX Runtime calls or session creation (summary.json).
* physical limit: the run's unavoidable matmul FLOPs (distinct images through vision + perceiver, each prompt
  prefilled once, every generated token of every beam; export/perf/flops.py) divided by the machine's measured
  fp32 matmul throughput (RUN_DIR/matmul.json, written by the bench script), beside flamingo-eval's evaluation
  time (the samples/s column's denominator). Needs RUN_DIR/models.tsv (model name -> exported folder).
"""
import json
import re
import sys
from pathlib import Path


def _time_v(path: Path) -> dict:
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        m = re.match(r"\s*Maximum resident set size \(kbytes\): (\d+)", line)
        if m:
            out["maxrss_kb"] = int(m.group(1))
        m = re.match(r"\s*Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)", line)
        if m:
            parts = [float(x) for x in m.group(1).split(":")]
            s = 0.0
            for p in parts:
                s = s * 60 + p
            out["wall_s"] = s
    return out


def _limit(run: Path, model: str, fe_dir: Path):
    """(limit seconds, GFLOP) of one flamingo-eval run, or None without matmul.json / models.tsv."""
    mm, mt = run / "matmul.json", run / "models.tsv"
    if not (mm.exists() and mt.exists()):
        return None
    dirs = dict(line.split("\t")[:2] for line in mt.read_text().splitlines() if "\t" in line)
    if model not in dirs:
        return None
    from .flops import run_flops

    f = run_flops(Path(dirs[model].strip()), fe_dir)
    return f["total_flops"] / (json.loads(mm.read_text())["matmul_gflops_fp32"] * 1e9), f["total_flops"] / 1e9


def collect(run: Path) -> list:
    rows = []
    for d in sorted(run.glob("*/*/*/")):
        if not (d / "fe" / "summary.json").exists():
            continue
        model, task, shots = d.parts[-3], d.parts[-2], int(d.parts[-1])
        summ = json.loads((d / "fe" / "summary.json").read_text())
        prov = summ["provenance"]
        recs = [json.loads(x) for x in (d / "fe" / "samples.jsonl").read_text().splitlines() if x.strip()]
        fe_t = _time_v(d / "fe.time")
        n = len(recs)
        row = {"model": model, "task": task, "shots": shots, "n": n,
               "fe_wall_s": fe_t.get("wall_s"), "fe_maxrss_mb": fe_t.get("maxrss_kb", 0) / 1024,
               "fe_images": prov["images_encoded"], "fe_vision_calls": prov["vision_encoder_calls"],
               "fe_times": prov["times"], "fe_threads": prov["intra_op_threads"],
               "fe_providers": prov["providers"]}
        t = prov["times"]
        inside = t["vision_encoder_s"] + t["perceiver_s"] + t["lang_decoder_s"] + t.get("session_create_s", 0.0)
        row["fe_outside_ort"] = 1 - inside / t["total_s"] if t["total_s"] else None
        row["fe_process_sps"] = n / fe_t["wall_s"] if fe_t.get("wall_s") else None
        # Runs from before `model_load_s` existed fall back to whole-process timing.
        eval_s = t["total_s"] - t["model_load_s"] if "model_load_s" in t else fe_t.get("wall_s")
        row["fe_eval_s"] = eval_s
        row["fe_sps"] = n / eval_s if eval_s else None
        lim = _limit(run, model, d / "fe")
        if lim:
            row["limit_s"], row["gflop"] = lim
        ofp = d / "of.json"
        if ofp.exists():
            of = json.loads(ofp.read_text())
            of_t = _time_v(d / "of.time")
            row.update({"of_s": of["seconds"], "of_sps": of["samples"] / of["seconds"],
                        "of_maxrss_mb": of_t.get("maxrss_kb", of.get("maxrss_kb", 0)) / 1024,
                        "of_images": of["vision_images"], "of_vision_calls": of["vision_calls"],
                        "of_prompts_identical": of["prompts_identical"], "of_device": of.get("device", "cpu")})
            same = sum(r.get("prediction") == of["predictions"].get(r["sample_id"]) for r in recs)
            row["identical"] = same
            row["speedup"] = row["fe_sps"] / row["of_sps"] if row["fe_sps"] else None
        rows.append(row)
    order = {"tiny-gptneox": 0, "mid-b16": 1}
    rows.sort(key=lambda r: (order.get(r["model"], 9), r["model"], r["task"], r["shots"]))
    return rows


def fmt_table(rows: list) -> str:
    head = ("| model | task | shots | n | OpenFlamingo samples/s | flamingo-eval samples/s | ratio | "
            "fe samples/s, whole process | "
            "images encoded / sample (OF / fe) | vision calls / sample (OF / fe) | peak RSS MB (OF / fe) | "
            "identical predictions | prompts identical | fe time outside ORT | physical limit s / fe eval s |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for r in rows:
        f = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
        n = r["n"]
        lines.append(
            f"| {r['model']} | {r['task']} | {r['shots']} | {n} | {f(r.get('of_sps'))} | {f(r.get('fe_sps'))} | "
            f"{f(r.get('speedup'), 1)}× | {f(r.get('fe_process_sps'))} | {f(r.get('of_images', 0) / n, 1)} / {f(r['fe_images'] / n, 1)} | "
            f"{f(r.get('of_vision_calls', 0) / n, 2)} / {f(r['fe_vision_calls'] / n, 2)} | "
            f"{f(r.get('of_maxrss_mb'), 0)} / {f(r['fe_maxrss_mb'], 0)} | "
            f"{r.get('identical', '-')}/{n} | {r.get('of_prompts_identical', '-')}/{n} | "
            f"{f(100 * r['fe_outside_ort'] if r['fe_outside_ort'] is not None else None, 1)}% | "
            f"{f(r.get('limit_s'), 2)} / {f(r.get('fe_eval_s'), 2)} |")
    return "\n".join(lines)


def main(argv=None):
    run = Path((argv or sys.argv[1:])[0])
    rows = collect(run)
    table = fmt_table(rows)
    (run / "table.md").write_text(table + "\n")
    (run / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table)


if __name__ == "__main__":
    main()
