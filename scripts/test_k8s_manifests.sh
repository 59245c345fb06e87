#!/usr/bin/env bash
# Validates examples/kubernetes/*.yaml against the Kubernetes API schemas (kubernetes-validate from PyPI,
# strict: unknown fields are errors; schemas ship inside the package, no cluster needed), then checks that the
# three stages of the sharded example agree (shard count, results folder, --rices-cache require) and runs their
# wait/merge shell snippets against a scratch folder: stage 2 waits for prepare.json, stage 3 for all N shards.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/k8s-venv
if ! "$VENV/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  echo "== installing kubernetes-validate 1.37.0 (PyPI) into $VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian ships venv/ensurepip separately
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV"
      python3 -m venv "$VENV"
    else
      echo "test_k8s_manifests.sh: 'python3 -m venv' failed; install python3-venv and rerun" >&2
      exit 1
    fi
  fi
  "$VENV/bin/pip" install -q --no-cache-dir kubernetes-validate==1.37.0
fi
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version 1.31.0 examples/kubernetes/*.yaml
"$VENV/bin/kubernetes-validate" --strict --quiet examples/kubernetes/*.yaml
"$VENV/bin/python" - examples/kubernetes/vqav2-sharded.yaml <<'PY'
import os, subprocess, sys, tempfile, yaml

docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(open(sys.argv[1]))}
prep, shards, merge = (docs[f"flamingo-eval-vqav2-{s}"] for s in ("prepare", "shards", "merge"))
def env(c):
    return {e["name"]: e.get("value") for e in c.get("env", [])}
def pod(d):
    return d["spec"]["template"]["spec"]
n = shards["spec"]["completions"]
assert shards["spec"]["completionMode"] == "Indexed"
ev = pod(shards)["containers"][0]
assert env(ev)["FLAMINGO_EVAL_SHARDS"] == str(n), "FLAMINGO_EVAL_SHARDS must equal .spec.completions"
assert env(pod(merge)["containers"][0])["N"] == str(n) and env(pod(merge)["initContainers"][0])["N"] == str(n)
cmd = ev["command"]
assert cmd[cmd.index("--rices-cache") + 1] == "require"
out = cmd[cmd.index("--out") + 1]
pc = pod(prep)["containers"][0]["command"]
assert pc[1] == "prepare" and pc[pc.index("--out") + 1] == out
for d in (prep, shards):
    assert env(pod(d)["containers"][0])["FLAMINGO_EVAL_CACHE"] == "/cache"

def run(c, root, timeout=3):
    """A container's sh -c snippet with /results under `root`; True if it exits 0 within `timeout` s."""
    script = c["command"][2].replace("/results", root)
    try:
        return subprocess.run(["sh", "-c", script], env={**os.environ, **env(c)}, timeout=timeout,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return None

with tempfile.TemporaryDirectory() as t:
    base = t + out.removeprefix("/results")
    os.makedirs(base)
    wait_prep = pod(shards)["initContainers"][0]
    assert run(wait_prep, t) is None, "stage 2 started without prepare.json"
    open(base + "/prepare.json", "w").write("{}")
    assert run(wait_prep, t).returncode == 0
    wait_shards = pod(merge)["initContainers"][0]
    for i in range(n):
        if i != 5:
            os.makedirs(f"{base}/shard-{i}-of-{n}")
            open(f"{base}/shard-{i}-of-{n}/summary.json", "w").write("{}")
    assert run(wait_shards, t) is None, "stage 3 started with shard 5 unfinished"
    os.makedirs(f"{base}/shard-5-of-{n}")
    open(f"{base}/shard-5-of-{n}/summary.json", "w").write("{}")
    assert run(wait_shards, t).returncode == 0
    mc = dict(pod(merge)["containers"][0])
    mc["command"] = ["sh", "-c", mc["command"][2].replace("exec flamingo-eval", "echo flamingo-eval")]
    words = run(mc, t).stdout.split()
    assert words[:3] == ["flamingo-eval", "merge", "--results"], words
    assert words[3:3 + n] == [f"{base}/shard-{i}-of-{n}" for i in range(n)], words
print(f"== {sys.argv[1]}: prepare → Indexed Job ({n} shards) → merge agree; the wait and merge snippets behave")
PY
