//! Cluster runs without a cluster: `prepare` fills the RICES embedding cache once, shards run with
//! `--rices-cache require` compute no embedding and merge into the unsharded run byte for byte, a shard
//! facing an empty or stale cache refuses before evaluating (and never embeds), and `flamingo-eval slurm`
//! writes the three chained jobs.
//! (The same flow on a real Slurm cluster: scripts/test_slurm.sh.)

mod common;

use common::repo;
use flamingo_eval::benchmark::rices::{self, CachePolicy};
use flamingo_eval::benchmark::spec::ContentHash;
use flamingo_eval::benchmark::Benchmark;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BENCH: &str = "benchmarks/demo_vqa_rices.yaml";
const MODEL: &str = "tests/fixtures/models/tiny-gptneox";

fn fe(cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .current_dir(repo())
        .env("FLAMINGO_EVAL_CACHE", cache)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn rices_computed(dir: &Path) -> u64 {
    json(&dir.join("summary.json"))["provenance"]["rices_embeddings_computed"].as_u64().expect("rices_embeddings_computed")
}

/// Distinct images of the demonstration and the query split: what one run must embed, once.
fn distinct_images() -> usize {
    let b = Benchmark::load(&repo().join(BENCH)).unwrap();
    let count = |s: &[flamingo_eval::benchmark::datasets::Sample]| s.iter().map(|x| x.media.path().to_path_buf()).collect::<HashSet<PathBuf>>().len();
    count(&b.demos.samples) + count(&b.query.samples)
}

fn run_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["run", "--model", MODEL, "--benchmark", BENCH, "--out", out, "--quiet", "--threads", "1", "--bootstrap-resamples", "50"];
    a.extend_from_slice(extra);
    a
}

#[test]
fn prepare_embeds_once_and_shards_only_read_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let pool = distinct_images();
    assert!(pool > 0);

    // Unsharded reference, own empty cache: embeds the pool once.
    let full = t.path().join("full");
    let full_cache = t.path().join("cache-full");
    ok(fe(&full_cache, &run_args(full.to_str().unwrap(), &[])));
    assert_eq!(rices_computed(&full), pool as u64);

    // A shard that may only read an empty cache refuses, naming the fix, before evaluating anything.
    let sharded = t.path().join("sharded");
    let cache = t.path().join("cache-shared");
    let o = fe(&cache, &run_args(sharded.to_str().unwrap(), &["--shard", "0/3", "--rices-cache", "require"]));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("flamingo-eval prepare") && e.contains("--rices-cache require"), "{e}");
    assert!(!sharded.join("shard-0-of-3/samples.jsonl").exists() || std::fs::read(sharded.join("shard-0-of-3/samples.jsonl")).unwrap().is_empty());
    assert!(!cache.join("rices").exists(), "a read-only shard wrote the cache");

    // prepare: the whole pool, once; again: nothing.
    let text = ok(fe(&cache, &["prepare", "--benchmark", BENCH, "--model", MODEL, "--out", sharded.to_str().unwrap(), "--threads", "1"]));
    assert!(text.contains(&format!("RICES: {pool} embedding(s) computed")), "{text}");
    let p = json(&sharded.join("prepare.json"));
    assert_eq!(p["rices"]["embeddings_computed"], pool as u64);
    assert_eq!(p["rices"]["files"].as_array().unwrap().len(), 2);
    let again = ok(fe(&cache, &["prepare", "--benchmark", BENCH, "--model", MODEL, "--threads", "1"]));
    assert!(again.contains(&format!("RICES: 0 embedding(s) computed, {pool} read")), "{again}");

    // Three shards read it: no embedding computed; merged == unsharded.
    for i in 0..3 {
        let s = format!("{i}/3");
        ok(fe(&cache, &run_args(sharded.to_str().unwrap(), &["--shard", &s, "--rices-cache", "require"])));
        assert_eq!(rices_computed(&sharded.join(format!("shard-{i}-of-3"))), 0);
    }
    let shards: Vec<String> = (0..3).map(|i| sharded.join(format!("shard-{i}-of-3")).display().to_string()).collect();
    let mut args = vec!["merge", "--results"];
    args.extend(shards.iter().map(|s| s.as_str()));
    ok(fe(&cache, &args));
    for f in ["samples.jsonl", "run.json", "summary.csv"] {
        assert_eq!(std::fs::read(full.join(f)).unwrap(), std::fs::read(sharded.join(f)).unwrap(), "{f} differs");
    }
    let strip = |d: &Path| {
        let mut v = json(&d.join("summary.json"));
        v.as_object_mut().unwrap().remove("provenance");
        v
    };
    assert_eq!(strip(&full), strip(&sharded));
    // the merged count is the shards' sum: the run's embeddings were all computed by prepare
    assert_eq!(rices_computed(&sharded), 0);
}

#[test]
fn slurm_launcher_writes_prepare_array_and_merge_chained() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    let scripts = t.path().join("jobs");
    let text = ok(fe(
        t.path(),
        &[
            "slurm", "--benchmark", BENCH, "--model", MODEL, "--shards", "4", "--shots", "0,4", "--out", out.to_str().unwrap(),
            "--scripts", scripts.to_str().unwrap(), "--partition", "gpu", "--gpus-per-task", "1", "--time", "02:00:00",
            "--cpus-per-task", "8", "--max-parallel", "2", "--sbatch-arg=--qos=high", "--run-arg=--fail-fast",
        ],
    ));
    assert!(text.contains("--dependency=afterok:$P shards.sbatch") && text.contains("--dependency=afterok:$A"), "{text}");
    let read = |n: &str| std::fs::read_to_string(scripts.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    let (prepare, shards, merge, submit) = (read("prepare.sbatch"), read("shards.sbatch"), read("merge.sbatch"), read("submit.sh"));
    for s in [&prepare, &shards, &merge] {
        assert!(s.contains("#SBATCH --partition=gpu") && s.contains("#SBATCH --qos=high"), "{s}");
    }
    assert!(prepare.contains(" prepare --benchmark ") && prepare.contains("#SBATCH --gpus-per-task=1") && prepare.contains("--device cuda:0") && !prepare.contains("--require-device"), "{prepare}");
    assert!(shards.contains("#SBATCH --array=0-3%2") && shards.contains("#SBATCH --requeue") && shards.contains("#SBATCH --time=02:00:00"), "{shards}");
    assert!(shards.contains("--shard \"$SLURM_ARRAY_TASK_ID/4\" --rices-cache require") && shards.contains("--shots 0,4") && shards.contains("--threads 8") && shards.contains(" --fail-fast"), "{shards}");
    let cache = format!("export FLAMINGO_EVAL_CACHE={}", t.path().display());
    assert!(prepare.contains(&cache) && shards.contains(&cache), "the cache folder is not fixed in the scripts:\n{prepare}");
    assert!(merge.contains(" merge --results \"${shards[@]}\"") && !merge.contains("--gpus-per-task") && !merge.contains("--requeue"), "{merge}");
    assert!(submit.contains("--dependency=afterok:$P shards.sbatch") && submit.contains("--dependency=afterok:$A --kill-on-invalid-dep=yes merge.sbatch"), "{submit}");
    // The #SBATCH lines come before the first command (sbatch ignores them after it), and every script parses.
    for (n, s) in [("prepare", &prepare), ("shards", &shards), ("merge", &merge)] {
        let first_cmd = s.lines().position(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap();
        assert!(s.lines().skip(first_cmd).all(|l| !l.starts_with("#SBATCH")), "{n}: #SBATCH after a command:\n{s}");
    }
    for n in ["prepare.sbatch", "shards.sbatch", "merge.sbatch", "submit.sh"] {
        let st = Command::new("bash").arg("-n").arg(scripts.join(n)).status().unwrap();
        assert!(st.success(), "{n} does not parse");
    }
    // The merge script lists the N shard folders of the run: run it through bash with a stand-in binary.
    let fake = t.path().join("fake-bin");
    std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // (an output folder with a space and a quote in its name: every path is quoted for bash)
    let odd = t.path().join("run dir's $HOME");
    ok(fe(t.path(), &["slurm", "--benchmark", BENCH, "--model", MODEL, "--shards", "3", "--out", odd.to_str().unwrap(), "--scripts", scripts.to_str().unwrap(), "--bin", fake.to_str().unwrap()]));
    let args = ok(Command::new("bash").arg(scripts.join("merge.sbatch")).output().unwrap());
    let want: Vec<String> = (0..3).map(|i| odd.join(format!("shard-{i}-of-3")).display().to_string()).collect();
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(lines[..2], ["merge", "--results"]);
    assert_eq!(&lines[2..5], want.iter().map(|s| s.as_str()).collect::<Vec<_>>().as_slice(), "{args}");
    assert_eq!(&lines[5..], ["--out", odd.to_str().unwrap(), "--benchmark", BENCH], "{args}");
    // the shard script, as array task 2, runs shard 2 of 3 with the cache read-only
    let args = ok(Command::new("bash").arg(scripts.join("shards.sbatch")).env("SLURM_ARRAY_TASK_ID", "2").output().unwrap());
    let words: Vec<&str> = args.lines().collect();
    let at = |flag: &str| words[words.iter().position(|w| *w == flag).unwrap_or_else(|| panic!("{flag} missing: {args}")) + 1];
    assert_eq!((words[0], at("--shard"), at("--rices-cache"), at("--out"), at("--benchmark")), ("run", "2/3", "require", odd.to_str().unwrap(), BENCH));
    let o = Command::new("bash").arg(scripts.join("shards.sbatch")).env_remove("SLURM_ARRAY_TASK_ID").output().unwrap();
    assert!(!o.status.success(), "the shard script ran outside a job array");
    // Bad input stops before anything is written.
    let o = fe(t.path(), &["slurm", "--benchmark", "benchmarks/nope.yaml", "--model", MODEL, "--shards", "3", "--scripts", t.path().join("none").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(!t.path().join("none").exists());
}

#[test]
fn slurm_passes_the_template_to_every_shard() {
    let t = tempfile::tempdir().unwrap();
    let scripts = t.path().join("jobs");
    let fake = t.path().join("fake-bin");
    std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = t.path().join("run");
    let slurm = |template: &str, dir: &Path| {
        fe(
            t.path(),
            &[
                "slurm", "--benchmark", BENCH, "--model", MODEL, "--shards", "2", "--template", template, "--out", out.to_str().unwrap(),
                "--scripts", dir.to_str().unwrap(), "--bin", fake.to_str().unwrap(),
            ],
        )
    };
    // a bundled name and a file path, each written into the shard command as given
    for template in ["idefics_vqa", "prompts/idefics_vqa.yaml"] {
        ok(slurm(template, &scripts));
        let shards = std::fs::read_to_string(scripts.join("shards.sbatch")).unwrap();
        let args = ok(Command::new("bash").arg(scripts.join("shards.sbatch")).env("SLURM_ARRAY_TASK_ID", "1").output().unwrap());
        let words: Vec<&str> = args.lines().collect();
        let at = words.iter().position(|w| *w == "--template").unwrap_or_else(|| panic!("no --template in the shard command:\n{shards}"));
        assert_eq!(words[at + 1], template, "{shards}");
        assert_eq!((words[0], words[words.iter().position(|w| *w == "--shard").unwrap() + 1]), ("run", "1/2"));
        // prepare (RICES embeddings) and merge do not depend on the wording
        for n in ["prepare.sbatch", "merge.sbatch"] {
            assert!(!std::fs::read_to_string(scripts.join(n)).unwrap().contains("--template"), "{n}");
        }
    }
    // bad templates are refused before any script is written: an unknown name, and one whose placeholders the
    // benchmark's dataset layout does not provide (the HatefulMemes wording on a VQA benchmark)
    for (template, needle) in [("no_such_template", "known names"), ("idefics_hateful_memes", "placeholder `{text}`")] {
        let dir = t.path().join(format!("none-{template}"));
        let o = slurm(template, &dir);
        let msg = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success() && msg.contains("--template") && msg.contains(needle), "{template}: {msg}");
        assert!(!dir.exists());
    }
    // the shard command with the template is the one an unsharded `run --template` takes: it runs
    let o = fe(t.path(), &["run", "--model", MODEL, "--benchmark", BENCH, "--template", "idefics_vqa", "--out", t.path().join("r").to_str().unwrap(), "--quiet", "--threads", "1", "--limit", "1", "--shots", "0", "--shard", "0/2"]);
    ok(o);
}

/// Counts the images it is asked to embed.
struct Counting(usize);

impl rices::ImageEmbedder for Counting {
    fn cache_key(&self) -> String {
        "counting-v1".into()
    }
    fn embed(&mut self, images: &[PathBuf]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.0 += images.len();
        Ok(images.iter().enumerate().map(|(i, _)| vec![1.0, i as f32]).collect())
    }
}

#[test]
fn cache_policy_require_never_embeds_and_fill_embeds_once() {
    let t = tempfile::tempdir().unwrap();
    let imgs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| t.path().join(n)).collect();
    for (i, p) in imgs.iter().enumerate() {
        std::fs::write(p, [i as u8; 8]).unwrap();
    }
    let cache = t.path().join("cache");
    let mut e = Counting(0);
    let err = rices::embed_cached_with(&mut e, &imgs, &cache, ContentHash::Bytes, 2, CachePolicy::Require).unwrap_err().to_string();
    assert!(err.contains("flamingo-eval prepare") && err.contains("--rices-cache require"), "{err}");
    assert_eq!(e.0, 0, "Require embedded images");
    let (first, used) = rices::embed_cached_with(&mut e, &imgs, &cache, ContentHash::Bytes, 2, CachePolicy::Fill).unwrap();
    assert_eq!((e.0, used.computed, used.images), (3, 3, 3));
    let (again, used2) = rices::embed_cached_with(&mut e, &imgs, &cache, ContentHash::Bytes, 2, CachePolicy::Require).unwrap();
    assert_eq!((e.0, used2.computed), (3, 0));
    assert_eq!(first, again);
    assert_eq!(used.file, used2.file);
    // Changed bytes: another key, so Require refuses again instead of using stale embeddings.
    std::fs::write(&imgs[1], [9u8; 8]).unwrap();
    assert!(rices::embed_cached_with(&mut e, &imgs, &cache, ContentHash::Bytes, 2, CachePolicy::Require).is_err());
    assert_eq!(e.0, 3);
}
