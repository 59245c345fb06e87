//! CIDEr-D / BLEU / ROUGE-L against pycocoevalcap 1.2 outputs (fixtures from scripts/metrics_reference).
mod metrics_common;
use flamingo_eval::metrics::caption::{bleu, cider_d, rouge_l, CaptionSample};
use flamingo_eval::metrics::formats;
use metrics_common::*;
use std::path::Path;

const REL: f64 = 1e-12;

fn check(ann: &Path, res: &Path, expected: &Path, per_image: bool) {
    let raw = formats::read_caption_files(ann, res).unwrap();
    let samples: Vec<CaptionSample> = formats::tokenize_captions(&raw);
    let e = read_json(expected);
    if per_image {
        let ids: Vec<String> = e["image_ids"].as_array().unwrap().iter().map(|v| formats::id_string(v).unwrap()).collect();
        let ours: Vec<String> = samples.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ours, ids, "image order differs from pycocotools loadRes");
    }
    let c = cider_d(&samples);
    let b = bleu(&samples);
    let r = rouge_l(&samples);
    let name = expected.file_name().unwrap().to_string_lossy().to_string();
    assert_close(c.corpus, e["CIDEr"].as_f64().unwrap(), REL, &format!("{name} CIDEr"));
    assert_close(r.corpus, e["ROUGE_L"].as_f64().unwrap(), REL, &format!("{name} ROUGE_L"));
    for k in 0..4 {
        assert_close(b.corpus[k], e[format!("Bleu_{}", k + 1)].as_f64().unwrap(), REL, &format!("{name} Bleu_{}", k + 1));
    }
    if per_image {
        let p = &e["per_image"];
        for i in 0..samples.len() {
            let id = &samples[i].id;
            assert_close(c.per_sample[i], p["CIDEr"][i].as_f64().unwrap(), 1e-11, &format!("{name} CIDEr image {id}"));
            assert_close(r.per_sample[i], p["ROUGE_L"][i].as_f64().unwrap(), REL, &format!("{name} ROUGE_L image {id}"));
            for k in 0..4 {
                assert_close(b.per_sample[i][k], p["Bleu"][i][k].as_f64().unwrap(), REL, &format!("{name} Bleu_{} image {id}", k + 1));
            }
        }
    }
}

#[test]
fn fakecap134_matches_pycocoevalcap() {
    check(
        &fixture("caption/fakecap134/annotations.json"),
        &fixture("caption/fakecap134/results.json"),
        &fixture("caption/fakecap134_expected.json"),
        true,
    );
}

#[test]
fn nlgeval_example_matches_pycocoevalcap() {
    check(
        &fixture("caption/nlgeval_annotations.json"),
        &fixture("caption/nlgeval_results.json"),
        &fixture("caption/nlgeval_expected.json"),
        true,
    );
    // and the values nlg-eval's own tests expect (printed to 6-7 digits)
    let raw = formats::read_caption_files(&fixture("caption/nlgeval_annotations.json"), &fixture("caption/nlgeval_results.json")).unwrap();
    let s = formats::tokenize_captions(&raw);
    assert!((cider_d(&s).corpus - 1.242192).abs() < 1e-6);
    assert!((bleu(&s).corpus[3] - 0.201143).abs() < 1e-6);
    assert!((rouge_l(&s).corpus - 0.522104).abs() < 1e-6);
}

#[test]
fn subset150_matches_pycocoevalcap() {
    let Some(d) = shared_data() else { return };
    check(
        &d.join("derived/results_subset/annotations.json"),
        &fixture("caption/subset150_results.json"),
        &fixture("caption/subset150_expected.json"),
        true,
    );
}

#[test]
fn full4800_matches_pycocoevalcap() {
    let Some(d) = shared_data() else { return };
    check(
        &d.join("coco_captions/captions_val2014_subset4800.json"),
        &fixture("caption/full4800_results.json"),
        &fixture("caption/full4800_expected.json"),
        false,
    );
}
