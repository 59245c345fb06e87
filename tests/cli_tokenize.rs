//! `flamingo-eval tokenize ptb`: what the caption metrics see, checked against the Java tokenizer's recorded
//! output (tests/fixtures/metrics/ptb/tricky.json: one pycocoevalcap-style Java run over all its lines).
mod metrics_common;
use metrics_common::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tokenize(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .arg("tokenize")
        .arg("ptb")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn tricky() -> (Vec<String>, Vec<String>, Vec<String>) {
    let cases = read_json(&fixture("ptb/tricky.json"));
    let cases = cases.as_array().unwrap();
    let get = |k: &str| cases.iter().map(|c| c[k].as_str().unwrap().to_string()).collect::<Vec<_>>();
    (get("caption"), get("java_raw"), get("filtered"))
}

#[test]
fn stdin_lines_give_pycocoevalcaps_tokens() {
    let (caps, _, filtered) = tricky();
    let out = tokenize(&[], caps.join("\n").as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(got, filtered);
}

#[test]
fn unfiltered_file_input_gives_the_java_tokens() {
    let (caps, raw, _) = tricky();
    let dir = std::env::temp_dir().join(format!("fe-tokenize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("captions.txt");
    // a final newline ends the last caption, it does not add an empty one
    std::fs::write(&p, caps.join("\n") + "\n").unwrap();
    let out = tokenize(&["--unfiltered", p.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(got, raw);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn next_line_context_and_bad_utf8() {
    let out = tokenize(&["--unfiltered"], b"A photo by Michael L.\nThe man waves.\nBy Michael L.\nTwo men wave.\n");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "a photo by michael l .\nthe man waves .\nby michael l.\ntwo men wave .\n");
    let out = tokenize(&[], b"fine\nbroken \xff here\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("<stdin>: line 2 is not valid UTF-8"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn score_caption_warns_about_line_break_characters() {
    let dir = std::env::temp_dir().join(format!("fe-linebreak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ann = dir.join("ann.json");
    let res = dir.join("res.json");
    std::fs::write(
        &ann,
        r#"{"images": [{"id": 1}, {"id": 2}, {"id": 3}],
            "annotations": [{"image_id": 1, "id": 10, "caption": "a dog on a bed"},
                            {"image_id": 2, "id": 11, "caption": "a cat\u2028on a mat"},
                            {"image_id": 3, "id": 12, "caption": "two birds"}]}"#,
    )
    .unwrap();
    std::fs::write(
        &res,
        r#"[{"image_id": 1, "caption": "a dog\ron a bed"}, {"image_id": 2, "caption": "a cat"}, {"image_id": 3, "caption": "two birds"}]"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .args(["score", "caption", "--annotations", ann.to_str().unwrap(), "--results", res.to_str().unwrap(), "--bootstrap-resamples", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("2 sample(s) have a caption"), "{err}");
    assert!(err.contains(": 1, 2."), "ids named: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
