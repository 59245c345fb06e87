#!/usr/bin/env python3
"""Size and speed of the report's sample browser at scale: 5,000 samples x 5 shot counts x 3 trials (75,000
records) of a synthetic VQA run with real-size prompts (0/4/8/16/32 demonstrations, each with its own image),
7,000 distinct 224x224 JPEGs (5,000 queries, 2,000 demonstration images).

It writes the results folder, times `flamingo-eval report --samples`, measures what the browser writes
(samples.html, index.js, the data chunks, search.js, thumbnails), then loads the page in headless Chromium and
times: first page shown, a filter change, the first search (loads search.js), a page flip, the changed view
needs two runs and is timed on a second run with 1% of the predictions changed.

Usage: scripts/bench_report_samples.py [--samples 5000] [--keep DIR]   (needs target/release or target/debug
flamingo-eval, Pillow (export/.venv has it) and chromium). Run it once; the numbers are the report's to quote.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = [0, 4, 8, 16, 32]
SEEDS = [42, 43, 44]

class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
    separated by NUL on fds 3/4), so that times are real (no virtual time) and no websocket client is needed."""

    def __init__(self, exe, profile):
        self.to_r, self.to_w = os.pipe()
        self.from_r, self.from_w = os.pipe()

        def pre():
            os.dup2(self.to_r, 3)
            os.dup2(self.from_w, 4)

        self.p = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   "--disable-background-networking", "--remote-debugging-pipe",
                                   f"--user-data-dir={profile}", "about:blank"], preexec_fn=pre, pass_fds=(3, 4),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self.to_r)
        os.close(self.from_w)
        self.buf, self.next_id, self.session = b"", 0, None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method, params=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            m = json.loads(raw)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        return r["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        self.p.wait(timeout=30)


DRIVER = r"""
(function () {
  var t0 = performance.timeOrigin, out = {};
  function until(c) { return new Promise(function (r) { (function p() { if (c()) r(); else setTimeout(p, 5); })(); }); }
  function imgs() { var a = Array.prototype.slice.call(document.querySelectorAll('#list img'));
    return Promise.all(a.map(function (i) { return i.complete ? 1 : new Promise(function (r) { i.onload = i.onerror = r; }); })); }
  function timed(name, f) { return function () { var s = performance.now(); return Promise.resolve(f()).then(function () { return until(function () { return FE.ready; }); }).then(imgs).then(function () {
    out[name + '_ms'] = Math.round(performance.now() - s); out[name + '_matches'] = +document.getElementById('count').getAttribute('data-matches'); }); }; }
  until(function () { return FE.ready; }).then(imgs).then(function () { out.first_page_ms = Math.round(performance.now()); })
    .then(timed('filter_incorrect_16shot', function () { return FE.set({ status: 'i', shot: '16' }); }))
    .then(timed('first_search', function () { return FE.set({ status: '', shot: '', q: 'q4999' }); }))
    .then(timed('second_search', function () { return FE.set({ q: 'tennis' }); }))
    .then(timed('page_flip', function () { return FE.set({ q: '', page: 1000 }); }))
    .then(timed('changed_view', function () { return FE.set({ view: 'changed', page: 0 }); }))
    .catch(function (e) { out.error = String(e); })
    .then(function () { window.BENCH = out; });
})();
"""


def make_images(folder: Path, n: int, prefix: str):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(0)
    paths = []
    for i in range(n):
        p = folder / f"{prefix}_{i:05d}.jpg"
        c = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        img = Image.new("RGB", (224, 224), c)
        # a little structure so the JPEG is not trivially small
        for y in range(0, 224, 28):
            img.paste((255 - c[0], c[1], (c[2] + y) % 256), (rnd.randrange(200), y, rnd.randrange(200) + 24, y + 14))
        img.save(p, quality=85)
        paths.append(str(p))
    return paths


def write_run(folder: Path, n: int, queries, demos, changed_share=0.0, name="bench_vqa"):
    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(1)
    words = ["red", "blue", "two", "dog", "yes", "no", "table", "skateboard", "kitchen", "tennis", "white", "3"]
    demo_q = [(f"d{i}", f"What color is the object number {i}?", rnd.choice(words)) for i in range(len(demos))]
    rnd2 = random.Random(2)
    with open(folder / "samples.jsonl", "w") as f:
        for shot in SHOTS:
            for trial, seed in enumerate(SEEDS):
                rt = random.Random(seed * 1000 + shot)
                for i in range(n):
                    ds = rt.sample(range(len(demos)), shot)
                    prompt = "".join(f"<image>Question:{demo_q[d][1]} Short answer:{demo_q[d][2]}<|endofchunk|>" for d in ds)
                    prompt += f"<image>Question:What is shown in query q{i}? Short answer:"
                    answers = [rnd.choice(words) for _ in range(10)]
                    pred = rnd.choice(words)
                    if changed_share and rnd2.random() < changed_share:
                        pred = pred + " changed"
                    m = min(sum(a == pred for a in answers) / 3, 1.0)
                    rec = {"sample_id": f"q{i}", "shot": shot, "trial": trial, "trial_seed": seed, "prompt": prompt,
                           "demo_ids": [demo_q[d][0] for d in ds], "text_only_demo_ids": [],
                           "media": [[demos[d]] for d in ds] + [[queries[i]]], "media_sha256": [],
                           "target": {"kind": "vqa", "answers": answers, "answer_type": "other"},
                           "raw_output": " " + pred + "\n", "prediction": pred, "tokens": [1, 2, 3],
                           "sequence_score": -1.5, "candidate_scores": None, "metric": m, "error": None}
                    f.write(json.dumps(rec) + "\n")
    ident = {"benchmark_name": name, "benchmark_sha256": "0" * 64, "template_sha256": "0" * 64, "model_name": "bench",
             "model_manifest_sha256": "0" * 64, "shots": SHOTS, "trial_seeds": SEEDS, "limit": None}
    (folder / "run.json").write_text(json.dumps(ident, indent=2))
    results = [{"shot": s, "trials": [{"trial": t, "seed": sd, "n": n, "errors": 0, "value": 10.0, "ci": None}
                                      for t, sd in enumerate(SEEDS)], "mean": 10.0, "std": 0.0, "ci": None,
                "n": 3 * n, "errors": 0} for s in SHOTS]
    summary = {"benchmark": name, "model": "bench", "metric": "VQA accuracy ×100", "metric_key": "vqa_accuracy",
               "results": results, "skipped_records": [], "provenance": {"model_dir": "none", "benchmark_file": "none"}}
    (folder / "summary.json").write_text(json.dumps(summary))


def du(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--keep", help="keep the generated folders here")
    ap.add_argument("--bin", default=None)
    ap.add_argument("--reuse", action="store_true", help="with --keep: reuse the folders and reports written before")
    a = ap.parse_args()
    built = [p for t in (ROOT / "target", Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")))
             for p in (t / "release/flamingo-eval", t / "debug/flamingo-eval") if p.exists()]
    exe = a.bin or (str(max(built, key=lambda p: p.stat().st_mtime)) if built else None)  # the newest build
    if not exe:
        sys.exit("build flamingo-eval first (cargo build --release)")
    work = (Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-samples-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    reuse = a.reuse and (work / "base/bench_vqa/samples.jsonl").is_file()
    t = time.time()
    if not reuse:
        queries = make_images(work / "images", a.samples, "query")
        demos = make_images(work / "images", 2000, "demo")
        print(f"images: {len(queries) + len(demos)} written in {time.time() - t:.1f}s", flush=True)
        t = time.time()
        write_run(work / "base/bench_vqa", a.samples, queries, demos)
        write_run(work / "cand/bench_vqa", a.samples, queries, demos, changed_share=0.01)
    jsonl = (work / "base/bench_vqa/samples.jsonl").stat().st_size
    print(f"results folders written in {time.time() - t:.1f}s; samples.jsonl {jsonl / 2**20:.1f} MiB per run", flush=True)
    res = {}
    for label, dirs in (("one_run", [work / "base"]), ("two_runs", [work / "base", work / "cand"])):
        out = work / f"report_{label}"
        t = time.time()
        if not (reuse and (out / "samples.html").is_file()):
            p = subprocess.run([exe, "report", *map(str, dirs), "--out", str(out), "--samples", "--reference", str(work / "none")],
                               capture_output=True, text=True)
            if p.returncode:
                sys.exit(p.stderr)
        secs = time.time() - t
        data = out / "report_samples"
        chunks = sorted(data.glob("chunk_*.js"))
        sizes = [c.stat().st_size for c in chunks]
        r = {"report_s": round(secs, 1), "records": json.loads((data / "index.js").read_text()[9:-3])["n"],
             "samples_html_kib": round((out / "samples.html").stat().st_size / 1024, 1),
             "index_js_kib": round((data / "index.js").stat().st_size / 1024, 1),
             "search_js_mib": round((data / "search.js").stat().st_size / 2**20, 2),
             "chunks": len(chunks), "chunk_kib_mean": round(sum(sizes) / len(sizes) / 1024, 1),
             "chunk_kib_max": round(max(sizes) / 1024, 1), "chunks_total_mib": round(sum(sizes) / 2**20, 1),
             "thumbnails": len(list((data / "media").iterdir())),
             "media_mib": round(du(data / "media") / 2**20, 1), "folder_total_mib": round(du(out) / 2**20, 1)}
        # first page: index.js + the chunks of 20 records; the page's own bytes
        r["first_page_bytes_kib"] = round((r["samples_html_kib"] + r["index_js_kib"] + sizes[0] / 1024), 1)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            page = (out / "samples.html").read_text()
            (out / "bench.js").write_text(DRIVER)
            (out / "bench.html").write_text(page.replace("</body>", '<script src="bench.js"></script>\n</body>'))
            b = Chromium(chromium, work / ("profile-" + label))
            t = time.time()
            b.call("Page.navigate", {"url": (out / "bench.html").as_uri()})
            got = None
            while time.time() - t < 300:
                got = b.eval("window.BENCH ? JSON.stringify(window.BENCH) : null")
                if got:
                    break
                time.sleep(0.1)
            r["chromium_wall_s"] = round(time.time() - t, 1)
            r["browser"] = json.loads(got) if got else {"error": "timed out"}
            b.close()
        res[label] = r
        print(label, json.dumps(r, indent=1), flush=True)
    print(json.dumps(res))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
