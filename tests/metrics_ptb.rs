//! PTB tokenisation against the Java tokenizer's recorded output.
mod metrics_common;
use flamingo_eval::metrics::ptb::{
    filter_punctuation, has_line_terminator, ptb_tokenize_joined, ptb_tokenize_joined_lines, ptb_tokenize_lines, LINE_TERMINATORS,
};
use metrics_common::*;

fn fnv1a32(s: &str) -> String {
    let mut h: u32 = 0x811C9DC5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    format!("{h:08x}")
}

#[test]
fn tricky_strings_match_java() {
    // tricky.json: one Java run over all these lines (pycocoevalcap's call), raw and filtered output
    let cases = read_json(&fixture("ptb/tricky.json"));
    let cases = cases.as_array().unwrap();
    let lines: Vec<&str> = cases.iter().map(|c| c["caption"].as_str().unwrap()).collect();
    let ours = ptb_tokenize_lines(&lines);
    let mut bad = Vec::new();
    for (c, toks) in cases.iter().zip(&ours) {
        let cap = c["caption"].as_str().unwrap();
        let (raw, filtered) = (toks.join(" "), filter_punctuation(toks));
        if raw != c["java_raw"].as_str().unwrap() || filtered != c["filtered"].as_str().unwrap() {
            bad.push(format!("{cap:?}\n  java {:?}\n  ours {raw:?}", c["java_raw"]));
        }
    }
    assert!(bad.is_empty(), "{} of {} tricky strings differ from Java:\n{}", bad.len(), cases.len(), bad.join("\n"));
}

#[test]
fn line_final_initial_depends_on_the_next_caption() {
    // observed with the Java tool: an initial's period ends the sentence before a typical sentence opening
    let next_the = ptb_tokenize_lines(&["A photo by Michael L.", "The man waves."]);
    let next_two = ptb_tokenize_lines(&["A photo by Michael L.", "Two men wave."]);
    assert_eq!(next_two[0].join(" "), "a photo by michael l.");
    assert_eq!(next_the[0].join(" "), "a photo by michael l .");
    assert_eq!(ptb_tokenize_joined_lines(&["A photo by Michael L.", "The man waves."])[0], "a photo by michael l");
}

#[test]
fn line_terminators_read_as_spaces() {
    for t in LINE_TERMINATORS {
        let s = format!("a dog{t}on a bed");
        assert!(has_line_terminator(&s));
        assert_eq!(ptb_tokenize_joined(&s), "a dog on a bed");
    }
    assert!(!has_line_terminator("a dog\u{85}on a bed"), "U+0085 is no line break for the Java tool");
    assert_eq!(ptb_tokenize_joined("a dog\u{85}on a bed"), "a dog on a bed");
}

#[test]
fn coco_captions_with_punctuation_match_java() {
    let cases = read_json(&fixture("ptb/coco_interesting.json"));
    let mut bad = Vec::new();
    for c in cases.as_array().unwrap() {
        let cap = c["caption"].as_str().unwrap();
        if ptb_tokenize_joined(cap) != c["filtered"].as_str().unwrap() {
            bad.push(cap.to_string());
        }
    }
    assert!(bad.is_empty(), "filtered-token mismatches: {bad:#?}");
}

#[test]
fn all_24k_coco_captions_match_java() {
    let Some(d) = shared_data() else { return };
    let ann = read_json(&d.join("coco_captions/captions_val2014_subset4800.json"));
    let hashes = std::fs::read_to_string(fixture("ptb/coco_subset4800_filtered_fnv1a32.txt")).unwrap();
    let hashes: Vec<&str> = hashes.lines().collect();
    let caps = ann["annotations"].as_array().unwrap();
    assert_eq!(caps.len(), hashes.len());
    let mut bad = Vec::new();
    for (a, h) in caps.iter().zip(&hashes) {
        let cap = a["caption"].as_str().unwrap().replace('\n', " ");
        if fnv1a32(&ptb_tokenize_joined(&cap)) != *h {
            bad.push(cap);
        }
    }
    assert!(bad.is_empty(), "{} of {} captions differ from Java: {:#?}", bad.len(), caps.len(), &bad[..bad.len().min(20)]);
}

#[test]
fn corpus_tokenization_follows_pycocoevalcaps_calls() {
    use flamingo_eval::metrics::caption::{line_terminator_samples, samples_from_raw};
    // references are one tokenizer call across images, candidates another: the initial at the end of
    // image 1's last reference sees image 2's first reference ("The ..."), not image 1's candidate
    let r1 = ["A photo by Michael L."];
    let r2 = ["The man waves.", "A man\u{2029}waves."];
    let items: Vec<(String, &str, &[&str])> =
        vec![("1".into(), "Photo by J. Smith", &r1[..]), ("2".into(), "A man waves\r", &r2[..])];
    let s = samples_from_raw(&items);
    assert_eq!(s[0].references, vec!["a photo by michael l"]);
    assert_eq!(s[0].candidate, "photo by j. smith");
    assert_eq!(s[1].references, vec!["the man waves", "a man waves"]);
    assert_eq!(s[1].candidate, "a man waves");
    assert_eq!(line_terminator_samples(&items), vec!["2".to_string()]);
}
