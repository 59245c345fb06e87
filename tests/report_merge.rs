//! Sharding: `run --shard I/N` on the demo benchmarks, `merge` of the shards == the unsharded run (samples
//! and run.json byte for byte, every summary number), refusals of mismatched shards, environment defaults
//! (Slurm job arrays, Kubernetes Indexed Jobs), and test-server exports.

mod common;

use common::repo;
use flamingo_eval::cli::run::resolve_shard;
use flamingo_eval::engine::run::Shard;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flamingo-eval"))
}

fn fe(args: &[&str]) -> std::process::Output {
    Command::new(bin()).current_dir(repo()).args(args).output().unwrap()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn run(bench: &str, out: &Path, extra: &[&str]) {
    let b = format!("benchmarks/{bench}.yaml");
    let mut args = vec!["run", "--model", "tests/fixtures/models/tiny-gptneox", "--benchmark", &b, "--out", out.to_str().unwrap(), "--quiet", "--threads", "1"];
    args.extend_from_slice(extra);
    ok(fe(&args));
}

fn summary_without_provenance(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("provenance");
    v
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let t = tempfile::tempdir().unwrap();
    for (bench, n) in [("demo_vqa", 3), ("demo_hateful", 2), ("demo_coco", 5)] {
        let full = t.path().join("full").join(bench);
        run(bench, &full, &[]);
        let sharded = t.path().join("sharded").join(bench);
        let mut dirs = Vec::new();
        for i in 0..n {
            run(bench, &sharded, &["--shard", &format!("{i}/{n}")]);
            dirs.push(sharded.join(format!("shard-{i}-of-{n}")));
        }
        // Shards are disjoint and non-trivial.
        let counts: Vec<usize> = dirs.iter().map(|d| std::fs::read_to_string(d.join("samples.jsonl")).unwrap().lines().count()).collect();
        let mut args = vec!["merge".to_string(), "--results".to_string()];
        args.extend(dirs.iter().rev().map(|d| d.display().to_string()));
        ok(fe(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
        for f in ["samples.jsonl", "run.json", "summary.csv"] {
            assert_eq!(std::fs::read(full.join(f)).unwrap(), std::fs::read(sharded.join(f)).unwrap(), "{bench}: {f} differs");
        }
        assert_eq!(counts.iter().sum::<usize>(), std::fs::read_to_string(full.join("samples.jsonl")).unwrap().lines().count());
        assert_eq!(summary_without_provenance(&full), summary_without_provenance(&sharded), "{bench}: summary differs");
        assert!(sharded.join("merge.json").is_file());
    }
}

#[test]
fn mismatched_shards_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    run("demo_vqa", &a, &["--shard", "0/2"]);
    run("demo_vqa", &a, &["--shard", "1/2"]);
    let b = t.path().join("b");
    run("demo_vqa", &b, &["--shard", "1/2", "--limit", "6"]);
    let s = |d: &Path, i: usize| d.join(format!("shard-{i}-of-2")).display().to_string();
    let err = |o: std::process::Output| {
        assert_eq!(o.status.code(), Some(2));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = err(fe(&["merge", "--results", &s(&a, 0)]));
    assert!(e.contains("shard(s) 1/2 missing"), "{e}");
    let e = err(fe(&["merge", "--results", &s(&a, 0), &s(&b, 1), "--out", t.path().join("m").to_str().unwrap()]));
    assert!(e.contains("shards of different runs"), "{e}");
    let e = err(fe(&["merge", "--results", &s(&a, 0), &s(&a, 0), &s(&a, 1)]));
    assert!(e.contains("given twice"), "{e}");
    // An unfinished shard (a record lost) is refused, naming the fix.
    let p = a.join("shard-1-of-2/samples.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let e = err(fe(&["merge", "--results", &s(&a, 0), &s(&a, 1)]));
    assert!(e.contains("incomplete") && e.contains("rerun"), "{e}");
    // An unsharded folder is not a shard.
    let full = t.path().join("full");
    run("demo_hateful", &full, &[]);
    let e = err(fe(&["merge", "--results", full.to_str().unwrap()]));
    assert!(e.contains("not a shard"), "{e}");
}

#[test]
fn shard_defaults_come_from_slurm_and_kubernetes() {
    let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string());
    let sh = |i, n| Some(Shard { index: i, count: n });
    assert_eq!(resolve_shard(None, None, &env(&[])).unwrap(), None);
    assert_eq!(resolve_shard(Some("2/5"), None, &env(&[("SLURM_ARRAY_TASK_ID", "1")])).unwrap(), sh(2, 5));
    assert_eq!(resolve_shard(None, None, &env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "8")])).unwrap(), sh(3, 8));
    assert!(resolve_shard(None, None, &env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "8"), ("SLURM_ARRAY_TASK_MIN", "1")])).is_err());
    // A failed task resubmitted alone (`sbatch --array=1`) is an array of one task: the explicit count wins.
    assert!(resolve_shard(None, None, &env(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "1"), ("SLURM_ARRAY_TASK_MIN", "1")])).is_err());
    assert_eq!(resolve_shard(None, Some(3), &env(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "1"), ("SLURM_ARRAY_TASK_MIN", "1")])).unwrap(), sh(1, 3));
    let retry = &[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "1"), ("SLURM_ARRAY_TASK_MIN", "1"), ("FLAMINGO_EVAL_SHARDS", "3")];
    assert_eq!(resolve_shard(None, None, &env(retry)).unwrap(), sh(1, 3));
    assert_eq!(resolve_shard(None, Some(4), &env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap(), sh(0, 4));
    assert_eq!(resolve_shard(None, None, &env(&[("JOB_COMPLETION_INDEX", "2"), ("FLAMINGO_EVAL_SHARDS", "3")])).unwrap(), sh(2, 3));
    let e = resolve_shard(None, None, &env(&[("JOB_COMPLETION_INDEX", "2")])).unwrap_err().to_string();
    assert!(e.contains("--shard-count"), "{e}");
    for bad in ["3/3", "1", "a/2", "0/0"] {
        assert!(resolve_shard(Some(bad), None, &env(&[])).is_err(), "{bad}");
    }
}

#[test]
fn vqav2_and_vizwiz_exports_cover_every_question() {
    let t = tempfile::tempdir().unwrap();
    let run_dir = repo().join("tests/fixtures/results/tiny-gptneox-demo/demo_vqa");
    let questions = repo().join("data/demo/vqa_val_questions.json");
    let out = t.path().join("vqav2.json");
    ok(fe(&["export", "vqav2", "--results", run_dir.to_str().unwrap(), "--questions", questions.to_str().unwrap(), "--shot", "4", "--out", out.to_str().unwrap()]));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let q: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&questions).unwrap()).unwrap();
    let n = q["questions"].as_array().unwrap().len();
    assert_eq!(v.as_array().unwrap().len(), n);
    assert!(v[0]["question_id"].is_i64() && v[0]["answer"].is_string());
    // A questions file with one more question: refused, naming it.
    let mut q2 = q.clone();
    q2["questions"].as_array_mut().unwrap().push(serde_json::json!({"question_id": 999999999, "image_id": 1, "question": "?"}));
    let qp = t.path().join("q2.json");
    std::fs::write(&qp, q2.to_string()).unwrap();
    let o = fe(&["export", "vqav2", "--results", run_dir.to_str().unwrap(), "--questions", qp.to_str().unwrap(), "--shot", "4", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("999999999"));
    // VizWiz: [{image, answer}] keyed by the query image's file name (test.json layout: [{image, question}]).
    let images: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["shot"] == 0)
        .map(|r| {
            let p = r["media"].as_array().unwrap().last().unwrap()[0].as_str().unwrap().to_string();
            Path::new(&p).file_name().unwrap().to_string_lossy().to_string()
        })
        .map(|f| serde_json::json!({"image": f, "question": "?"}))
        .collect();
    let mut uniq = images.clone();
    uniq.dedup();
    if uniq.len() == images.len() {
        let tp = t.path().join("test.json");
        std::fs::write(&tp, serde_json::Value::Array(images.clone()).to_string()).unwrap();
        let out = t.path().join("vizwiz.json");
        ok(fe(&["export", "vizwiz", run_dir.to_str().unwrap(), "--questions", tp.to_str().unwrap(), "--shot", "0", "--out", out.to_str().unwrap()]));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), images.len());
        assert!(v[0]["image"].is_string() && v[0]["answer"].is_string());
    } else {
        // The demo asks several questions per image: VizWiz's one-question-per-image key refuses duplicates.
        let tp = t.path().join("test.json");
        std::fs::write(&tp, serde_json::Value::Array(images).to_string()).unwrap();
        let o = fe(&["export", "vizwiz", run_dir.to_str().unwrap(), "--questions", tp.to_str().unwrap(), "--shot", "0", "--out", t.path().join("v.json").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("two records answer"));
    }
}
