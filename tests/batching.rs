//! `--batching padded`: prompts of different lengths share decoder calls, left-padded to the longest. Same
//! tokens as each prompt generated alone (equal-length batching, the byte-identical default), scores equal to
//! float rounding, fewer decoder calls; the mode is part of a run's identity.

mod common;

use common::*;
use flamingo_eval::model::{Batching, FlamingoModel, Media, Prompt, RuntimeOptions, SearchParams};

fn load(dir: &std::path::Path, batching: Batching) -> FlamingoModel {
    FlamingoModel::load(dir, &RuntimeOptions { intra_threads: 1, batching, ..Default::default() })
        .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

fn prompts(model: &mut FlamingoModel) -> Vec<Prompt> {
    let img = |n: &str| Media::Image(images_dir().join(n));
    let names = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"];
    let mut out = Vec::new();
    for i in 0..6 {
        let shots = i % 3;
        let mut text = String::new();
        let mut media = Vec::new();
        for s in 0..shots {
            text.push_str(&format!("<image>Output:a photo number {s} of {i}{}.<|endofchunk|>", " and more".repeat(i)));
            media.push(img(names[(i + s) % 4]));
        }
        text.push_str("<image>Output:");
        media.push(img(names[i % 4]));
        let enc = model.encode_media(&media).unwrap();
        out.push(model.make_prompt(&text, enc).unwrap());
    }
    out
}

#[test]
fn padded_batching_generates_what_each_prompt_generates_alone() {
    for dir in fixture_models() {
        for beams in [1, 3] {
            let mut padded = load(&dir, Batching::Padded);
            let mut equal = load(&dir, Batching::EqualLength);
            let pp = prompts(&mut padded);
            let pe = prompts(&mut equal);
            let lens: std::collections::BTreeSet<usize> = pp.iter().map(|p| p.ids.len()).collect();
            assert!(lens.len() > 3, "{}: the prompts must differ in length", dir.display());
            let p = SearchParams { num_beams: beams, max_new_tokens: 8, min_new_tokens: 0, length_penalty: 0.0,
                                   stop_tokens: vec![padded.tokenizer.endofchunk_id] };
            let calls0 = (padded.stats.decoder_calls, equal.stats.decoder_calls);
            let a = padded.generate(&pp.iter().collect::<Vec<&Prompt>>(), &p).unwrap();
            let b = equal.generate(&pe.iter().collect::<Vec<&Prompt>>(), &p).unwrap();
            let calls = (padded.stats.decoder_calls - calls0.0, equal.stats.decoder_calls - calls0.1);
            assert!(calls.0 < calls.1, "{}: padded {} decoder calls, equal-length {}", dir.display(), calls.0, calls.1);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x.tokens, y.tokens, "{} beams {beams}: prompt {i}", dir.display());
                assert!((x.score - y.score).abs() <= 1e-4, "{}: prompt {i} score {} vs {}", dir.display(), x.score, y.score);
            }
            // and the equal-length default is what each prompt generates alone, bit for bit
            for (i, pr) in pe.iter().enumerate() {
                let alone = equal.generate(&[pr], &p).unwrap().remove(0);
                assert_eq!(alone.score.to_bits(), b[i].score.to_bits(), "{}: prompt {i}", dir.display());
            }
        }
    }
}

#[test]
fn a_padded_run_records_its_batching_and_is_kept_apart() {
    use flamingo_eval::engine::run;
    let tmp = tempfile::tempdir().unwrap();
    let mut c = run_config("tiny-gptneox", &bench("demo_vqa"), tmp.path());
    c.limit = Some(6);
    c.shots = Some(vec![4]);
    c.runtime.batching = Batching::Padded;
    run(&c).unwrap();
    let id: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(id["batching"], "padded");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["provenance"]["identity"]["batching"], "padded");
    // an equal-length run into the same folder is refused, naming what differs
    c.runtime.batching = Batching::EqualLength;
    let err = format!("{:#}", run(&c).unwrap_err());
    assert!(err.contains("different run") && err.contains("batching (--batching)"), "{err}");
    // and the default run's run.json carries no batching key (older folders still resume)
    let tmp2 = tempfile::tempdir().unwrap();
    let c2 = { let mut c2 = run_config("tiny-gptneox", &bench("demo_vqa"), tmp2.path()); c2.limit = Some(2); c2.shots = Some(vec![0]); c2 };
    run(&c2).unwrap();
    let id: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp2.path().join("run.json")).unwrap()).unwrap();
    assert!(id.get("batching").is_none(), "{id}");
}
