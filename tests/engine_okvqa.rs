//! An OK-VQA benchmark (`postprocess: ok_vqa_openflamingo`) in a run: without nltk's models the run stops
//! before any work, naming what is missing and how to get it; with them every prediction is the stemmed
//! generation. (The stemming itself is checked against OpenFlamingo's code in
//! export/tests/test_okvqa_stemmer.py.) One test per process: it sets NLTK_DATA and HOME.

mod common;

use common::*;
use flamingo_eval::engine::records::read_records;
use flamingo_eval::engine::run;
use std::path::Path;

fn okvqa_demo(dir: &Path) -> std::path::PathBuf {
    let root = repo();
    let text = std::fs::read_to_string(bench("demo_vqa"))
        .unwrap()
        .replace("../prompts/", &format!("{}/prompts/", root.display()))
        .replace("../data/", &format!("{}/data/", root.display()))
        .replace("postprocess: vqa_openflamingo", "postprocess: ok_vqa_openflamingo")
        .replace("shots: [0, 4]", "shots: [0]");
    assert!(text.contains("ok_vqa_openflamingo"));
    let p = dir.join("okvqa_demo.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn okvqa_runs_need_nltks_models_and_stem_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let nltk = tmp.path().join("nltk_data");
    std::fs::create_dir_all(&nltk).unwrap();
    std::env::set_var("NLTK_DATA", &nltk);
    std::env::set_var("HOME", tmp.path());
    let b = okvqa_demo(tmp.path());
    let out = tmp.path().join("out");
    let err = format!("{:#}", run(&run_config("tiny-gptneox", &b, &out)).unwrap_err());
    assert!(err.contains("averaged_perceptron_tagger_eng") && err.contains("punkt_tab") && err.contains("nltk.downloader"), "{err}");
    assert!(!out.join("samples.jsonl").exists(), "no work before the refusal");

    // a minimal model in nltk's file layout: every word is tagged a plural noun (so singularized)
    let tag = nltk.join("taggers/averaged_perceptron_tagger_eng");
    std::fs::create_dir_all(&tag).unwrap();
    let f = |a: &str| tag.join(format!("averaged_perceptron_tagger_eng.{a}.json"));
    std::fs::write(f("classes"), r#"["NN", "NNS"]"#).unwrap();
    std::fs::write(f("tagdict"), "{}").unwrap();
    std::fs::write(f("weights"), r#"{"bias": {"NNS": 0.5}}"#).unwrap();
    let punkt = nltk.join("tokenizers/punkt_tab/english");
    std::fs::create_dir_all(&punkt).unwrap();
    for n in ["abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab"] {
        std::fs::write(punkt.join(n), "").unwrap();
    }
    run(&run_config("tiny-gptneox", &b, &out)).unwrap();
    let recs = read_records(&out.join("samples.jsonl"), false).unwrap();
    assert!(!recs.is_empty());
    for r in &recs {
        let raw = r.raw_output.as_deref().unwrap();
        let cut = flamingo_eval::benchmark::postprocess::vqa_openflamingo(raw);
        let want = flamingo_eval::benchmark::okvqa::stem_with(flamingo_eval::benchmark::okvqa::models().unwrap(), &cut);
        assert_eq!(r.prediction.as_deref(), Some(want.as_str()), "{raw:?}");
    }
}
