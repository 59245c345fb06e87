//! Every metric `score` prints in its table is on the ×100 scale the README promises, with the scale on the
//! line; `--format json` keeps the official tool's own scale and states it (`scale`).

mod common;

use common::repo;
use std::process::Command;

fn score(args: &[&str]) -> (String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_flamingo-eval")).arg("score").args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap())
}

#[test]
fn caption_table_is_x100_and_json_states_its_fractions() {
    let ann = repo().join("tests/fixtures/metrics/caption/fakecap134/annotations.json");
    let res = repo().join("tests/fixtures/metrics/caption/fakecap134/results.json");
    let (a, r) = (ann.to_str().unwrap(), res.to_str().unwrap());
    let (json, _) = score(&["caption", "--format", "json", "--bootstrap", "0", "--annotations", a, "--results", r]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["scale"].as_str().unwrap().starts_with("fraction"), "{v}");
    let (table, _) = score(&["caption", "--bootstrap", "0", "--annotations", a, "--results", r]);
    for k in ["CIDEr", "Bleu_4", "ROUGE_L"] {
        let line = table.lines().find(|l| l.starts_with(&format!("{k} "))).unwrap_or_else(|| panic!("{k}: {table}"));
        assert!(line.contains("×100"), "{line}");
        assert!(line.contains(&format!("{:.2}", 100.0 * v[k].as_f64().unwrap())), "{k}: {line} vs {}", v[k]);
    }
}

#[test]
fn classification_and_videoqa_tables_are_x100() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("c.csv");
    std::fs::write(&c, "id,label,score\na,1,0.9\nb,0,0.1\nc,1,0.4\nd,0,0.6\n").unwrap();
    let (t, _) = score(&["classification", "--bootstrap", "0", "--input", c.to_str().unwrap()]);
    assert!(t.contains("ROC-AUC ×100 (scikit-learn rules) on 4 samples: 75.00"), "{t}");
    let (j, _) = score(&["classification", "--format", "json", "--bootstrap", "0", "--input", c.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["roc_auc"], 0.75);
    assert!(v["scale"].as_str().unwrap().starts_with("fraction"));
    let m = d.path().join("m.csv");
    std::fs::write(&m, "id,label,score_0,score_1,score_2\na,0,0.9,0.05,0.05\nb,2,0.5,0.3,0.2\n").unwrap();
    let (t, _) = score(&["classification", "--bootstrap", "0", "--input", m.to_str().unwrap()]);
    assert!(t.contains("top-1 ×100: 50.00") && t.contains("top-5 ×100: 100.00"), "{t}");
    let (a, r) = (d.path().join("a.json"), d.path().join("r.json"));
    std::fs::write(&a, r#"[{"question_id": 1, "answer": "dog"}, {"question_id": 2, "answer": "cat"}]"#).unwrap();
    std::fs::write(&r, r#"[{"question_id": 1, "answer": "dog"}, {"question_id": 2, "answer": "cow"}]"#).unwrap();
    let (t, _) = score(&["videoqa", "--bootstrap", "0", "--annotations", a.to_str().unwrap(), "--results", r.to_str().unwrap()]);
    assert!(t.contains("Video QA exact match ×100 (VQA normalisation) on 2 questions: 50.00"), "{t}");
}
