//! The published tables under results/reference match the models the presets export: OpenFlamingo v1's preset
//! name finds the v1 model card's validation rows and never the v2 paper's OpenFlamingo-9B row.

mod common;

use common::*;
use flamingo_eval::report::reference::{load_dir, ModelSource};

fn matches<'a>(tables: &'a [flamingo_eval::report::reference::ReferenceTable], bench: &str, metric: &str, preset: &str) -> Vec<flamingo_eval::report::reference::Match<'a>> {
    let src = ModelSource { checkpoint_sha256: "0".repeat(64), preset: Some(preset.to_string()), dtype: None };
    flamingo_eval::report::reference::matches(tables, bench, metric, Some(&src))
}

#[test]
fn openflamingo_v1_preset_matches_only_the_v1_model_card_rows() {
    let tables = load_dir(&repo().join("results/reference")).unwrap();
    for (bench, metric, zero_shot) in [("coco", "cider", 65.52), ("vqav2", "vqa_accuracy", 43.55)] {
        let m = matches(&tables, bench, metric, "OpenFlamingo-9B-deprecated");
        assert_eq!(m.len(), 1, "{bench}");
        assert_eq!(m[0].row.model, "OpenFlamingo-9B (v1)");
        assert_eq!(m[0].row.split, "val");
        assert_eq!(m[0].value_at(0), Some(zero_shot));
        let v2 = matches(&tables, bench, metric, "OpenFlamingo-9B-vitl-mpt7b");
        assert!(!v2.is_empty() && v2.iter().all(|x| x.row.model == "OpenFlamingo-9B"), "{bench}");
    }
    // OF-4B presets find their Table 11 rows
    let m = matches(&tables, "coco", "cider", "OpenFlamingo-4B-vitl-rpj3b");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].value_at(0), Some(76.7));
}

#[test]
fn idefics_presets_match_only_their_model_card_rows() {
    let tables = load_dir(&repo().join("results/reference")).unwrap();
    // (preset, benchmark, metric, 0-shot, 32-shot) from the IDEFICS model card's tables
    for (preset, bench, metric, zero, thirty_two) in [
        ("idefics-80b", "vqav2", "vqa_accuracy", 60.0, 65.9),
        ("idefics-9b", "coco", "cider", 46.0, 98.0),
        ("idefics-80b-instruct", "hateful_memes", "roc_auc", 58.9, 54.9),
        ("idefics-9b-instruct", "flickr30k", "cider", 71.9, 76.3),
    ] {
        let m = matches(&tables, bench, metric, preset);
        assert_eq!(m.len(), 1, "{preset} {bench}");
        assert_eq!(m[0].value_at(0), Some(zero), "{preset} {bench}");
        assert_eq!(m[0].value_at(32), Some(thirty_two), "{preset} {bench}");
    }
    // an OpenFlamingo preset never finds an IDEFICS row, nor the other way round
    assert!(matches(&tables, "vqav2", "vqa_accuracy", "OpenFlamingo-9B-vitl-mpt7b").iter().all(|x| !x.row.model.starts_with("IDEFICS")));
    assert!(matches(&tables, "vqav2", "vqa_accuracy", "idefics-9b").iter().all(|x| x.row.model == "IDEFICS-9B"));
}
