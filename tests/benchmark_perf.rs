//! Measurements (not assertions): run with
//! `cargo test --release --test benchmark_perf -- --ignored --nocapture`.
//! - load a benchmark and build every prompt for 5000 queries at 32 shots (synthetic VQA files);
//! - RICES retrieval for 5000 queries against 100 000 demonstrations (synthetic 768-d embeddings).

use flamingo_eval::benchmark::{rices, Benchmark};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

#[test]
#[ignore]
fn measure_prompt_building_5000_queries_32_shots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("img")).unwrap();
    for i in 0..1000 {
        std::fs::write(d.join("img").join(format!("COCO_x_{i:012}.jpg")), b"").unwrap();
    }
    let write_split = |name: &str, n: usize, base: usize| {
        let qs: Vec<_> = (0..n).map(|i| serde_json::json!({"question_id": base + i, "image_id": (base + i) % 1000, "question": format!("What is shown in picture number {i}?")})).collect();
        let anns: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"question_id": base + i, "image_id": (base + i) % 1000, "answer_type": "other", "question_type": "what is",
                "answers": (0..10).map(|j| serde_json::json!({"answer": format!("answer {}", (i + j) % 13), "answer_id": j + 1})).collect::<Vec<_>>()}))
            .rev()
            .collect();
        std::fs::write(d.join(format!("{name}_q.json")), serde_json::json!({"questions": qs}).to_string()).unwrap();
        std::fs::write(d.join(format!("{name}_a.json")), serde_json::json!({"annotations": anns}).to_string()).unwrap();
    };
    write_split("val", 5000, 0);
    write_split("train", 20000, 1_000_000);
    let tpl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/openflamingo_vqa.yaml");
    std::fs::write(
        d.join("b.yaml"),
        format!(
            "name: perf\ntask: generate\ntemplate: {}\ndataset:\n  layout: vqa\n  query: {{questions: val_q.json, annotations: val_a.json, images: img, pattern: \"COCO_x_{{image_id:012}}.jpg\"}}\n  demos: {{questions: train_q.json, annotations: train_a.json, images: img, pattern: \"COCO_x_{{image_id:012}}.jpg\"}}\nshots: [32]\ntrials: {{seeds: [42]}}\nquery_set_size: 2048\ngeneration: {{max_new_tokens: 5, num_beams: 3, length_penalty: 0.0}}\nmetric: {{name: vqa_accuracy}}\n",
            tpl.display()
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let b = Benchmark::load(&d.join("b.yaml")).unwrap();
    let t_load = t0.elapsed();
    let t1 = Instant::now();
    let set = b.requests(32, 0, None).unwrap();
    let t_build = t1.elapsed();
    let bytes: usize = set.requests.iter().map(|r| r.prompt.len()).sum();
    println!(
        "PERF prompts: load {:.3} s (5000 query + 20000 demo questions), build 5000 requests at 32 shots {:.3} s ({} prompt bytes, {} media), total {:.3} s, threads {}, peak RSS {:.0} MiB",
        t_load.as_secs_f64(),
        t_build.as_secs_f64(),
        bytes,
        set.requests.iter().map(|r| r.media.len()).sum::<usize>(),
        (t_load + t_build).as_secs_f64(),
        rayon::current_num_threads(),
        peak_rss_mib()
    );
}

#[test]
#[ignore]
fn measure_rices_5000_queries_100000_demos() {
    let dim = 768;
    let (nq, nd) = (5000, 100_000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut demos = Array2::from_shape_simple_fn((nd, dim), || rng.random::<f32>() - 0.5);
    let mut queries = Array2::from_shape_simple_fn((nq, dim), || rng.random::<f32>() - 0.5);
    rices::normalise_rows(&mut demos);
    rices::normalise_rows(&mut queries);
    let image_of: Vec<u32> = (0..nd as u32).collect();
    let exclude = vec![None; nq];
    let before = peak_rss_mib();
    let t = Instant::now();
    let r = rices::retrieve(queries.view(), demos.view(), &image_of, 32, &exclude).unwrap();
    let el = t.elapsed();
    assert_eq!(r.len(), nq);
    println!(
        "PERF rices: {nq} queries x {nd} demos, dim {dim}, k=32: {:.2} s, threads {}; embeddings {:.0} MiB (demos) + {:.0} MiB (queries); peak RSS before {:.0} MiB, after {:.0} MiB",
        el.as_secs_f64(),
        rayon::current_num_threads(),
        (nd * dim * 4) as f64 / 1048576.0,
        (nq * dim * 4) as f64 / 1048576.0,
        before,
        peak_rss_mib()
    );
}
