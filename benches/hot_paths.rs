//! `cargo bench --bench hot_paths [-- FILTER]`: the harness's hot paths outside ONNX Runtime.
//!
//! A small self-contained timing harness (no extra dependencies, builds offline): each case runs for about
//! `BENCH_SECS` seconds (default 1) after a warm-up, in 10 timed rounds; the median and the minimum time per
//! iteration are printed. Cases: image preprocessing (decode + CLIP transform at 224 px), prompt building and
//! tokenisation (32-shot VQA requests), beam-search bookkeeping (3 beams, 20 steps, 2 vocabulary sizes),
//! log-softmax, and the metrics (VQA accuracy, CIDEr-D with PTB tokenisation, bootstrap).

use flamingo_eval::benchmark::Benchmark;
use flamingo_eval::metrics::caption::{cider_d, CaptionSample};
use flamingo_eval::metrics::vqa::{vqa_accuracy, VqaMode};
use flamingo_eval::model::flamingo::log_softmax;
use flamingo_eval::model::manifest::Manifest;
use flamingo_eval::model::preprocess::{decode_image_file, preprocess};
use flamingo_eval::model::search::{Search, SearchParams, Step};
use flamingo_eval::model::tokenizer::Tokenizer;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

struct Harness {
    filter: Option<String>,
    budget: Duration,
}

impl Harness {
    fn run<T>(&self, name: &str, mut f: impl FnMut() -> T) {
        if let Some(flt) = &self.filter {
            if !name.contains(flt.as_str()) {
                return;
            }
        }
        // Warm-up, and an estimate of how many iterations fill one round.
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < self.budget / 10 || n == 0 {
            black_box(f());
            n += 1;
        }
        let per_round = n.max(1);
        let mut rounds: Vec<f64> = (0..10)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..per_round {
                    black_box(f());
                }
                t.elapsed().as_secs_f64() / per_round as f64
            })
            .collect();
        rounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{name:<44} median {:>12}   min {:>12}   ({} iters/round)", fmt(rounds[5]), fmt(rounds[0]), per_round);
    }
}

fn fmt(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} µs", s * 1e6)
    }
}

/// Deterministic pseudo-random logits (xorshift), roughly N(0, 2)-shaped.
fn logits(seed: u64, v: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..v)
        .map(|_| {
            let mut s = 0f32;
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s += (x >> 40) as f32 / (1u64 << 24) as f32;
            }
            (s - 2.0) * 3.5
        })
        .collect()
}

/// One full beam search (prompt logits, then `steps` decode steps) over precomputed logits rows.
fn beam_search(params: &SearchParams, rows: &[Vec<f32>]) -> (Vec<u32>, f32) {
    let mut s = Search::new(params, 100).unwrap();
    let mut cur: Vec<Vec<f32>> = vec![rows[0].clone()];
    let mut k = 1;
    loop {
        match s.advance(&cur).unwrap() {
            Step::Done => return s.finish(),
            Step::Continue { rows: r, .. } => {
                cur = r.iter().map(|_| { k = (k + 1) % rows.len(); rows[k].clone() }).collect();
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let secs: f64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let h = Harness { filter: args.first().cloned(), budget: Duration::from_secs_f64(secs) };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tiny = root.join("tests/fixtures/models/tiny-gptneox");
    let manifest = Manifest::load(&tiny).expect("tiny-gptneox fixture");

    // --- preprocessing: decode + resize (bicubic, PIL's fixed point) + crop + normalise at 224 px
    let mut pp = manifest.preprocess.clone();
    pp.image_size = 224;
    let jpeg = root.join("tests/fixtures/images/grace_hopper.jpg");
    let png = root.join("tests/fixtures/images/chelsea.png");
    let raw = decode_image_file(&jpeg).unwrap();
    h.run("preprocess/decode_jpeg (grace_hopper)", || decode_image_file(&jpeg).unwrap());
    h.run("preprocess/transform_224 (jpeg pixels)", || preprocess(&raw, &pp));
    h.run("preprocess/decode+transform_224 (png)", || preprocess(&decode_image_file(&png).unwrap(), &pp));

    // --- prompt building and tokenisation
    let bench = Benchmark::load(&root.join("benchmarks/demo_vqa.yaml")).unwrap();
    let tok = Tokenizer::load(&tiny.join("tokenizer.json"), &manifest).unwrap();
    h.run("prompts/requests vqa 4-shot (12 queries)", || bench.requests(4, 0, None).unwrap());
    h.run("prompts/requests vqa 32-shot (12 queries)", || bench.requests(32, 0, None).unwrap());
    let set = bench.requests(32, 0, None).unwrap();
    let long: Vec<String> = set.requests.iter().map(|r| r.prompt.clone()).collect();
    h.run("prompts/tokenize 32-shot prompt x12", || long.iter().map(|p| tok.encode(p).unwrap().len()).sum::<usize>());

    // --- beam search bookkeeping (3 beams, 20 new tokens, no stop token fires)
    for v in [2051usize, 50280] {
        let rows: Vec<Vec<f32>> = (0..16).map(|i| logits(i as u64 + 1, v)).collect();
        let params = SearchParams { num_beams: 3, max_new_tokens: 20, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![v as u32 - 3] };
        h.run(&format!("search/beam3 20 steps vocab {v}"), || beam_search(&params, &rows));
        let greedy = SearchParams::greedy(20, vec![v as u32 - 3]);
        h.run(&format!("search/greedy 20 steps vocab {v}"), || beam_search(&greedy, &rows));
        h.run(&format!("search/log_softmax vocab {v}"), || log_softmax(&rows[0]));
    }

    // --- metrics
    let answers: Vec<String> = ["two", "2", "yes", "red", "a dog", "two", "2", "2", "Two.", "two"].iter().map(|s| s.to_string()).collect();
    let preds = ["2", "two", "Two dogs", "yes", "the red one"];
    h.run("metrics/vqa_accuracy x1000 (official)", || {
        (0..1000).map(|i| vqa_accuracy(preds[i % 5], &answers, VqaMode::Official)).sum::<f64>()
    });
    let caps = ["A man riding a horse on a beach.", "Two dogs playing with a red ball in the grass.", "A plate of food with broccoli and rice.", "A bus parked next to a building on a city street.", "A cat sitting on top of a wooden table."];
    let samples: Vec<CaptionSample> = (0..500)
        .map(|i| CaptionSample::from_raw(format!("{i}"), caps[i % 5], &[caps[(i + 1) % 5], caps[(i + 2) % 5], caps[i % 5], caps[(i + 3) % 5], caps[(i + 4) % 5]]))
        .collect();
    h.run("metrics/ptb_tokenize 500 x (1 cand + 5 refs)", || {
        (0..500).map(|i| CaptionSample::from_raw("x", caps[i % 5], &caps).candidate.len()).sum::<usize>()
    });
    h.run("metrics/cider_d 500 images", || cider_d(&samples).corpus);
}
