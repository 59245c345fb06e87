#!/usr/bin/env python3
"""The smallest score drop the regression gate detects at the baseline's sample sizes.

For every benchmark folder in results/baseline and every shot count, makes candidate folders in which the
first k scoring records (file order) are corrupted -- a generated answer replaced by a wrong one (metric 0),
a ranking's P(positive) mirrored (p -> 1-p) -- and runs the real `flamingo-eval compare` (paired bootstrap,
default --max-drop 0.5 --alpha 0.05 --bootstrap-resamples 1000) on that shot alone. Prints, per (benchmark, shot), the
smallest k for which compare reports a regression and the score drop that k makes.

    python3 scripts/gate_sensitivity.py [--bin target/release/flamingo-eval] [--baseline results/baseline]
"""
import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path


def corrupt(rec):
    """A corrupted copy of one record, or None when corrupting it cannot lower the score."""
    r = dict(rec)
    if rec.get("candidate_scores"):  # rank: mirror P(positive) about 1/2
        if abs(rec["metric"] - 0.5) < 1e-9:
            return None
        r["metric"] = 1.0 - rec["metric"]
        r["prediction"] = "yes" if rec["prediction"] == "no" else "no"
        return r
    if rec["target"]["kind"] == "caption":
        r["prediction"] = r["raw_output"] = "zzz"
        return r
    if not rec.get("metric"):
        return None
    r["prediction"] = r["raw_output"] = "zzz"
    r["metric"] = 0.0
    return r


def rank_helps(rec):
    """For ROC-AUC: mirroring lowers the AUC when the record was on the right side of 1/2."""
    p, y = rec["metric"], rec["target"]["label"]
    return (p > 0.5) == (y == 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/flamingo-eval")
    ap.add_argument("--baseline", default="results/baseline")
    a = ap.parse_args()
    rows = []
    for bdir in sorted(p for p in Path(a.baseline).iterdir() if (p / "summary.json").is_file()):
        recs = [json.loads(line) for line in (bdir / "samples.jsonl").read_text().splitlines() if line.strip()]
        summary = json.loads((bdir / "summary.json").read_text())
        for res in summary["results"]:
            shot = res["shot"]
            mine = [r for r in recs if r["shot"] == shot]
            idx = [i for i, r in enumerate(mine) if corrupt(r) is not None
                   and (not r.get("candidate_scores") or rank_helps(r))]
            found = None
            with tempfile.TemporaryDirectory() as tmp:
                base = Path(tmp) / "base" / bdir.name
                cand = Path(tmp) / "cand" / bdir.name
                for d in (base, cand):
                    d.mkdir(parents=True)
                    shutil.copy(bdir / "run.json", d / "run.json")
                    s = dict(summary)
                    s["results"] = [res]
                    (d / "summary.json").write_text(json.dumps(s))
                (base / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mine))
                for k in range(1, len(idx) + 1):
                    bad = set(idx[:k])
                    out = [corrupt(r) if i in bad else r for i, r in enumerate(mine)]
                    (cand / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
                    md = Path(tmp) / "cmp.md"
                    p = subprocess.run([a.bin, "compare", str(base), str(cand), "--markdown", str(md)],
                                       capture_output=True, text=True)
                    if p.returncode == 2:
                        raise SystemExit(f"{bdir.name} shot {shot}: compare says incomparable: {p.stderr}")
                    if p.returncode == 1:
                        line = next(x for x in md.read_text().splitlines() if x.startswith(f"| {bdir.name}"))
                        found = (k, line)
                        break
            n = len(mine)
            if found:
                k, line = found
                cells = [c.strip() for c in line.strip("|").split("|")]
                rows.append(f"| {bdir.name} | {shot} | {n} | {res['mean']:.2f} | {k} ({100 * k / n:.1f} % of samples) | {cells[7]} (p {cells[9]}) |")
            else:
                rows.append(f"| {bdir.name} | {shot} | {n} | {res['mean']:.2f} | not detected even with all {len(idx)} corrupted | |")
    print("| benchmark | shot | n | baseline | smallest detected corruption | Δ at that point |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
