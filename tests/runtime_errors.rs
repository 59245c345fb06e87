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
    std::fs::write(tmp.path().join("model.yaml"), yaml.replace("contract_version: 1", "contract_version: 99")).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("contract_version 99"), "{err}");
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
