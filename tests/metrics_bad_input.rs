//! Bad input to `flamingo-eval score` and the file readers: clear errors naming file and record, or the
//! official tool's result where it accepts the input.
mod metrics_common;
use flamingo_eval::metrics::formats;
use flamingo_eval::metrics::vqa::VqaMode;
use metrics_common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const ANN: &str = r#"{"images":[{"id":1},{"id":2}],"annotations":[
 {"image_id":1,"caption":"A cat on a mat."},{"image_id":1,"caption":"A cat sitting."},
 {"image_id":2,"caption":"A dog in the park."},{"image_id":2,"caption":"Two dogs running."}]}"#;

fn caption_err(res: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let a = write(d.path(), "ann.json", ANN);
    let r = write(d.path(), "res.json", res);
    match formats::read_caption_files(&a, &r) {
        Ok(_) => "OK".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn caption_errors_name_file_and_record() {
    let e = caption_err("[{\"image_id\": 1, \"caption\": \"x\"");
    assert!(e.contains("res.json") && e.contains("malformed JSON"), "{e}");
    let e = caption_err(r#"[{"image_id":1,"caption":"a"},{"image_id":99,"caption":"b"}]"#);
    assert!(e.contains("res.json") && e.contains("result #1") && e.contains("99"), "{e}");
    let e = caption_err(r#"[{"image_id":1,"caption":"a"},{"image_id":1,"caption":"b"}]"#);
    assert!(e.contains("duplicate image_id 1") && e.contains("result #1"), "{e}");
    let e = caption_err(r#"[{"image_id":1}]"#);
    assert!(e.contains("result #0") && e.contains("missing field \"caption\""), "{e}");
    let e = caption_err(r#"[{"caption":"a"}]"#);
    assert!(e.contains("missing field \"image_id\""), "{e}");
    let e = caption_err(r#"{"image_id":1}"#);
    assert!(e.contains("array"), "{e}");
    let e = caption_err(r#"[{"image_id":1,"caption":5}]"#);
    assert!(e.contains("must be a string"), "{e}");
}

#[test]
fn empty_caption_scores_like_the_official_tool() {
    // pycocoevalcap accepts an empty candidate (its tokenized form is ""); we score it the same way
    assert_eq!(caption_err(r#"[{"image_id":1,"caption":"   "},{"image_id":2,"caption":"a dog"}]"#), "OK");
    let s = flamingo_eval::metrics::caption::CaptionSample::from_raw("1", "  ", &["a cat"]);
    assert_eq!(s.candidate, "");
    let r = flamingo_eval::metrics::caption::rouge_l(&[s.clone()]);
    assert_eq!(r.corpus, 0.0);
    let b = flamingo_eval::metrics::caption::bleu(&[s]);
    assert!(b.corpus[0] < 1e-5);
}

#[test]
fn vqa_errors() {
    let d = tempfile::tempdir().unwrap();
    let q = write(d.path(), "q.json", r#"{"questions":[{"question_id":1},{"question_id":2}]}"#);
    let ans = |a: &str| format!(r#"{{"question_id":{a},"question_type":"what","answers":[{{"answer":"yes","answer_id":1}},{{"answer":"no","answer_id":2}}]}}"#);
    let a = write(d.path(), "a.json", &format!(r#"{{"annotations":[{},{}]}}"#, ans("1"), ans("2")));
    let run = |res: &str, mode| {
        let r = write(d.path(), "r.json", res);
        formats::read_vqa_files(&q, &a, &r, mode).map(|_| ()).map_err(|e| e.to_string())
    };
    let e = run(r#"[{"question_id":1,"answer":"yes"}]"#, VqaMode::Official).unwrap_err();
    assert!(e.contains("r.json") && e.contains("official mode") && e.contains("question_id 2"), "{e}");
    assert!(run(r#"[{"question_id":1,"answer":"yes"}]"#, VqaMode::OpenFlamingo).is_ok());
    let e = run(r#"[{"question_id":1,"answer":"yes"},{"question_id":1,"answer":"no"}]"#, VqaMode::OpenFlamingo).unwrap_err();
    assert!(e.contains("duplicate question_id 1") && e.contains("result #1"), "{e}");
    let e = run(r#"[{"question_id":7,"answer":"yes"}]"#, VqaMode::OpenFlamingo).unwrap_err();
    assert!(e.contains("result #0") && e.contains("question_id 7"), "{e}");
    let e = run(r#"[{"question_id":1}]"#, VqaMode::OpenFlamingo).unwrap_err();
    assert!(e.contains("missing field \"answer\""), "{e}");
    let e = run("not json", VqaMode::OpenFlamingo).unwrap_err();
    assert!(e.contains("malformed JSON"), "{e}");
    // missing question_type / answer_type still score
    let a2 = write(d.path(), "a2.json", r#"{"annotations":[{"question_id":1,"answers":[{"answer":"yes"}]},{"question_id":2,"answers":[{"answer":"no"}]}]}"#);
    let r = write(d.path(), "r2.json", r#"[{"question_id":1,"answer":"yes"},{"question_id":2,"answer":"no"}]"#);
    let items = formats::read_vqa_files(&q, &a2, &r, VqaMode::Official).unwrap();
    let rep = flamingo_eval::metrics::vqa::evaluate_vqa(&items, VqaMode::Official);
    assert!(rep.per_question_type.is_empty() && rep.per_answer_type.is_empty());
}

#[test]
fn classification_errors() {
    let d = tempfile::tempdir().unwrap();
    let e = formats::read_classification(&write(d.path(), "c.json", r#"[{"id":1,"label":1,"score":"NaN"}]"#)).unwrap_err().to_string();
    assert!(e.contains("c.json") && e.contains("record #0") && e.contains("finite"), "{e}");
    let e = formats::read_classification(&write(d.path(), "c.csv", "id,label,score\na,1,0.5\nb,0,nan\n")).unwrap_err().to_string();
    assert!(e.contains("c.csv") && e.contains("record #1") && e.contains("finite"), "{e}");
    let e = formats::read_classification(&write(d.path(), "d.csv", "id,label,score\na,1,0.5\na,0,0.4\n")).unwrap_err().to_string();
    assert!(e.contains("duplicate id a"), "{e}");
    let recs = formats::read_classification(&write(d.path(), "s.csv", "id,label,score\na,1,0.5\nb,1,0.4\n")).unwrap();
    assert_eq!(recs.len(), 2);
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
}

/// One class: ROC-AUC is undefined (scikit-learn returns NaN with a warning): printed as "undefined",
/// with the reason, never as a number (export/tests/test_metric_oracles.py checks the claim about sklearn).
#[test]
fn cli_single_class_auc_is_undefined() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "s.csv", "id,label,score\na,1,0.5\nb,1,0.4\n");
    let out = bin().args(["score", "classification", "--input"]).arg(&p).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only one class") && err.contains("s.csv") && err.contains("returns NaN"), "{err}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("on 2 samples: undefined"), "{table}");
    let out = bin().args(["score", "classification", "--format", "json", "--input"]).arg(&p).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["roc_auc"].is_null() && v["roc_auc_undefined"].as_str().unwrap().contains("all labels are positive"), "{v}");
}

#[test]
fn cli_caption_json_and_table() {
    let out = bin()
        .args(["score", "caption", "--format", "json", "--bootstrap-resamples", "50", "--annotations"])
        .arg(fixture("caption/fakecap134/annotations.json"))
        .arg("--results")
        .arg(fixture("caption/fakecap134/results.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = read_json(&fixture("caption/fakecap134_expected.json"));
    for k in ["CIDEr", "Bleu_4", "ROUGE_L"] {
        assert_close(v[k].as_f64().unwrap(), e[k].as_f64().unwrap(), 1e-12, k);
        let ci = &v["confidence_intervals"][k];
        assert!(ci["low"].as_f64().unwrap() <= ci["high"].as_f64().unwrap());
    }
    assert_eq!(v["not_computed"], serde_json::json!(["METEOR", "SPICE"]));
    let out = bin()
        .args(["score", "caption", "--bootstrap-resamples", "0", "--annotations"])
        .arg(fixture("caption/fakecap134/annotations.json"))
        .arg("--results")
        .arg(fixture("caption/fakecap134/results.json"))
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("CIDEr") && t.contains("METEOR and SPICE are not computed") && t.contains("pycocoevalcap"), "{t}");
}

#[test]
fn cli_vqa_json() {
    let out = bin()
        .args(["score", "vqa", "--format", "json", "--mode", "official", "--bootstrap-resamples", "20", "--questions"])
        .arg(fixture("vqa/vizwiz_sub150_questions.json"))
        .arg("--annotations")
        .arg(fixture("vqa/vizwiz_sub150_annotations.json"))
        .arg("--results")
        .arg(fixture("vqa/vizwiz_sub150_results.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = read_json(&fixture("vqa/vizwiz_sub150_expected.json"));
    assert_eq!(v["overall"], e["official"]["overall"]);
    assert_eq!(v["perQuestionType"], e["official"]["perQuestionType"]);
    assert!(v["implementation"].as_str().unwrap().contains("official vqaEval.py"));
}

#[test]
fn cli_videoqa_and_topk() {
    let d = tempfile::tempdir().unwrap();
    let a = write(d.path(), "a.json", r#"[{"id":1,"answer":"dog"},{"id":2,"answer":"two"}]"#);
    let r = write(d.path(), "r.json", r#"[{"question_id":1,"answer":"A dog."},{"question_id":2,"answer":"3"}]"#);
    let out = bin().args(["score", "videoqa", "--format", "json", "--annotations"]).arg(&a).arg("--results").arg(&r).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accuracy"].as_f64().unwrap(), 50.0);
    let c = write(d.path(), "m.json", r#"[{"id":"x","label":2,"scores":[0.1,0.2,0.7]},{"id":"y","label":0,"scores":[0.5,0.5,0.0]}]"#);
    let out = bin().args(["score", "classification", "--format", "json", "--input"]).arg(&c).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["top1_accuracy"].as_f64().unwrap(), 0.5); // tie 0.5/0.5: class 1 ranks first
}
