//! A truncated JPEG is an unreadable image, as it is for Pillow (hence OpenFlamingo): every truncated copy
//! of the fixture JPEGs that Pillow refuses is refused, every one Pillow reads is read. Pillow's behaviour
//! per case is tests/fixtures/images/truncated/pillow_expected.json (made by make_expected.py there, and
//! re-checked against Pillow by export/tests/test_metric_oracles.py).

mod common;

use common::*;
use flamingo_eval::model::preprocess::{decode_image_bytes, decode_image_file};

#[test]
fn truncated_jpegs_are_refused_exactly_where_pillow_refuses_them() {
    let images = repo().join("tests/fixtures/images");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(images.join("truncated/pillow_expected.json")).unwrap(),
    )
    .unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let mut mismatches = Vec::new();
    let (mut refused, mut truncated_refused) = (0, 0);
    for c in cases {
        let name = c["file"].as_str().unwrap();
        let cut = c["cut"].as_u64().unwrap() as usize;
        let data = std::fs::read(images.join(name)).unwrap();
        assert_eq!(data.len() as u64, c["size"].as_u64().unwrap(), "{name} changed: rerun make_expected.py");
        let pillow = c["pillow"].as_str().unwrap();
        let ours = decode_image_bytes(&data[..cut]);
        match (&ours, pillow == "ok") {
            (Ok(_), true) => {}
            (Err(e), false) => {
                refused += 1;
                let msg = format!("{e:#}");
                if pillow.contains("image file is truncated") {
                    truncated_refused += 1;
                    // the reason is named, not a generic decoding failure
                    assert!(msg.contains("image file is truncated"), "{name}[..{cut}]: {msg}");
                }
            }
            (Ok(_), false) => mismatches.push(format!("{name}[..{cut}]: decoded, Pillow says {pillow}")),
            (Err(e), true) => mismatches.push(format!("{name}[..{cut}]: refused ({e:#}), Pillow reads it")),
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(truncated_refused >= 20, "only {truncated_refused} truncated cases ({refused} refused)");
}

#[test]
fn a_truncated_file_error_names_the_file() {
    let data = std::fs::read(repo().join("tests/fixtures/images/rocket.jpg")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jpg");
    std::fs::write(&path, &data[..data.len() - 1]).unwrap(); // only the last byte of the EOI marker missing
    let e = format!("{:#}", decode_image_file(&path).unwrap_err());
    assert!(e.contains("cut.jpg") && e.contains("image file is truncated"), "{e}");
    // the complete file still decodes
    std::fs::write(&path, &data).unwrap();
    assert_eq!(decode_image_file(&path).unwrap().width, 640);
}
