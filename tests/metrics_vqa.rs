//! VQA accuracy against the official vqaEval.py and OpenFlamingo's copy (fixtures from
//! scripts/metrics_reference): overall, per type (2 decimals, exact) and per question.
mod metrics_common;
use flamingo_eval::metrics::formats;
use flamingo_eval::metrics::vqa::{evaluate_vqa, rounded_percent, vqa_accuracy_records, VqaMode};
use metrics_common::*;
use serde_json::Value;
use std::path::Path;

fn check(q: &Path, a: &Path, r: &Path, expected: &Value, mode: VqaMode) {
    let items = formats::read_vqa_files(q, a, r, mode).unwrap();
    let rep = evaluate_vqa(&items, mode);
    assert_eq!(rep.overall, expected["overall"].as_f64().unwrap(), "overall ({mode:?}, {})", r.display());
    for (key, ours) in [("perQuestionType", &rep.per_question_type), ("perAnswerType", &rep.per_answer_type)] {
        let e = expected[key].as_object().unwrap();
        assert_eq!(ours.len(), e.len(), "{key} keys ({mode:?})");
        for (k, v) in ours {
            assert_eq!(Some(*v), e[k].as_f64(), "{key}[{k}] ({mode:?})");
        }
    }
    let per = expected["per_question"].as_array().unwrap();
    assert_eq!(per.len(), items.len());
    for ((it, acc), e) in items.iter().zip(&rep.per_question).zip(per) {
        assert_eq!(rounded_percent(*acc), e.as_f64().unwrap(), "question {} pred {:?} ({mode:?})", it.question_id, it.prediction);
    }
}

fn check_both(q: &Path, a: &Path, r: &Path, e: &Path) {
    let e = read_json(e);
    check(q, a, r, &e["official"], VqaMode::Official);
    check(q, a, r, &e["openflamingo"], VqaMode::OpenFlamingo);
}

#[test]
fn textvqa_subset_matches_reference() {
    check_both(
        &fixture("vqa/textvqa_sub150_questions.json"),
        &fixture("vqa/textvqa_sub150_annotations.json"),
        &fixture("vqa/textvqa_sub150_results.json"),
        &fixture("vqa/textvqa_sub150_expected.json"),
    );
}

#[test]
fn vizwiz_subset_matches_reference() {
    check_both(
        &fixture("vqa/vizwiz_sub150_questions.json"),
        &fixture("vqa/vizwiz_sub150_annotations.json"),
        &fixture("vqa/vizwiz_sub150_results.json"),
        &fixture("vqa/vizwiz_sub150_expected.json"),
    );
}

#[test]
fn textvqa_full_matches_reference() {
    let Some(d) = shared_data() else { return };
    check_both(
        &d.join("textvqa/val_questions_vqa_format.json"),
        &d.join("textvqa/val_annotations_vqa_format.json"),
        &fixture("vqa/textvqa_results.json"),
        &fixture("vqa/textvqa_expected.json"),
    );
}

#[test]
fn vizwiz_full_matches_reference() {
    let Some(d) = shared_data() else { return };
    check_both(
        &d.join("vizwiz/val_questions_vqa_format.json"),
        &d.join("vizwiz/val_annotations_vqa_format.json"),
        &fixture("vqa/vizwiz_results.json"),
        &fixture("vqa/vizwiz_expected.json"),
    );
}

#[test]
fn vqav2_sample_types_and_cases() {
    let Some(d) = shared_data() else { return };
    let ann = d.join("derived/vqav2_sample/annotations_derived.json");
    check_both(
        &d.join("vqav2_sample/questions.json"),
        &ann,
        &fixture("vqa/vqav2_sample_results.json"),
        &fixture("vqa/vqav2_sample_expected.json"),
    );
    // every variant of every answer, per question
    let annj = read_json(&ann);
    let cases = read_json(&fixture("vqa/vqav2_sample_cases.json"));
    for c in cases.as_array().unwrap() {
        let qid = &c["question_id"];
        let a = annj["annotations"].as_array().unwrap().iter().find(|a| &a["question_id"] == qid).unwrap();
        let recs: Vec<_> = a["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let mut m = x.as_object().unwrap().clone();
                let ans = m.remove("answer").unwrap().as_str().unwrap().to_string();
                let rest: std::collections::BTreeMap<_, _> = m.into_iter().collect();
                flamingo_eval::metrics::vqa::GtAnswer { answer: ans, identity: serde_json::to_string(&rest).unwrap() }
            })
            .collect();
        let pred = c["prediction"].as_str().unwrap();
        for (mode, key) in [(VqaMode::Official, "official"), (VqaMode::OpenFlamingo, "openflamingo")] {
            let acc = vqa_accuracy_records(pred, &recs, mode);
            assert_eq!(rounded_percent(acc), c[key].as_f64().unwrap(), "{pred:?} on {qid} ({key})");
        }
    }
}
