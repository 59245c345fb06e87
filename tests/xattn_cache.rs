//! The cross-attention cache (contract 3) against the recompute path (contract 2) of the same weights:
//! tests/fixtures/models_v2/tiny-gptneox holds the version-2 decoder and manifest of tiny-gptneox (exported
//! before the cache existed; its other files are byte-identical to the current fixture's), so both paths run
//! the same model and must give bit-identical predictions.

mod common;

use common::*;
use flamingo_eval::model::{FlamingoModel, Media, Prompt, RuntimeOptions, SearchParams};
use std::path::{Path, PathBuf};

fn load(dir: &Path) -> FlamingoModel {
    FlamingoModel::load(dir, &RuntimeOptions { intra_threads: 1, ..Default::default() }).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

/// A version-2 model directory: the v2 decoder + manifest, the current fixture's vision encoder, perceiver and
/// tokenizer (their hashes in the v2 manifest must match).
fn v2_dir(tmp: &Path) -> PathBuf {
    let (v3, v2) = (model("tiny-gptneox"), repo().join("tests/fixtures/models_v2/tiny-gptneox"));
    let d = tmp.join("tiny-gptneox-v2");
    std::fs::create_dir_all(&d).unwrap();
    for f in ["lang_decoder.onnx", "model.yaml"] {
        std::fs::copy(v2.join(f), d.join(f)).unwrap();
    }
    for f in ["vision_encoder.onnx", "perceiver.onnx", "tokenizer.json"] {
        std::fs::copy(v3.join(f), d.join(f)).unwrap();
    }
    d
}

fn prompts(model: &mut FlamingoModel) -> Vec<Prompt> {
    let img = |n: &str| Media::Image(images_dir().join(n));
    let names = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"];
    let mut out = Vec::new();
    for i in 0..6 {
        let (mut text, mut media) = (String::new(), Vec::new());
        for s in 0..i % 4 {
            text.push_str(&format!("<image>Output:a photo {s} of {i}.<|endofchunk|>"));
            media.push(img(names[(i + s) % 4]));
        }
        if i == 5 {
            text.push_str("Output:"); // a prompt without any media
        } else {
            text.push_str("<image>Output:");
            media.push(img(names[i % 4]));
        }
        let enc = model.encode_media(&media).unwrap();
        out.push(model.make_prompt(&text, enc).unwrap());
    }
    out
}

#[test]
fn cached_cross_attention_gives_the_recompute_paths_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut old = load(&v2_dir(tmp.path()));
    let mut new = load(&model("tiny-gptneox"));
    assert!(!old.cross_attn_cached() && new.cross_attn_cached());
    assert_eq!(old.manifest.contract_version, 2);
    let (po, pn) = (prompts(&mut old), prompts(&mut new));
    let (ro, rn): (Vec<&Prompt>, Vec<&Prompt>) = (po.iter().collect(), pn.iter().collect());
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (a, b) in ro.iter().zip(&rn) {
        let (la, lb) = (old.prompt_logits(&[a], a.ids.len()).unwrap(), new.prompt_logits(&[b], b.ids.len()).unwrap());
        assert_eq!(bits(&la), bits(&lb), "prefill logits");
    }
    for beams in [1, 3] {
        let p = SearchParams { num_beams: beams, max_new_tokens: 10, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![new.tokenizer.endofchunk_id] };
        let (go, gn) = (old.generate(&ro, &p).unwrap(), new.generate(&rn, &p).unwrap());
        for (i, (a, b)) in go.iter().zip(&gn).enumerate() {
            assert_eq!((&a.tokens, a.score.to_bits()), (&b.tokens, b.score.to_bits()), "prompt {i}, {beams} beams");
        }
    }
    let cands: Vec<Vec<u32>> = ["yes", "no", "a cat on a mat"].iter().map(|t| new.tokenizer.encode_continuation(t).unwrap()).collect();
    for (a, b) in ro.iter().zip(&rn) {
        let (sa, sb) = (old.score_candidates(a, &cands).unwrap(), new.score_candidates(b, &cands).unwrap());
        for (x, y) in sa.iter().zip(&sb) {
            assert_eq!(bits(&x.token_logprobs), bits(&y.token_logprobs), "candidate scores");
        }
    }
    // The cache path never projects media in a decoder call: its key/value graph ran once per distinct media
    // per prefill batch, and the decode steps added none.
    assert!(new.stats.xattn_kv_calls > 0 && old.stats.xattn_kv_calls == 0);
}

fn edit_manifest(tmp: &Path, from: &Path, f: impl Fn(String) -> String) -> PathBuf {
    let d = tmp.join("edited");
    std::fs::create_dir_all(&d).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
    }
    let m = std::fs::read_to_string(d.join("model.yaml")).unwrap();
    std::fs::write(d.join("model.yaml"), f(m)).unwrap();
    d
}

#[test]
fn inconsistent_cache_keys_are_refused_naming_the_file() {
    let err = |d: &Path| format!("{:#}", FlamingoModel::load(d, &RuntimeOptions::default()).err().expect("refused"));
    let tmp = tempfile::tempdir().unwrap();
    // a version-2 manifest may not carry version-3 keys
    let d = edit_manifest(tmp.path(), &v2_dir(tmp.path()), |m| m + "cross_attn_cache:\n  layers: [1, 3]\n  width: 64\n");
    let e = err(&d);
    assert!(e.contains("model.yaml") && e.contains("cross_attn_cache is a contract version 3 key"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
    // the cache section without its graph
    let v3 = model("tiny-gptneox");
    let d = edit_manifest(tmp.path(), &v3, |m| m.lines().filter(|l| !l.trim_start().starts_with("xattn_kv:")).collect::<Vec<_>>().join("\n") + "\n");
    let e = err(&d);
    assert!(e.contains("components.xattn_kv") && e.contains("re-export"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
    // layers past the decoder
    let d = edit_manifest(tmp.path(), &v3, |m| m.replace("layers: [1, 3]", "layers: [1, 9]"));
    let e = err(&d);
    assert!(e.contains("cross_attn_cache.layers is [1, 9]"), "{e}");
}
