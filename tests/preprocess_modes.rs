//! CLIP preprocessing of every colour mode against open_clip's own transform (PIL + torchvision), pixels
//! made by tests/fixtures/images/modes/make.py.

mod common;

use common::*;
use flamingo_eval::model::manifest::Preprocess;
use flamingo_eval::model::preprocess::{decode_image_file, preprocess};

fn cfg(size: u32) -> Preprocess {
    Preprocess::clip(size)
}

#[test]
fn every_colour_mode_matches_open_clip() {
    let dir = repo().join("tests/fixtures/images/modes");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let one_level = 1.0 / 255.0 / 0.26130258 + 1e-6;
    let mut failures = Vec::new();
    for (name, meta) in expected.as_object().unwrap() {
        let img = decode_image_file(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        for size in [32u32, 64] {
            let bytes = std::fs::read(dir.join(meta[size.to_string()].as_str().unwrap())).unwrap();
            let want: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let got = preprocess(&img, &cfg(size));
            let d = max_abs_diff(&got, &want);
            let levels = d / one_level;
            eprintln!("{name} ({}) @{size}: max abs diff {d:.3e} (~{levels:.2} u8 levels)", meta["mode"]);
            // Decoding (libjpeg-turbo for JPEG) and resampling reproduce Pillow's integer arithmetic: exact.
            if d > 0.0 {
                failures.push(format!("{name} @{size}: {d:.3e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
