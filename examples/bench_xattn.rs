//! Decoder time per generated token with the cross-attention cache (contract 3) and without it (contract 2,
//! the recompute path), for model directories of the same weights (export/CONTRACT.md, "Cross-attention cache").
//!
//! cargo run --release --example bench_xattn -- MODEL_DIR...
//!
//! Per model: a 4-shot prompt (5 images), greedy at batch 1 and batch 8, beam-3 at batch 1. The per-token time
//! is (decoder time of a 33-token generation − that of a 1-token generation) / 32, i.e. decode steps only, prefill
//! excluded; best of 3 repetitions. BENCH_IO_BINDING=1: decoder calls through ONNX Runtime's IoBinding
//! (`--io-binding`); BENCH_THREADS: intra-op threads (default 1).

use flamingo_eval::model::{FlamingoModel, Media, Prompt, RuntimeOptions, SearchParams};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let img = |n: &str| Media::Image(root.join("tests/fixtures/images").join(n));
    let threads = std::env::var("BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let io_binding = std::env::var("BENCH_IO_BINDING").is_ok_and(|v| v == "1");
    println!("| model | contract | dtype | io-binding | cross-attn cache | greedy b=1 ms/token | greedy b=8 ms/step | beam-3 b=1 ms/step |");
    println!("|---|---|---|---|---|---|---|---|");
    for dir in dirs {
        let mut m = FlamingoModel::load(&dir, &RuntimeOptions { intra_threads: threads, io_binding, ..Default::default() })?;
        let names = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg", "chelsea.png"];
        let enc = m.encode_media(&names.iter().map(|n| img(n)).collect::<Vec<_>>())?;
        let text = "<image>Output:a cat.<|endofchunk|><image>Output:a rocket.<|endofchunk|><image>Output:a cup.<|endofchunk|><image>Output:a woman.<|endofchunk|><image>Output:";
        let prompt = m.make_prompt(text, enc)?;
        let mut per_token = |rows: usize, beams: usize| -> anyhow::Result<f64> {
            let batch: Vec<&Prompt> = (0..rows).map(|_| &prompt).collect();
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let mut dec = |n: usize| -> anyhow::Result<f64> {
                    let p = SearchParams { num_beams: beams, max_new_tokens: n, min_new_tokens: n, length_penalty: 0.0, stop_tokens: vec![] };
                    let before = m.stats.decoder_time;
                    m.generate(&batch, &p)?;
                    Ok((m.stats.decoder_time - before).as_secs_f64())
                };
                let (one, many) = (dec(1)?, dec(33)?);
                best = best.min((many - one) / 32.0 * 1e3);
            }
            Ok(best)
        };
        let (g1, g8, b3) = (per_token(1, 1)?, per_token(8, 1)?, per_token(1, 3)?);
        println!(
            "| {} | {} | {} | {} | {} | {g1:.2} | {g8:.2} | {b3:.2} |",
            m.manifest.name,
            m.manifest.contract_version,
            m.manifest.dtype().as_str(),
            if io_binding { "yes" } else { "no" },
            if m.cross_attn_cached() { "yes" } else { "no (recompute)" }
        );
    }
    Ok(())
}
