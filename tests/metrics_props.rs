//! Property tests: normalisation is idempotent and nothing panics on arbitrary Unicode.
use flamingo_eval::metrics::ptb::{ptb_tokenize, ptb_tokens_unfiltered};
use flamingo_eval::metrics::vqa::{normalize_answer, vqa_accuracy, VqaMode};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn vqa_normalisation_idempotent(s in "\\PC{0,40}") {
        // the official period strip removes at most 32 periods per pass, so more are not idempotent
        prop_assume!(s.matches('.').count() <= 32);
        let once = normalize_answer(&s);
        prop_assert_eq!(normalize_answer(&once), once);
    }

    #[test]
    fn vqa_normalisation_idempotent_on_answer_like_text(s in "[a-zA-Z0-9 ,.;:!?'\"()\\-/]{0,30}") {
        let once = normalize_answer(&s);
        prop_assert_eq!(normalize_answer(&once), once);
    }

    #[test]
    fn no_panic_on_arbitrary_unicode(s in any::<String>()) {
        let _ = normalize_answer(&s);
        let toks = ptb_tokenize(&s);
        for t in &toks {
            prop_assert!(!t.is_empty() && !t.contains(' '));
        }
        let _ = ptb_tokens_unfiltered(&s);
        let gt = vec![s.clone(); 10];
        let a = vqa_accuracy(&s, &gt, VqaMode::Official);
        prop_assert!((0.0..=1.0).contains(&a));
    }

    #[test]
    fn accuracy_in_unit_interval(pred in "[a-c ]{0,5}", gts in proptest::collection::vec("[a-c ]{0,5}", 1..12)) {
        for mode in [VqaMode::Official, VqaMode::OpenFlamingo] {
            let a = vqa_accuracy(&pred, &gts, mode);
            prop_assert!((0.0..=1.0).contains(&a));
        }
    }
}

// The fuzz target's body (fuzz/fuzz_targets/metrics_parsers.rs) run on proptest strings, so `cargo test`
// exercises it without cargo-fuzz.
fn parse_everything(text: &str) {
    use flamingo_eval::metrics::{formats, vqa};
    use std::path::Path;
    let p = Path::new("fuzz.json");
    let _ = formats::classification_from_csv(Path::new("fuzz.csv"), text);
    if let Ok(v) = formats::parse_json(p, text) {
        let _ = formats::classification_from_json(p, &v);
        let _ = formats::videoqa_inputs(p, &v, p, &v);
        let ann = serde_json::json!({"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": "a cat"}]});
        if let Ok(raw) = formats::caption_inputs(p, &ann, p, &v) {
            let _ = formats::tokenize_captions(&raw);
        }
        for mode in [vqa::VqaMode::Official, vqa::VqaMode::OpenFlamingo] {
            if let Ok(items) = formats::vqa_inputs(p, &v, p, &v, p, &v, mode) {
                let _ = vqa::evaluate_vqa(&items, mode);
            }
        }
    }
}

proptest! {
    #[test]
    fn parsers_never_panic(s in any::<String>()) {
        parse_everything(&s);
    }

    #[test]
    fn parsers_never_panic_on_json_like(s in r#"[\[\]{}",:0-9a-z_ ]{0,80}"#) {
        parse_everything(&s);
        parse_everything(&format!(r#"[{{"image_id":1,"caption":"{s}"}}]"#));
        parse_everything(&format!(r#"{{"questions":[],"annotations":[{{"question_id":1,"answers":[{{"answer":"{s}"}}]}}]}}"#));
    }
}
