//! Bad inputs to the model layer give clear errors that name the file, tensor or limit.

mod common;

use common::*;
use flamingo_eval::model::{FlamingoModel, Media, RuntimeOptions};
use sha2::{Digest, Sha256};
use std::path::Path;

fn copy_model(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// Replaces a component file and updates its hash in model.yaml, so only the contract check can object.
fn swap_component(dir: &Path, file: &str, replacement: &Path) {
    let old = hex::encode(Sha256::digest(std::fs::read(dir.join(file)).unwrap()));
    std::fs::copy(replacement, dir.join(file)).unwrap();
    let new = hex::encode(Sha256::digest(std::fs::read(dir.join(file)).unwrap()));
    let yaml = std::fs::read_to_string(dir.join("model.yaml")).unwrap().replace(&old, &new);
    std::fs::write(dir.join("model.yaml"), yaml).unwrap();
}

fn load_err(dir: &Path) -> String {
    match FlamingoModel::load(dir, &RuntimeOptions::default()) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_component_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&fixture_models()[0], tmp.path());
    std::fs::remove_file(tmp.path().join("perceiver.onnx")).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("perceiver.onnx") && err.contains("missing"), "{err}");
}

#[test]
fn modified_component_is_detected_by_hash() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&fixture_models()[0], tmp.path());
    std::fs::write(tmp.path().join("tokenizer.json"), "{}").unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("tokenizer.json") && err.contains("sha256"), "{err}");
}

#[test]
fn wrong_input_name_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&fixture_models()[0], tmp.path());
    swap_component(tmp.path(), "vision_encoder.onnx", &repo().join("tests/fixtures/bad_onnx/vision_wrong_input_name.onnx"));
    let err = load_err(tmp.path());
    assert!(err.contains("vision_encoder.onnx") && err.contains("'pixels'") && err.contains("[N,3,H,W]"), "{err}");
}

#[test]
fn wrong_dtype_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&fixture_models()[0], tmp.path());
    swap_component(tmp.path(), "vision_encoder.onnx", &repo().join("tests/fixtures/bad_onnx/vision_wrong_dtype.onnx"));
    let err = load_err(tmp.path());
    assert!(err.contains("'pixels'") && err.contains("dtype i64") && err.contains("float32"), "{err}");
}

#[test]
fn unknown_manifest_key_and_version_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&fixture_models()[0], tmp.path());
    let yaml = std::fs::read_to_string(tmp.path().join("model.yaml")).unwrap();
    std::fs::write(tmp.path().join("model.yaml"), format!("{yaml}\nsurprise: 1\n")).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("model.yaml") && err.contains("surprise"), "{err}");
    std::fs::write(tmp.path().join("model.yaml"), yaml.replace("contract_version: 3", "contract_version: 99")).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("contract_version 99"), "{err}");
}

/// A copy of fixture `name` whose model.yaml is edited by `edit`.
fn edited_model(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&model(name), tmp.path());
    let yaml = std::fs::read_to_string(tmp.path().join("model.yaml")).unwrap();
    let new = edit(yaml.clone());
    assert_ne!(new, yaml, "the edit changed nothing");
    std::fs::write(tmp.path().join("model.yaml"), new).unwrap();
    tmp
}

fn load_ok(dir: &Path) -> FlamingoModel {
    FlamingoModel::load(dir, &RuntimeOptions::default()).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

#[test]
fn family_is_free_text_and_behaviour_comes_from_explicit_fields() {
    // Any non-empty family name loads: the runtime never reads it.
    let tmp = edited_model("tiny-mpt", |y| y.replace("family: \"mpt\"", "family: \"some_new_family\""));
    let m = load_ok(tmp.path());
    assert_eq!(m.manifest.lang.family, "some_new_family");
    let tmp = edited_model("tiny-mpt", |y| y.replace("family: \"mpt\"", "family: \" \""));
    let err = load_err(tmp.path());
    assert!(err.contains("lang.family") && err.contains("non-empty"), "{err}");
    // uses_position_ids is what decides the decoder's inputs: a wrong value meets the graph's real signature.
    let tmp = edited_model("tiny-mpt", |y| y.replace("uses_position_ids: false", "uses_position_ids: true"));
    let err = load_err(tmp.path());
    assert!(err.contains("lang_decoder.onnx") && err.contains("position_ids"), "{err}");
}

#[test]
fn special_token_consistency_is_checked_without_names() {
    let tmp = edited_model("tiny-mpt", |y| y.replace("add_bos: false", "add_bos: true"));
    let err = load_err(tmp.path());
    assert!(err.contains("tokenizer.add_bos") && err.contains("special_tokens.bos is null"), "{err}");
    let tmp = edited_model("tiny-mpt", |y| y.replace("add_bos: false", "add_bos: true").replace("bos: null", "bos: 5000"));
    let err = load_err(tmp.path());
    assert!(err.contains("special_tokens.bos is 5000") && err.contains("lang.vocab_size"), "{err}");
    // A BOS id inside the LM head but unknown to the tokenizer (heads may be wider than the tokenizer; widened
    // here in the manifest only, the tokenizer has ids 0..=2050).
    let tmp = edited_model("tiny-mpt", |y| {
        y.replace("add_bos: false", "add_bos: true").replace("bos: null", "bos: 2051").replace("vocab_size: 2051", "vocab_size: 2060")
    });
    let err = load_err(tmp.path());
    assert!(err.contains("tokenizer.json") && err.contains("special_tokens.bos is 2051") && err.contains("does not have"), "{err}");
    let tmp = edited_model("tiny-mpt", |y| y.replace("pad: 2050", "pad: 2051"));
    let err = load_err(tmp.path());
    assert!(err.contains("special_tokens.pad is 2051"), "{err}");
    let tmp = edited_model("tiny-mpt", |y| y.replace("cross_attn_every_n_layers: 1", "cross_attn_every_n_layers: 0"));
    let err = load_err(tmp.path());
    assert!(err.contains("cross_attn_every_n_layers"), "{err}");
    // The v2 key is required.
    let tmp = edited_model("tiny-mpt", |y| y.replace("  clean_up_tokenization_spaces: true\n", ""));
    let err = load_err(tmp.path());
    assert!(err.contains("model.yaml") && err.contains("clean_up_tokenization_spaces"), "{err}");
}

/// A fixture manifest turned back into what the version-1 exporter wrote (no version-3 cross-attention cache
/// keys, no version-2 clean-up key).
fn as_v1(y: String) -> String {
    let y = y.replace("contract_version: 3", "contract_version: 1").replace("contract_version: 2", "contract_version: 1");
    let y = y.replace("  clean_up_tokenization_spaces: true\n", "");
    let y = match y.find("cross_attn_cache:\n") {
        Some(i) => y[..i].to_string() + &y[i..].splitn(2, '\n').nth(1).unwrap().lines().skip_while(|l| l.starts_with("  ")).map(|l| format!("{l}\n")).collect::<String>(),
        None => y,
    };
    y.lines().filter(|l| !l.trim_start().starts_with("xattn_kv:")).map(|l| format!("{l}\n")).collect()
}

/// tiny-gptneox as a version-2 export (tests/fixtures/models_v2: its v2 decoder and manifest; the other files
/// are the current fixture's, byte-identical), with `edit` applied to model.yaml.
fn edited_v2_gptneox(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let (v3, v2) = (model("tiny-gptneox"), repo().join("tests/fixtures/models_v2/tiny-gptneox"));
    for f in ["vision_encoder.onnx", "perceiver.onnx", "tokenizer.json"] {
        std::fs::copy(v3.join(f), tmp.path().join(f)).unwrap();
    }
    std::fs::copy(v2.join("lang_decoder.onnx"), tmp.path().join("lang_decoder.onnx")).unwrap();
    let yaml = std::fs::read_to_string(v2.join("model.yaml")).unwrap();
    std::fs::write(tmp.path().join("model.yaml"), edit(yaml)).unwrap();
    tmp
}

#[test]
fn version_1_manifests_load_with_their_version_1_meaning() {
    // (a loadable v1 model needs a decoder that takes vision_latents: the v2 export of tiny-gptneox)
    {
        let tmp = edited_v2_gptneox(as_v1);
        let m = load_ok(tmp.path());
        assert_eq!(m.manifest.contract_version, 1);
        // v1 runtimes decoded without transformers' clean-up
        assert!(!m.manifest.tokenizer.clean_up_tokenization_spaces && !m.tokenizer.clean_up_spaces);
        assert_eq!(m.tokenizer.decode(&m.tokenizer.encode_continuation("it ' s").unwrap()).unwrap(), "it ' s");
    }
    // v1 meaning: the family is one of the two v1 names and agrees with uses_position_ids ...
    let tmp = edited_model("tiny-mpt", |y| as_v1(y).replace("family: \"mpt\"", "family: \"llama\""));
    let err = load_err(tmp.path());
    assert!(err.contains("\"llama\"") && err.contains("version-1 family") && err.contains("re-export"), "{err}");
    let tmp = edited_model("tiny-mpt", |y| as_v1(y).replace("family: \"mpt\"", "family: \"gpt_neox\""));
    let err = load_err(tmp.path());
    assert!(err.contains("uses_position_ids") && err.contains("contract version 1"), "{err}");
    // ... add_bos was never honoured, so a v1 manifest asking for it is refused, not reinterpreted ...
    let tmp = edited_model("tiny-mpt", |y| as_v1(y).replace("add_bos: false", "add_bos: true").replace("bos: null", "bos: 0"));
    let err = load_err(tmp.path());
    assert!(err.contains("add_bos") && err.contains("re-export"), "{err}");
    // ... and the v2 key does not exist in v1.
    let tmp = edited_v2_gptneox(|y| y.replace("contract_version: 2", "contract_version: 1"));
    let err = load_err(tmp.path());
    assert!(err.contains("clean_up_tokenization_spaces") && err.contains("version 2 key"), "{err}");
}

/// Rewrites the copied model's tokenizer.json post-processor and its hash in model.yaml.
fn set_post_processor(dir: &Path, post: serde_json::Value) {
    let path = dir.join("tokenizer.json");
    let mut tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    tok["post_processor"] = post;
    let tmp = dir.join("tokenizer.new");
    std::fs::write(&tmp, serde_json::to_string(&tok).unwrap()).unwrap();
    swap_component(dir, "tokenizer.json", &tmp);
    std::fs::remove_file(tmp).unwrap();
}

fn template(token: &str, id: u32) -> serde_json::Value {
    serde_json::json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {token: {"id": token, "ids": [id], "tokens": [token]}}
    })
}

#[test]
fn tokenizer_post_processor_must_agree_with_the_manifest() {
    let bos = |y: String| y.replace("add_bos: false", "add_bos: true").replace("bos: null", "bos: 0");
    // A tokenizer.json that itself adds the manifest's BOS (LLaMA's fast tokenizer does): one BOS, not two.
    let tmp = edited_model("tiny-mpt", bos);
    set_post_processor(tmp.path(), template("<|endoftext|>", 0));
    let m = load_ok(tmp.path());
    let plain = m.tokenizer.encode_continuation("a cat").unwrap();
    assert_eq!(m.tokenizer.encode("a cat").unwrap(), [vec![0], plain.clone()].concat());
    // The same tokenizer.json with a manifest that says "no BOS": they disagree.
    let tmp = edited_model("tiny-mpt", |y| y.replace("bos: null", "bos: 0"));
    set_post_processor(tmp.path(), template("<|endoftext|>", 0));
    let err = load_err(tmp.path());
    assert!(err.contains("tokenizer.json") && err.contains("post-processor") && err.contains("disagree"), "{err}");
    // A post-processor adding another token than the manifest's BOS.
    let tmp = edited_model("tiny-mpt", bos);
    set_post_processor(tmp.path(), template("<PAD>", 2050));
    let err = load_err(tmp.path());
    assert!(err.contains("post-processor") && err.contains("2050"), "{err}");
}

#[test]
fn prompt_longer_than_max_positions_names_the_limit() {
    let mut model = FlamingoModel::load(&fixture_models()[0], &RuntimeOptions::default()).unwrap();
    let max = model.manifest.lang.max_positions;
    let enc = model.encode_media(&[Media::Image(images_dir().join("chelsea.png"))]).unwrap();
    let text = format!("<image>{}", "a cat. ".repeat(max));
    let err = format!("{:#}", model.make_prompt(&text, enc).unwrap_err());
    assert!(err.contains(&max.to_string()) && err.contains("maximum"), "{err}");
}

#[test]
fn corrupt_image_is_named() {
    let mut model = FlamingoModel::load(&fixture_models()[0], &RuntimeOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 this is not really a jpeg").unwrap();
    let err = format!("{:#}", model.encode_media(&[Media::Image(bad.clone())]).unwrap_err());
    assert!(err.contains("broken.jpg"), "{err}");
    let missing = tmp.path().join("nope.png");
    let err = format!("{:#}", model.encode_media(&[Media::Image(missing)]).unwrap_err());
    assert!(err.contains("nope.png"), "{err}");
}

#[test]
fn image_marker_count_must_match_media() {
    let mut model = FlamingoModel::load(&fixture_models()[0], &RuntimeOptions::default()).unwrap();
    let enc = model.encode_media(&[Media::Image(images_dir().join("chelsea.png"))]).unwrap();
    let err = format!("{:#}", model.make_prompt("<image>a<image>b", enc).unwrap_err());
    assert!(err.contains("2 <image> markers") && err.contains("1 media"), "{err}");
}

#[test]
fn missing_ort_library_is_a_clear_error() {
    // The environment is process-wide, so this runs in a child process with a bogus library path.
    let exe = env!("CARGO_BIN_EXE_flamingo-eval");
    let out = std::process::Command::new(exe)
        .args(["model", "inspect"])
        .arg(&fixture_models()[0])
        .args(["--ort-lib", "/nonexistent/libonnxruntime.so"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ONNX Runtime library not found") && err.contains("setup_ort.sh"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn clip_encoder_folder_errors_are_named() {
    use flamingo_eval::model::clip::ClipImageEncoder;
    let src = repo().join("tests/fixtures/clip/tiny-clip");
    let err_of = |dir: &Path| format!("{:#}", ClipImageEncoder::load(dir, &RuntimeOptions::default()).err().expect("refused"));
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(src.join("clip_image_encoder.onnx"), d.join("clip_image_encoder.onnx")).unwrap();
    let err = err_of(d);
    assert!(err.contains("clip.yaml") && err.contains("export_clip"), "{err}");
    let yaml = std::fs::read_to_string(src.join("clip.yaml")).unwrap();
    for (edit, want) in [
        (format!("{yaml}surprise: 1\n"), "surprise"),
        (yaml.replace("clip_format_version: 1", "clip_format_version: 7"), "clip_format_version 7"),
        (yaml.replace("image_size: 64", "image_size: 32"), "preprocess.image_size 32"),
        (yaml.replace("embed_dim: 32", "embed_dim: 0"), "embed_dim"),
    ] {
        std::fs::write(d.join("clip.yaml"), &edit).unwrap();
        let err = err_of(d);
        assert!(err.contains(want), "{want}: {err}");
    }
    // The folder as exported loads; so does its graph alone (single-file form, CLIP preprocessing at 64 px).
    std::fs::write(d.join("clip.yaml"), &yaml).unwrap();
    assert!(ClipImageEncoder::load(d, &RuntimeOptions::default()).unwrap().manifest.is_some());
    let single = ClipImageEncoder::load(&d.join("clip_image_encoder.onnx"), &RuntimeOptions::default()).unwrap();
    assert!(single.manifest.is_none() && single.preprocess.image_size == 64);
}

#[test]
fn the_load_time_probes_are_not_counted_as_evaluation_work() {
    // `run` times the manifest probes (one decoder step at the last position) as model loading; the stage times
    // and call counts in summary.json must start after them, or a short run reports more decoder time than it
    // spent evaluating.
    let mut m = FlamingoModel::load(&model("tiny-gptneox"), &RuntimeOptions { intra_threads: 1, ..Default::default() }).unwrap();
    let before = m.stats.clone();
    assert!(flamingo_eval::model::checks::mismatches(&mut m, true).is_empty());
    let s = &m.stats;
    assert_eq!((s.decoder_calls, s.decoder_time, s.vision_calls, s.vision_time), (before.decoder_calls, before.decoder_time, before.vision_calls, before.vision_time));
    assert_eq!(s.session_time, before.session_time);
}
