//! Byte-exact prompts against strings produced by OpenFlamingo's own prompt code
//! (tests/fixtures/data/expected_prompts, made by scripts/prompt_reference/make_expected.py).

use flamingo_eval::benchmark::{postprocess, prompt::build_prompt, Benchmark, MediaRef, PromptTemplate, Sample};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn expected(family: &str) -> Value {
    let p = root().join("tests/fixtures/data/expected_prompts").join(format!("{family}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn check_family(family: &str) {
    let exp = expected(family);
    let bench = Benchmark::load(&root().join(exp["benchmark"].as_str().unwrap())).unwrap();
    let mut shots_seen = std::collections::BTreeSet::new();
    for case in exp["cases"].as_array().unwrap() {
        let shots = case["shots"].as_u64().unwrap() as usize;
        shots_seen.insert(shots);
        let qid = case["query_id"].as_str().unwrap();
        let query = &bench.query.samples[bench.query.position(qid).unwrap_or_else(|| panic!("{family}: query {qid} not loaded"))];
        let demos: Vec<&Sample> = case["demo_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &bench.demos.samples[bench.demos.position(d.as_str().unwrap()).unwrap()])
            .collect();
        assert_eq!(demos.len(), bench.effective_shots(shots), "{family} {shots}: effective shots");
        let built = build_prompt(&bench.template, query, &demos, shots == 0).unwrap();
        assert_eq!(built.text, case["prompt"].as_str().unwrap(), "{family} shots={shots} query={qid}");

        // Media order, mapped back to OpenFlamingo's stand-in names.
        let named: Vec<String> = built
            .media
            .iter()
            .map(|m| {
                if m == &query.media {
                    format!("Q:{}", query.id)
                } else {
                    let d = demos.iter().find(|d| &d.media == m).unwrap();
                    format!("D:{}", d.id)
                }
            })
            .collect();
        let of: Vec<String> = case["of_media"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let classification = matches!(family, "imagenet" | "hateful_memes");
        if shots == 0 && classification {
            // OF passes the two text-only demos' images at 0 shots (bug, not reproduced): we pass the query only.
            assert_eq!(named, vec![format!("Q:{qid}")]);
            assert_eq!(of.len(), 3);
        } else {
            // Several samples may share a media file; compare by path.
            let path_of = |name: &str| -> PathBuf {
                let (kind, id) = name.split_at(2);
                let s = if kind == "Q:" { query } else { *demos.iter().find(|d| d.id == id).unwrap() };
                s.media.path().to_path_buf()
            };
            let ours_p: Vec<PathBuf> = built.media.iter().map(|m| m.path().to_path_buf()).collect();
            let of_p: Vec<PathBuf> = of.iter().map(|n| path_of(n)).collect();
            assert_eq!(ours_p, of_p, "{family} shots={shots}: media order");
        }
    }
    assert_eq!(shots_seen.into_iter().collect::<Vec<_>>(), vec![0, 4, 32]);
}

#[test]
fn openflamingo_vqa_prompts_are_byte_exact() {
    check_family("vqa");
}

#[test]
fn openflamingo_caption_prompts_are_byte_exact() {
    check_family("caption");
}

#[test]
fn openflamingo_imagenet_prompts_are_byte_exact() {
    check_family("imagenet");
}

#[test]
fn openflamingo_hateful_memes_prompts_are_byte_exact() {
    check_family("hateful_memes");
}

#[test]
fn video_qa_prompts_match_openflamingo_vqa_construction() {
    check_family("video_qa");
}

#[test]
fn postprocessing_matches_openflamingo() {
    let exp = expected("postprocess");
    for pair in exp["vqa"].as_array().unwrap() {
        assert_eq!(postprocess::vqa_openflamingo(pair[0].as_str().unwrap()), pair[1].as_str().unwrap(), "{pair}");
    }
    for pair in exp["caption"].as_array().unwrap() {
        assert_eq!(postprocess::caption_openflamingo(pair[0].as_str().unwrap()), pair[1].as_str().unwrap(), "{pair}");
    }
}

fn sample(id: &str, q: Option<&str>, target: &str) -> Sample {
    Sample {
        id: id.into(),
        media: MediaRef::Image(PathBuf::from(format!("{id}.jpg"))),
        question: q.map(Into::into),
        text: None,
        demo_target: target.into(),
        target: flamingo_eval::benchmark::Target::Answer { answer: target.into() },
    }
}

#[test]
fn flamingo_paper_templates() {
    let t = PromptTemplate::from_file(&root().join("prompts/flamingo_vqa.yaml")).unwrap();
    let d1 = sample("a", Some("What is it?"), "cat");
    let d2 = sample("b", Some("How many?"), "2");
    let q = sample("q", Some("Where?"), "");
    let p = build_prompt(&t, &q, &[&d1, &d2], false).unwrap();
    assert_eq!(
        p.text,
        "<image>Question: What is it? Answer: cat<|endofchunk|>\n<image>Question: How many? Answer: 2<|endofchunk|>\n<image>Question: Where? Answer:"
    );
    assert_eq!(p.media.len(), 3);
    let z = build_prompt(&t, &q, &[&d1, &d2], true).unwrap();
    assert_eq!(z.text, "Question: What is it? Answer: cat<|endofchunk|>\nQuestion: How many? Answer: 2<|endofchunk|>\n<image>Question: Where? Answer:");
    assert_eq!(z.media, vec![q.media.clone()]);

    let c = PromptTemplate::from_file(&root().join("prompts/flamingo_caption.yaml")).unwrap();
    let p = build_prompt(&c, &q, &[&d1], false).unwrap();
    assert_eq!(p.text, "<image>Output: cat<|endofchunk|>\n<image>Output:");
}

#[test]
fn a_marker_inside_a_question_is_an_error_not_a_media_mismatch() {
    let t = PromptTemplate::from_file(&root().join("prompts/openflamingo_vqa.yaml")).unwrap();
    let q = sample("q", Some("what is <image>?"), "");
    let err = build_prompt(&t, &q, &[], false).unwrap_err().to_string();
    assert!(err.contains("sample q") && err.contains("markers"), "{err}");
}

#[test]
fn every_shipped_template_parses() {
    for e in std::fs::read_dir(root().join("prompts")).unwrap() {
        let p = e.unwrap().path();
        PromptTemplate::from_file(Path::new(&p)).unwrap();
    }
}

/// m4's prompt assembly (the IDEFICS authors' evaluation code, huggingface/smollm vision/m4 @ a041759,
/// `prepare_dataset` of the vgpt2 VQA / captioning / classification tasks): prefix + every demonstration's
/// example text + the query's example text (empty answer, `.strip()`ped), the whole `.strip()`ped; `{bos_token}`
/// left out (the manifest's BOS) and `{token_around_image}{image_token}{token_around_image}` written `<image>`
/// (the runtime's prompt_format writes the fake tokens). Zero-shot demonstrations lose their image
/// (ShotSelectionMode.first_without_image).
fn m4_prompt(prefix: &str, example: &str, demos: &[(&str, &str)], query_q: &str, without_image: bool) -> String {
    let fill = |q: &str, a: &str| example.replace("{question}", q).replace("{text}", q).replace("{answer}", a);
    let mut s = prefix.to_string();
    for (q, a) in demos {
        let e = fill(q, a);
        s += &if without_image { e.replace("<image>", "") } else { e };
    }
    s += fill(query_q, "").trim();
    s.trim().to_string()
}

#[test]
fn idefics_templates_build_m4s_prompts() {
    let d1 = sample("a", Some("What is it?"), "cat");
    let d2 = sample("b", Some("How many?"), "2");
    let q = sample("q", Some("Where?"), "");
    let demos = [("What is it?", "cat"), ("How many?", "2")];
    // (template, m4 prefix, m4 example) — VQA template 9, VizWiz template 3, captioning template 7
    let cases = [
        ("idefics_vqa", "Instruction: provide an answer to the question. Use the image to answer.\n", "Image:<image>Question: {question} Answer: {answer}\n"),
        ("idefics_vizwiz", "Task: Answer the questions based on the image when possible, otherwise say unanswerable.\n", "Image:<image>Question: {question} Answer: {answer}\n"),
        ("idefics_caption", "", "Image:<image>Caption: {answer}\n"),
        (
            "idefics_hateful_memes",
            "It's a conversation between a human, the user, and an intelligent visual AI, Bot. The user sends memes with text written on them, and Bot has to say whether the meme is hateful or not.",
            "<image>is an image with written \"{text}\" on it. Is it hateful? Answer: {answer}",
        ),
    ];
    for (name, prefix, example) in cases {
        let t = PromptTemplate::from_file(&root().join(format!("prompts/{name}.yaml"))).unwrap();
        let text = |s: &Sample| -> Sample {
            // the HatefulMemes layout gives the meme text as `text`
            let mut s = s.clone();
            if name.contains("hateful") {
                s.text = s.question.take();
            }
            s
        };
        let (d1, d2, q) = (text(&d1), text(&d2), text(&q));
        for without_image in [false, true] {
            let p = build_prompt(&t, &q, &[&d1, &d2], without_image).unwrap();
            assert_eq!(p.text, m4_prompt(prefix, example, &demos, "Where?", without_image), "{name} (text-only demos: {without_image})");
            assert_eq!(p.media.len(), if without_image { 1 } else { 3 });
        }
    }
}

#[test]
fn a_template_prefix_is_literal_text_without_media() {
    let dir = tempfile::tempdir().unwrap();
    for (prefix, needle) in [("Q: {question}\n", "placeholders are not allowed"), ("<image>\n", "media marker")] {
        let p = dir.path().join("t.yaml");
        std::fs::write(&p, format!("name: t\nprefix: {prefix:?}\ndemo: \"<image>{{answer}}\"\nquery: \"<image>\"\n")).unwrap();
        let e = PromptTemplate::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("t.yaml: prefix") && e.contains(needle), "{e}");
    }
}
