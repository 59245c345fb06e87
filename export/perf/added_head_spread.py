"""Measure how much the unpublished LM-head rows of OpenFlamingo's added tokens move results (LLaMA-based v1
models: `<|endofchunk|>`, `<image>`, `<PAD>` head rows are in no released file; OpenFlamingo draws them at random
on every load, the exporter from --added-head-seed).

The tiny LLaMA fixture is exported from its published layout once per seed (only those 3 rows differ), and each
export is evaluated with `flamingo-eval run` on the bundled demo benchmarks. Reported: per benchmark and shot the
metric per seed and its spread; how many samples' predictions (and generated tokens, and ranking scores) differ
from the first seed's; how many generations stopped on `<|endofchunk|>`.

    export/.venv/bin/python -m export.perf.added_head_spread --bin target/release/flamingo-eval \\
        --seeds 0,1,2,3,4,5,6,7 --work /tmp/spread [--out report.json]

A heavy check (a few minutes): run by hand, not in CI. The tiny model's head rows are drawn with the same std as
all its other rows, so an added token is as likely as any other: an upper bound on the effect rather than a
prediction for LLaMA-7B (see docs/models.md).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = ["demo_vqa", "demo_coco", "demo_hateful"]


def export_seed(seed: int, root: Path) -> Path:
    from ..tiny.make_tiny import make

    out = root / f"seed{seed}"
    if not (out / "tiny-llama" / "model.yaml").is_file():
        make("tiny-llama", out, goldens=False, log=lambda s: None, added_head_seed=seed)
    return out / "tiny-llama"


def run_bench(binary: Path, model: Path, bench: str, out: Path) -> None:
    if (out / "summary.json").is_file():
        return
    r = subprocess.run([str(binary), "run", "--model", str(model), "--benchmark", f"benchmarks/{bench}.yaml",
                        "--out", str(out), "--quiet"], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"flamingo-eval run failed for {model} on {bench}:\n{r.stderr[-3000:]}")


def load_samples(out: Path) -> dict:
    rows = {}
    for line in (out / "samples.jsonl").read_text().splitlines():
        s = json.loads(line)
        rows[(s["sample_id"], s["shot"], s["trial"])] = s
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "flamingo-eval"))
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    seeds = [int(x) for x in a.seeds.split(",")]
    root = Path(a.work)
    import yaml

    eoc, added = None, set()
    report = {"seeds": seeds, "benchmarks": {}}
    for seed in seeds:
        model = export_seed(seed, root)
        m = yaml.safe_load((model / "model.yaml").read_text())
        assert m["source"]["added_head_seed"] == seed
        eoc = m["special_tokens"]["endofchunk"]
        st = m["special_tokens"]
        added = {st["endofchunk"], st["image"], st["pad"]}
        for b in BENCHMARKS:
            run_bench(Path(a.bin), model, b, root / f"seed{seed}" / "results" / b)
    max_new = {b: int((yaml.safe_load((REPO / "benchmarks" / f"{b}.yaml").read_text()).get("generation") or {})
                      .get("max_new_tokens", 0)) for b in BENCHMARKS}
    for b in BENCHMARKS:
        per_seed = {}
        samples = {}
        for seed in seeds:
            out = root / f"seed{seed}" / "results" / b
            summ = json.loads((out / "summary.json").read_text())
            per_seed[seed] = {r["shot"]: r["mean"] for r in summ["results"]}
            samples[seed] = load_samples(out)
        ref = samples[seeds[0]]
        shots = sorted(per_seed[seeds[0]])
        entry = {"metric": summ["metric"], "shots": {}}
        for shot in shots:
            vals = [per_seed[s][shot] for s in seeds]
            keys = [k for k in ref if k[1] == shot]
            changed_pred = {s: sum(samples[s][k]["prediction"] != ref[k]["prediction"] for k in keys) for s in seeds}
            changed_tok = {s: sum(samples[s][k]["tokens"] != ref[k]["tokens"] for k in keys) for s in seeds}
            changed_rank = {s: sum((samples[s][k]["candidate_scores"] or None) is not None and
                                   samples[s][k]["candidate_scores"] != ref[k]["candidate_scores"] for k in keys)
                            for s in seeds}
            def score_change(s):
                d = 0.0
                for k in keys:
                    a, b = samples[s][k]["candidate_scores"], ref[k]["candidate_scores"]
                    if a and b:
                        d = max(d, max(abs(x["score"] - y["score"]) for x, y in zip(a, b)))
                return d

            max_score_change = {s: score_change(s) for s in seeds}
            added_generated = {s: sum(any(t in added for t in samples[s][k]["tokens"] or []) for k in keys)
                               for s in seeds}
            # the runtime records the generated tokens without the stop token: a generation that stopped on
            # <|endofchunk|> is one shorter than max_new_tokens (or ends with it)
            def stopped_on_eoc(t):
                return bool(t is not None) and (len(t) < max_new[b] or (bool(t) and t[-1] == eoc))

            stopped = {s: sum(stopped_on_eoc(samples[s][k]["tokens"]) for k in keys if samples[s][k]["tokens"]
                              is not None) for s in seeds}
            entry["shots"][shot] = {
                "n": len(keys), "metric_per_seed": vals, "min": min(vals), "max": max(vals),
                "spread": max(vals) - min(vals), "std": statistics.pstdev(vals),
                "predictions_changed_vs_first_seed": changed_pred, "tokens_changed_vs_first_seed": changed_tok,
                "candidate_scores_changed_vs_first_seed": changed_rank,
                "max_abs_candidate_score_change_vs_first_seed": max_score_change,
                "generations_with_an_added_token": added_generated, "stopped_on_endofchunk": stopped}
        report["benchmarks"][b] = entry
    text = json.dumps(report, indent=1, sort_keys=True)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
