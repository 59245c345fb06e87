//! `compare` verdicts on constructed regressions and non-regressions (from the committed baseline), exit
//! codes of the CLI, incomparable inputs, and JUnit XML validity (xmllint against tests/fixtures/results/junit.xsd).

mod common;

use common::repo;
use flamingo_eval::report::compare::{compare, CompareConfig, Verdict};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_run(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for f in ["run.json", "samples.jsonl", "summary.json", "summary.csv"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
}

fn baseline(name: &str) -> PathBuf {
    repo().join("tests/fixtures/results/tiny-gptneox-demo").join(name)
}

/// Rewrites every record of samples.jsonl with `f`.
fn edit_records(dir: &Path, f: impl Fn(usize, &mut Value) -> bool) {
    let p = dir.join("samples.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if f(i, &mut v) {
            out.push_str(&serde_json::to_string(&v).unwrap());
            out.push('\n');
        }
    }
    std::fs::write(p, out).unwrap();
}

fn cfg() -> CompareConfig {
    CompareConfig { resamples: 500, ..Default::default() }
}

#[test]
fn identical_runs_are_no_regression() {
    let c = compare(&repo().join("tests/fixtures/results/tiny-gptneox-demo"), &repo().join("tests/fixtures/results/tiny-gptneox-demo"), &cfg()).unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.markdown());
    assert_eq!(c.rows.len(), 6);
    for r in &c.rows {
        assert_eq!(r.delta, 0.0);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.verdict, Verdict::NoSignificantChange);
    }
}

#[test]
fn vqa_drop_is_a_regression_and_a_rise_is_not() {
    let t = tempfile::tempdir().unwrap();
    let (good, bad) = (t.path().join("good"), t.path().join("bad"));
    copy_run(&baseline("demo_vqa"), &good);
    copy_run(&baseline("demo_vqa"), &bad);
    // The "good" run answers everything right at 0 shots.
    edit_records(&good, |_, v| {
        if v["shot"] == 0 {
            v["metric"] = 1.0.into();
        }
        true
    });
    let c = compare(&good, &bad, &cfg()).unwrap();
    assert_eq!(c.exit_code(), 1, "{}", c.markdown());
    let r0 = c.rows.iter().find(|r| r.shot == 0).unwrap();
    assert_eq!(r0.verdict, Verdict::Regression);
    assert!((r0.delta + 100.0).abs() < 1e-9);
    assert!(r0.p_value < 0.01);
    assert_eq!(c.rows.iter().find(|r| r.shot == 4).unwrap().verdict, Verdict::NoSignificantChange);
    assert!(c.markdown().contains("❌ regression"));
    // The other way round it is an improvement.
    let c = compare(&bad, &good, &cfg()).unwrap();
    assert_eq!(c.exit_code(), 0);
    assert_eq!(c.rows.iter().find(|r| r.shot == 0).unwrap().verdict, Verdict::Improvement);
    // A small drop (one question of twelve at 0.3 → 0) is within a 5-point threshold... and not significant.
    let small = t.path().join("small");
    copy_run(&baseline("demo_vqa"), &small);
    edit_records(&small, |i, v| {
        if i == 0 {
            v["metric"] = 0.3.into();
        }
        true
    });
    let c = compare(&small, &bad, &CompareConfig { max_drop: 5.0, ..cfg() }).unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.markdown());
}

#[test]
fn cider_regression_is_found_by_resampling_images() {
    let t = tempfile::tempdir().unwrap();
    let (good, bad) = (t.path().join("good"), t.path().join("bad"));
    copy_run(&baseline("demo_coco"), &good);
    copy_run(&baseline("demo_coco"), &bad);
    // Predictions equal to a reference caption score high CIDEr.
    edit_records(&good, |_, v| {
        v["prediction"] = v["target"]["references"][0].clone();
        true
    });
    let c = compare(&good, &bad, &cfg()).unwrap();
    assert!(c.rows.iter().all(|r| r.verdict == Verdict::Regression && r.delta < -50.0), "{}", c.markdown());
    assert_eq!(c.exit_code(), 1);
}

#[test]
fn incomparable_inputs_say_why() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    copy_run(&baseline("demo_vqa"), &a);
    // A different sample set.
    let fewer = t.path().join("fewer");
    copy_run(&baseline("demo_vqa"), &fewer);
    edit_records(&fewer, |i, _| i != 3);
    let c = compare(&a, &fewer, &cfg()).unwrap();
    assert_eq!(c.exit_code(), 2);
    assert!(c.incomparable[0].reason.contains("different sample sets"), "{}", c.incomparable[0].reason);
    // A different benchmark file.
    let other = t.path().join("other");
    copy_run(&baseline("demo_vqa"), &other);
    let p = other.join("run.json");
    let mut id: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    id["benchmark_sha256"] = "0".repeat(64).into();
    std::fs::write(&p, serde_json::to_string_pretty(&id).unwrap()).unwrap();
    let c = compare(&a, &other, &cfg()).unwrap();
    assert_eq!(c.exit_code(), 2);
    assert!(c.incomparable[0].reason.contains("different benchmark files"));
    // A benchmark missing from the candidate.
    let c = compare(&repo().join("tests/fixtures/results/tiny-gptneox-demo"), &a, &cfg()).unwrap();
    assert_eq!(c.exit_code(), 2);
    assert!(c.incomparable.iter().any(|i| i.benchmark == "demo_coco" && i.reason.contains("no results for this benchmark")));
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flamingo-eval"))
}

#[test]
fn cli_exit_codes_and_valid_junit() {
    let t = tempfile::tempdir().unwrap();
    let (good, bad) = (t.path().join("good"), t.path().join("bad"));
    copy_run(&baseline("demo_hateful"), &good);
    copy_run(&baseline("demo_hateful"), &bad);
    edit_records(&bad, |i, v| {
        if i % 2 == 0 {
            v["error"] = "constructed failure".into();
            v["metric"] = Value::Null;
        }
        true
    });
    let fewer = t.path().join("fewer");
    copy_run(&baseline("demo_hateful"), &fewer);
    edit_records(&fewer, |i, _| i != 1);
    let schema = repo().join("tests/fixtures/results/junit.xsd");
    let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    for (cand, code) in [(&good, 0), (&bad, 1), (&fewer, 2)] {
        let junit = t.path().join(format!("junit{code}.xml"));
        let out = Command::new(bin())
            .args(["compare", good.to_str().unwrap(), cand.to_str().unwrap(), "--bootstrap-resamples", "200", "--junit", junit.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.starts_with("<?xml"));
        if code == 1 {
            assert!(xml.contains("<failure"), "{xml}");
        }
        if code == 2 {
            assert!(xml.contains("<error"), "{xml}");
        }
        if xmllint {
            let v = Command::new("xmllint").args(["--noout", "--schema", schema.to_str().unwrap(), junit.to_str().unwrap()]).output().unwrap();
            assert!(v.status.success(), "JUnit XML does not validate:\n{}\n{xml}", String::from_utf8_lossy(&v.stderr));
        } else {
            eprintln!("SKIPPED schema validation: xmllint not installed (apt-get install libxml2-utils)");
        }
    }
}
