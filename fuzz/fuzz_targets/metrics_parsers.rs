//! Fuzz the metric input parsers and text normalisers: any bytes must give Ok or a FormatError, never a
//! panic. Run with `cargo +nightly fuzz run metrics_parsers` from the repository root.
#![no_main]
use flamingo_eval::metrics::{formats, ptb, vqa};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let p = Path::new("fuzz.json");
    let _ = formats::classification_from_csv(Path::new("fuzz.csv"), &text);
    if let Ok(v) = formats::parse_json(p, &text) {
        let _ = formats::classification_from_json(p, &v);
        let _ = formats::videoqa_inputs(p, &v, p, &v);
        let ann = serde_json::json!({"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": "a cat"}]});
        if let Ok(raw) = formats::caption_inputs(p, &ann, p, &v) {
            let _ = formats::tokenize_captions(&raw);
        }
        let _ = formats::caption_inputs(p, &v, p, &serde_json::json!([{"image_id": 1, "caption": "x"}]));
        for mode in [vqa::VqaMode::Official, vqa::VqaMode::OpenFlamingo] {
            if let Ok(items) = formats::vqa_inputs(p, &v, p, &v, p, &v, mode) {
                let _ = vqa::evaluate_vqa(&items, mode);
            }
        }
    }
    let _ = ptb::ptb_tokenize(&text);
    let _ = vqa::normalize_answer(&text);
});
