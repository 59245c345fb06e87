//! Runtime measurements for the model layer (issue 3): per-component latency on the tiny fixture models,
//! decode tokens/s at batch 1 and 8, and the share of generate wall time spent outside ONNX Runtime.
//!
//! cargo run --release --example bench_runtime [-- MODEL_DIR...]

use flamingo_eval::model::{FlamingoModel, Media, RuntimeOptions, SearchParams};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        for n in ["tiny-gptneox", "tiny-mpt", "tiny-video"] {
            dirs.push(root.join("tests/fixtures/models").join(n));
        }
    }
    let img = |n: &str| root.join("tests/fixtures/images").join(n);
    println!("| model | vision (1 img) | vision (8 img) | perceiver (8 media) | prefill 2-shot | decode step b=1 | tokens/s b=1 | tokens/s b=8 | beam-3 tokens/s | outside ORT |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for dir in dirs {
        let mut m = FlamingoModel::load(&dir, &RuntimeOptions { intra_threads: 1, ..Default::default() })?;
        let px = m.preprocess_file(&img("chelsea.png"))?;
        let time = |f: &mut dyn FnMut() -> anyhow::Result<()>, reps: usize| -> anyhow::Result<f64> {
            f()?;
            let t = Instant::now();
            for _ in 0..reps {
                f()?;
            }
            Ok(t.elapsed().as_secs_f64() * 1e3 / reps as f64)
        };
        let v1 = time(&mut || m.run_vision(&px, 1).map(|_| ()), 50)?;
        let px8: Vec<f32> = px.iter().cycle().take(px.len() * 8).copied().collect();
        let v8 = time(&mut || m.run_vision(&px8, 8).map(|_| ()), 20)?;
        let (patches, _) = m.run_vision(&px8, 8)?;
        let p8 = time(&mut || m.run_perceiver(&patches, 8, 1).map(|_| ()), 20)?;
        let enc = m.encode_media(&[Media::Image(img("chelsea.png")), Media::Image(img("rocket.jpg")), Media::Image(img("coffee.png"))])?;
        let prompt = m.make_prompt("<image>Output:a cat.<|endofchunk|><image>Output:a rocket.<|endofchunk|><image>Output:", enc.clone())?;
        let pf = time(&mut || m.prompt_logits(&[&prompt], 1).map(|_| ()), 50)?;
        // Decode throughput: never stop, fixed length.
        let n_new = 64;
        let params = SearchParams { num_beams: 1, max_new_tokens: n_new, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![] };
        let t = Instant::now();
        m.generate(&[&prompt], &params)?;
        let b1 = n_new as f64 / t.elapsed().as_secs_f64();
        let step_ms = 1e3 / b1;
        let eight: Vec<&flamingo_eval::model::Prompt> = (0..8).map(|_| &prompt).collect();
        let t = Instant::now();
        m.generate(&eight, &params)?;
        let b8 = 8.0 * n_new as f64 / t.elapsed().as_secs_f64();
        let beam = SearchParams { num_beams: 3, ..params.clone() };
        let before = m.stats.ort_time();
        let t = Instant::now();
        m.generate(&eight, &beam)?;
        let wall = t.elapsed();
        let ort = m.stats.ort_time() - before;
        let bt = 8.0 * n_new as f64 / wall.as_secs_f64();
        println!(
            "| {} | {v1:.2} ms | {v8:.2} ms | {p8:.2} ms | {pf:.2} ms | {step_ms:.2} ms | {b1:.0} | {b8:.0} | {bt:.0} | {:.1}% |",
            m.manifest.name,
            100.0 * (1.0 - ort.as_secs_f64() / wall.as_secs_f64())
        );
    }
    Ok(())
}
