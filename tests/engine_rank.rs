//! Ranking tasks end to end: prompt ensembling, and ROC-AUC with a single class.
//!
//! Prompt ensembling (`ranking.ensemble_permutations`, OpenFlamingo's `--classification_prompt_ensembling`)
//! on a small ImageNet-layout benchmark and a tiny fixture model. OpenFlamingo's logic (evaluate.py,
//! evaluate_classification): min(6, k!) demonstration orders for k in-context examples (k = 2 text-only ones at
//! 0 shots), each a `random.shuffle` of the previous order (here the first is the selected order itself), and
//! the per-class length-normalised log-probabilities averaged over the orders before ranking. Checked here: the number of orders, that each is
//! an order of the same demonstrations, and that each order's scores are exactly those of an ordinary run
//! pinned to that order (`--demos`), averaged into the candidate score.

mod common;

use common::*;
use flamingo_eval::benchmark::pinned::PinsConfig;
use flamingo_eval::engine::records::read_records;
use flamingo_eval::engine::run;
use std::path::{Path, PathBuf};

fn imagenet_fixture(dir: &Path, permutations: usize) -> PathBuf {
    let root = dir.join("imagenet");
    let src = repo().join("data/demo/images");
    let mut train: Vec<PathBuf> = std::fs::read_dir(src.join("train2014")).unwrap().map(|e| e.unwrap().path()).collect();
    let mut val: Vec<PathBuf> = std::fs::read_dir(src.join("val2014")).unwrap().map(|e| e.unwrap().path()).collect();
    train.sort();
    val.sort();
    let wnids = ["n01440764", "n01443537", "n01484850"];
    for (i, p) in train.iter().enumerate() {
        let d = root.join("train").join(wnids[i % 3]);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(p, d.join(p.file_name().unwrap())).unwrap();
    }
    for (i, p) in val.iter().enumerate() {
        let d = root.join("val").join(wnids[i % 3]);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(p, d.join(p.file_name().unwrap())).unwrap();
    }
    // the first three of the shipped class names (tench, goldfish, great white shark)
    let names: Vec<String> = std::fs::read_to_string(repo().join("data/imagenet/classnames.txt")).unwrap().lines().take(3).map(String::from).collect();
    std::fs::write(root.join("classnames.txt"), names.join("\n") + "\n").unwrap();
    let yaml = format!(
        "name: ensemble_fixture\ntask: rank\ntemplate: {}/prompts/openflamingo_imagenet.yaml\ndataset:\n  layout: imagenet\n  \
         query: {{root: {r}/val, class_names: {r}/classnames.txt}}\n  demos: {{root: {r}/train, class_names: {r}/classnames.txt}}\n\
         shots: [0, 2, 3]\ntrials: {{seeds: [7]}}\nzero_shot: {{policy: text_only_demos, demos: 2}}\n\
         ranking: {{normalization: mean, ensemble_permutations: {permutations}}}\nmetric: {{name: top_k_accuracy, top_k: [1]}}\n",
        repo().display(),
        r = root.display()
    );
    let p = dir.join(format!("bench_p{permutations}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p
}

fn factorial(k: usize) -> usize {
    (1..=k).product()
}

#[test]
fn ensembled_scores_are_the_mean_over_demonstration_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let b = imagenet_fixture(tmp.path(), 6);
    let out = tmp.path().join("ens");
    run(&run_config("tiny-gptneox", &b, &out)).unwrap();
    let recs = read_records(&out.join("samples.jsonl"), false).unwrap();
    assert_eq!(recs.len(), 4 * 3);
    let mut orders_of = Vec::new();
    for r in &recs {
        assert!(r.error.is_none(), "{:?}", r.error);
        let first = if r.shot == 0 { r.text_only_demo_ids.clone() } else { r.demo_ids.clone() };
        let k = first.len();
        assert_eq!(k, if r.shot == 0 { 2 } else { r.shot });
        let mut orders = vec![first.clone()];
        orders.extend(r.ensemble_demo_ids.clone().expect("ensemble orders recorded"));
        assert_eq!(orders.len(), 6.min(factorial(k)), "shot {}: OpenFlamingo uses min(6, k!) orders", r.shot);
        let mut sorted_first = first.clone();
        sorted_first.sort();
        for o in &orders {
            let mut s = o.clone();
            s.sort();
            assert_eq!(s, sorted_first, "every order holds the same demonstrations");
        }
        for c in r.candidate_scores.as_ref().unwrap() {
            let per = c.permutation_scores.as_ref().expect("per-order scores");
            assert_eq!(per.len(), orders.len());
            assert_eq!(c.score, per.iter().sum::<f64>() / per.len() as f64);
        }
        orders_of.push((r.sample_id.clone(), r.shot, orders));
    }
    // orders really vary (3 demonstrations, 6 shuffles)
    assert!(orders_of.iter().any(|(_, shot, o)| *shot == 3 && o.iter().any(|x| *x != o[0])));

    // each order's scores = an ordinary (unensembled) run with the demonstrations pinned to that order
    let plain = imagenet_fixture(tmp.path(), 1);
    for j in 0..6 {
        let mut pins = String::new();
        for (id, shot, orders) in &orders_of {
            if let Some(o) = orders.get(j) {
                let key = if *shot == 0 { "text_only_demo_ids" } else { "demo_ids" };
                pins += &format!("{}\n", serde_json::json!({"sample_id": id, "shot": shot, "trial": 0, key: o}));
            }
        }
        let pins_path = tmp.path().join(format!("pins{j}.jsonl"));
        std::fs::write(&pins_path, pins).unwrap();
        let o = tmp.path().join(format!("plain{j}"));
        let mut c = run_config("tiny-gptneox", &plain, &o);
        c.demos = Some(PinsConfig { path: pins_path, fallback: true });
        run(&c).unwrap();
        let single = read_records(&o.join("samples.jsonl"), false).unwrap();
        for r in &single {
            let e = recs.iter().find(|e| e.sample_id == r.sample_id && e.shot == r.shot).unwrap();
            let (_, _, orders) = orders_of.iter().find(|(id, shot, _)| *id == r.sample_id && *shot == r.shot).unwrap();
            if j >= orders.len() {
                continue;
            }
            assert!(r.ensemble_demo_ids.is_none());
            for (a, b) in r.candidate_scores.as_ref().unwrap().iter().zip(e.candidate_scores.as_ref().unwrap()) {
                assert!(a.permutation_scores.is_none());
                assert_eq!(a.score, b.permutation_scores.as_ref().unwrap()[j], "sample {} shot {} order {j}", r.sample_id, r.shot);
            }
        }
    }
}

#[test]
fn ensembled_run_replays_from_its_own_samples_as_pins() {
    let tmp = tempfile::tempdir().unwrap();
    let b = imagenet_fixture(tmp.path(), 6);
    let a = tmp.path().join("a");
    run(&run_config("tiny-gptneox", &b, &a)).unwrap();
    let mut c = run_config("tiny-gptneox", &b, &tmp.path().join("replay"));
    c.demos = Some(PinsConfig { path: a.join("samples.jsonl"), fallback: false });
    run(&c).unwrap();
    assert_eq!(std::fs::read(a.join("samples.jsonl")).unwrap(), std::fs::read(tmp.path().join("replay/samples.jsonl")).unwrap());
}

#[test]
fn ensembling_is_deterministic_across_batch_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let b = imagenet_fixture(tmp.path(), 6);
    let mut a = run_config("tiny-gptneox", &b, &tmp.path().join("a"));
    a.batch_size = 1;
    run(&a).unwrap();
    let mut c = run_config("tiny-gptneox", &b, &tmp.path().join("c"));
    c.batch_size = 3;
    run(&c).unwrap();
    assert_eq!(std::fs::read(tmp.path().join("a/samples.jsonl")).unwrap(), std::fs::read(tmp.path().join("c/samples.jsonl")).unwrap());
}

/// ROC-AUC over a query split with one class is undefined (scikit-learn 1.9.1: NaN + UndefinedMetricWarning):
/// the run completes, summary.json has no number (null) and the table prints "undefined" with the reason.
#[test]
fn single_class_roc_auc_run_prints_undefined() {
    let tmp = tempfile::tempdir().unwrap();
    let root = repo();
    let dev: String = std::fs::read_to_string(root.join("data/demo/memes_dev.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["label"] = serde_json::json!(1);
            format!("{v}\n")
        })
        .collect();
    std::fs::write(tmp.path().join("dev.jsonl"), dev).unwrap();
    let text = std::fs::read_to_string(bench("demo_hateful"))
        .unwrap()
        .replace("../data/demo/memes_dev.jsonl", &tmp.path().join("dev.jsonl").display().to_string())
        .replace("../prompts/", &format!("{}/prompts/", root.display()))
        .replace("../data/", &format!("{}/data/", root.display()))
        .replace("shots: [0, 4]", "shots: [0]");
    let b = tmp.path().join("bench.yaml");
    std::fs::write(&b, text).unwrap();
    let out = tmp.path().join("out");
    let s = run(&run_config("tiny-gptneox", &b, &out)).unwrap();
    assert!(s.results[0].mean.is_nan() && s.results[0].n > 0);
    let table = flamingo_eval::engine::run::format_table(&s);
    assert!(table.contains("undefined") && table.contains("only one class") && table.contains("returns NaN"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(json["results"][0]["mean"].is_null(), "{}", json["results"][0]);
}
