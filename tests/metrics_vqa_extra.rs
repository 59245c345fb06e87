//! VQA: questions with fewer than 10 answers (the formula kept, a loud warning, `answers_per_question`
//! checked) and `flamingo-eval normalize vqa`, against the official vqaEval.py and OpenFlamingo's copy
//! (expected values from scripts/metrics_reference/gen_vqa_extra.py; OpenFlamingo's copy is also run live by
//! export/tests/test_metric_oracles.py).

mod common;
mod metrics_common;

use flamingo_eval::benchmark::Benchmark;
use flamingo_eval::metrics::vqa::{few_answers_warning, max_accuracy_with_answers, rounded_percent, vqa_accuracy_records, GtAnswer, VqaMode};
use metrics_common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn few_answers_score_as_the_reference_evaluators_do() {
    let cases = read_json(&fixture("vqa/few_answers_expected.json"));
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 80);
    for c in cases {
        let answers: Vec<GtAnswer> = c["answers"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, a)| GtAnswer { answer: a.as_str().unwrap().to_string(), identity: format!("id{i}") })
            .collect();
        let pred = c["prediction"].as_str().unwrap();
        for (mode, key) in [(VqaMode::Official, "official"), (VqaMode::OpenFlamingo, "openflamingo")] {
            let got = rounded_percent(vqa_accuracy_records(pred, &answers, mode));
            assert_eq!(got, c[key].as_f64().unwrap(), "{key}: {pred:?} vs {:?}", c["answers"]);
        }
    }
    // the ceiling the warning states is the evaluators' score of a perfect prediction on unanimous answers
    for c in cases.iter().filter(|c| c["prediction"] == "dog" && c["answers"].as_array().unwrap().iter().all(|a| a == "dog")) {
        let k = c["answers"].as_array().unwrap().len();
        assert_eq!(rounded_percent(max_accuracy_with_answers(k)), c["official"].as_f64().unwrap(), "k = {k}");
    }
}

#[test]
fn the_warning_says_how_many_what_the_formula_does_and_what_to_use() {
    assert_eq!(few_answers_warning([10, 10, 0], None), None);
    let w = few_answers_warning([1, 1, 3, 10, 10], None).unwrap();
    for needle in ["3 of 5 questions", "2 with 1 answer (a perfect prediction scores 0.0%)", "1 with 3 answers (a perfect prediction scores 66.7%)", "always scores 0", "exact_match"] {
        assert!(w.contains(needle), "{needle:?} not in {w}");
    }
}

/// demo_vqa with its query annotations edited by `edit` and `extra` appended to the metric block.
fn demo_vqa_with(dir: &Path, edit: impl Fn(&mut serde_json::Value), extra: &str) -> PathBuf {
    let root = common::repo();
    let mut ann: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("data/demo/vqa_val_annotations.json")).unwrap()).unwrap();
    edit(&mut ann);
    let ann_path = dir.join("val_annotations.json");
    std::fs::write(&ann_path, serde_json::to_string(&ann).unwrap()).unwrap();
    let text = std::fs::read_to_string(root.join("benchmarks/demo_vqa.yaml"))
        .unwrap()
        .replace("../prompts/", &format!("{}/prompts/", root.display()))
        .replace("../data/demo/vqa_val_annotations.json", &ann_path.display().to_string())
        .replace("../data/", &format!("{}/data/", root.display()))
        .replace("  mode: official", &format!("  mode: official\n{extra}"));
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn one_answer_first_question(ann: &mut serde_json::Value) {
    let a = &mut ann["annotations"][0]["answers"];
    let first = a[0].clone();
    *a = serde_json::json!([first]);
}

#[test]
fn benchmarks_warn_and_check_a_declared_answer_count() {
    let d = tempfile::tempdir().unwrap();
    let b = Benchmark::load(&demo_vqa_with(d.path(), |_| {}, "")).unwrap();
    assert_eq!(b.few_answers_warning(), None, "demo_vqa has 10 answers per question");
    let b = Benchmark::load(&demo_vqa_with(d.path(), |_| {}, "  answers_per_question: 10")).unwrap();
    assert_eq!(b.few_answers_warning(), None);

    let b = Benchmark::load(&demo_vqa_with(d.path(), one_answer_first_question, "")).unwrap();
    let n = b.query.len();
    let w = b.few_answers_warning().expect("a warning");
    assert!(w.contains(&format!("1 of {n} questions")) && w.contains("exact_match"), "{w}");

    let e = format!("{:#}", Benchmark::load(&demo_vqa_with(d.path(), one_answer_first_question, "  answers_per_question: 10")).err().unwrap());
    assert!(e.contains("has 1 answers") && e.contains("answers_per_question declares 10") && e.contains("val_annotations.json"), "{e}");

    // declared 1 (a one-answer set): accepted, and the warning still says what the formula does with it
    let all_one = |ann: &mut serde_json::Value| {
        for q in ann["annotations"].as_array_mut().unwrap() {
            let first = q["answers"][0].clone();
            q["answers"] = serde_json::json!([first]);
        }
    };
    let b = Benchmark::load(&demo_vqa_with(d.path(), all_one, "  answers_per_question: 1")).unwrap();
    let w = b.few_answers_warning().unwrap();
    assert!(w.contains(&format!("{n} of {n} questions")) && w.contains("declared: metric.answers_per_question: 1"), "{w}");

    let e = format!("{:#}", Benchmark::load(&demo_vqa_with(d.path(), |_| {}, "  answers_per_question: 0")).err().unwrap());
    assert!(e.contains("answers_per_question: must be at least 1"), "{e}");
}

fn normalize(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .args(["normalize", "vqa"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn normalize_vqa_prints_what_the_official_evaluator_compares() {
    let cases = read_json(&fixture("vqa/normalize_expected.json"));
    let cases = cases.as_array().unwrap();
    let input: String = cases.iter().map(|c| format!("{}\n", c["answer"].as_str().unwrap())).collect();
    for (args, key) in [(&[][..], "official"), (&["--unanimous"][..], "official_unanimous"), (&["--mode", "openflamingo"][..], "openflamingo")] {
        let out = normalize(args, &input);
        let lines: Vec<&str> = out.strip_suffix('\n').unwrap().split('\n').collect();
        assert_eq!(lines.len(), cases.len(), "{key}");
        for (c, got) in cases.iter().zip(lines) {
            assert_eq!(got, c[key].as_str().unwrap(), "{key}: {:?}", c["answer"]);
        }
    }
}
