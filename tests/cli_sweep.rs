//! `run` over several benchmarks in one command, with seeds, generation overrides and a fractional limit
//! from the command line (recorded in run.json, part of the run's identity), and the progress lines written
//! when stderr is not a terminal.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .arg("run")
        .arg("--model")
        .arg(repo().join("tests/fixtures/models/tiny-gptneox"))
        .args(["--threads", "1", "--bootstrap-resamples", "20", "--batch-size", "4"])
        .args(args)
        .output()
        .unwrap()
}

fn bench(name: &str) -> String {
    repo().join("benchmarks").join(format!("{name}.yaml")).display().to_string()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("samples.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn several_benchmarks_one_folder_each_a_failure_does_not_lose_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("res");
    // A benchmark that parses but whose data is missing, first: the others still run.
    let broken = tmp.path().join("broken.yaml");
    let s = std::fs::read_to_string(bench("demo_vqa")).unwrap().replace("name: demo_vqa", "name: broken").replace("../data/demo", "/nonexistent/demo")
        .replace("../prompts/", &format!("{}/", repo().join("prompts").display()));
    std::fs::write(&broken, s).unwrap();
    let list = format!("{},{}", bench("demo_vqa"), bench("demo_hateful"));
    let o = run(&[
        "--benchmark", broken.to_str().unwrap(), "--benchmark", &list, "--out", out.to_str().unwrap(),
        "--shots", "0", "--seeds", "1,2", "--limit", "0.25", "--progress-interval", "0",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "the worst exit status (a configuration error): {t}");
    assert!(t.contains("/nonexistent/demo") && t.contains("[exit 2]") && t.contains("[exit 0]"), "{t}");
    assert!(!out.join("broken-tiny-gptneox").join("samples.jsonl").exists());
    let mut evaluated = 0;
    for (name, n_query) in [("demo_vqa", 12usize), ("demo_hateful", 0)] {
        let dir = out.join(format!("{name}-tiny-gptneox"));
        let id = json(&dir.join("run.json"));
        assert_eq!(id["trial_seeds"], serde_json::json!([1, 2]), "{name}: --seeds replaces trials.seeds");
        let recs = records(&dir);
        let limit = id["limit"].as_u64().unwrap() as usize;
        if n_query > 0 {
            assert_eq!(limit, 3, "ceil(0.25 × 12)");
        }
        assert_eq!(recs.len(), 2 * limit, "{name}: 2 trials × the limit");
        for r in &recs {
            assert!(r["trial_seed"] == 1 || r["trial_seed"] == 2, "{r}");
        }
        if name == "demo_vqa" {
            // The limited samples are the first ones in evaluation order (here: the questions file's order).
            let q = json(&repo().join("data/demo/vqa_val_questions.json"));
            let first: Vec<String> = q["questions"].as_array().unwrap()[..3].iter().map(|x| x["question_id"].to_string()).collect();
            for trial in [0, 1] {
                let got: Vec<String> = recs.iter().filter(|r| r["trial"] == trial).map(|r| r["sample_id"].as_str().unwrap().to_string()).collect();
                assert_eq!(got, first, "trial {trial}");
            }
        }
        let summary = json(&dir.join("summary.json"));
        assert_eq!(summary["provenance"]["overrides"]["seeds"], serde_json::json!([1, 2]));
        assert_eq!(summary["provenance"]["overrides"]["limit"]["given"], "0.25");
        evaluated += recs.len();
    }
    // Progress: plain lines (stderr is not a terminal), one per batch with --progress-interval 0, counting
    // the whole sweep; a last line with the total.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("progress: sweep ") && !l.contains("finished")).collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(lines.iter().all(|l| l.contains("samples/s") || l.contains("s/sample")), "{stderr}");
    assert!(lines.last().unwrap().contains(&format!("sweep {evaluated}/{evaluated} samples (100.0%)")), "{stderr}");
    assert!(stderr.contains(&format!("progress: sweep finished: {evaluated} sample(s) evaluated")), "{stderr}");
    assert!(lines.iter().any(|l| l.contains("benchmark 3/3")), "{stderr}");
    // The overall total covers the benchmarks not started yet: the first line already counts all of them.
    assert!(lines[0].contains(&format!("/{evaluated} samples")), "{stderr}");
}

#[test]
fn seeds_gen_and_limit_are_part_of_the_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a");
    let o_ = out.to_str().unwrap();
    let b = bench("demo_vqa");
    let o = run(&["--benchmark", &b, "--out", o_, "--shots", "0", "--limit", "2", "--gen", "max_new_tokens=2,num_beams=1", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = json(&out.join("run.json"));
    assert_eq!(id["generation_overrides"], serde_json::json!({"max_new_tokens": 2, "num_beams": 1}));
    assert_eq!(id["trial_seeds"], serde_json::json!([42]));
    for r in records(&out) {
        assert!(r["tokens"].as_array().unwrap().len() <= 2, "max_new_tokens=2: {r}");
    }
    // The same command resumes; without --gen, or with other seeds, the folder is another run's.
    let o = run(&["--benchmark", &b, "--out", o_, "--shots", "0", "--limit", "2", "--gen", "num_beams=1", "--gen", "max_new_tokens=2", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 sample(s) evaluated (2 resumed)"), "{}", text(&o));
    let o = run(&["--benchmark", &b, "--out", o_, "--shots", "0", "--limit", "2", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("generation overrides (--gen)"), "{}", text(&o));
    let o = run(&["--benchmark", &b, "--out", o_, "--shots", "0", "--limit", "2", "--gen", "max_new_tokens=2,num_beams=1", "--seed", "7", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("trial seeds"), "{}", text(&o));
    // A fractional limit resolving to the same count is the same run (resumes).
    // 17% of 12 = ceil(2.04) = 3 samples: another run.
    let o = run(&["--benchmark", &b, "--out", o_, "--shots", "0", "--limit", "17%", "--gen", "max_new_tokens=2,num_beams=1", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&["--benchmark", &b, "--out", o_, "--shots", "0", "--limit", "0.16", "--gen", "max_new_tokens=2,num_beams=1", "-q"]);
    assert_eq!(o.status.code(), Some(0), "ceil(0.16 × 12) = 2: {}", text(&o));
    // Bad overrides are usage errors naming the fix.
    for (flags, want) in [
        (vec!["--gen", "beams=1"], "unknown field `beams`"),
        (vec!["--gen", "num_beams=0"], "generation.num_beams"),
        (vec!["--gen", "num_beams"], "KEY=VALUE"),
        (vec!["--seeds", "1,1"], "listed twice"),
        (vec!["--limit", "1.5"], "at most 1"),
    ] {
        let mut args = vec!["--benchmark", b.as_str(), "--out", o_, "-q"];
        args.extend(flags.iter().copied());
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{flags:?}: {want} not in {}", text(&o));
    }
    let o = run(&["--benchmark", &bench("demo_hateful"), "--out", tmp.path().join("h").to_str().unwrap(), "--gen", "num_beams=1", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("task: generate"), "{}", text(&o));
    // --trials (old spelling of --num-trials) still works, with a warning.
    let o = run(&["--benchmark", &b, "--out", tmp.path().join("t").to_str().unwrap(), "--shots", "0", "--limit", "1", "--trials", "1", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("--trials N is deprecated"), "{}", text(&o));
}

#[test]
fn prompts_take_the_same_seeds_and_fractional_limit() {
    let o = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .args(["prompts", "--benchmark", &bench("demo_vqa"), "--shots", "0,4", "--seeds", "5,6", "--limit", "25%"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    let heads: Vec<&str> = t.lines().filter(|l| l.starts_with("=== ")).collect();
    assert_eq!(heads.len(), 2 * 2 * 3, "2 shot counts × 2 seeds × ceil(25% of 12): {t}");
    assert!(heads.iter().all(|h| h.contains("(seed 5)") || h.contains("(seed 6)")), "{t}");
    assert!(heads.iter().any(|h| h.contains("trial 1 (seed 6)")), "{t}");
}

#[test]
fn progress_lines_come_every_interval_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    // Lines from the background ticker (interval 50 ms, a run of several hundred ms per stage), never bars.
    let o = run(&["--benchmark", &bench("demo_vqa"), "--out", tmp.path().join("p").to_str().unwrap(), "--progress-interval", "0.05", "--limit", "6"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    let ticks: Vec<&str> = e.lines().filter(|l| l.starts_with("progress: sweep ") && !l.contains("finished")).collect();
    assert!(!ticks.is_empty(), "{e}");
    assert!(ticks.iter().all(|l| l.contains("/12 samples") && l.contains("eta ")), "{e}");
    assert!(ticks.iter().any(|l| l.contains(" | demo_vqa shot ")), "the current stage is named: {e}");
    assert!(e.contains("demo_vqa shot 4 trial 0: 6 sample(s) done") && e.contains("progress: sweep finished: 12 sample(s)"), "{e}");
    assert!(!e.contains('\r') && !e.contains("\x1b["), "no terminal control characters in a log: {e}");
    // --quiet: only the stage lines.
    let o = run(&["--benchmark", &bench("demo_vqa"), "--out", tmp.path().join("q").to_str().unwrap(), "--progress-interval", "0", "--limit", "2", "--shots", "0", "-q"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("progress:") && e.contains("demo_vqa shot 0 trial 0: 2 sample(s) done"), "{e}");
}
