//! Helpers shared by the integration tests: the ONNX Runtime check and the golden-file reader.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_models() -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/models");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.yaml").exists())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixture models in {}", dir.display());
    out
}

pub fn images_dir() -> PathBuf {
    repo().join("tests/fixtures/images")
}

pub struct Goldens {
    pub dir: PathBuf,
    pub doc: Value,
}

impl Goldens {
    pub fn load(model_dir: &Path) -> Goldens {
        let dir = model_dir.join("golden");
        let text = std::fs::read_to_string(dir.join("goldens.json")).expect("goldens.json");
        Goldens { dir, doc: serde_json::from_str(&text).expect("goldens.json parses") }
    }

    pub fn case(&self, name: &str) -> Option<&Value> {
        self.doc["cases"].get(name)
    }

    pub fn tensor_f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let meta = &self.doc["tensors"][name];
        assert_eq!(meta["dtype"], "float32", "tensor {name}");
        let shape: Vec<usize> = meta["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let bytes = std::fs::read(self.dir.join(meta["file"].as_str().unwrap())).unwrap();
        let data: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(data.len(), shape.iter().product::<usize>(), "tensor {name} size");
        (shape, data)
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

/// Generated ids with the trailing stop/pad tokens removed (transformers pads finished rows).
pub fn strip_trailing(mut toks: Vec<u32>, stop: u32) -> Vec<u32> {
    while toks.last() == Some(&stop) {
        toks.pop();
    }
    toks
}

pub fn model(name: &str) -> PathBuf {
    repo().join("tests/fixtures/models").join(name)
}

pub fn bench(name: &str) -> PathBuf {
    repo().join("benchmarks").join(format!("{name}.yaml"))
}

/// The run configuration the end-to-end tests share: one thread, batch 4, 200 bootstrap resamples.
pub fn run_config(model_name: &str, bench: &Path, out: &Path) -> flamingo_eval::engine::RunConfig {
    flamingo_eval::engine::RunConfig {
        model_dir: model(model_name),
        benchmark: bench.to_path_buf(),
        shots: None,
        trials: None,
        limit: None,
        batch_size: 4,
        out: out.to_path_buf(),
        runtime: flamingo_eval::model::RuntimeOptions { intra_threads: 1, ..Default::default() },
        quiet: true,
        fail_fast: false,
        bootstrap: flamingo_eval::metrics::BootstrapConfig { resamples: 200, seed: 0, confidence: 0.95 },
        shard: None,
        demos: None,
        rices_cache: Default::default(),
        max_error_rate: None,
        retry_errors: false,
        overrides: Default::default(),
        sample_limit: None,
        progress: None,
        template: None,
    }
}

/// A PNG screenshot's size and its pixels as RGB triples (any alpha channel dropped).
pub fn screenshot_pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = png::Decoder::new(std::io::BufReader::new(f)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let bpp = info.line_size / info.width as usize;
    let px = buf[..info.buffer_size()].chunks(bpp).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, px)
}

/// The number of distinct colours among `px`.
pub fn distinct_colours(px: &[[u8; 3]]) -> usize {
    let mut c = px.to_vec();
    c.sort();
    c.dedup();
    c.len()
}

/// `n` caption prompts with 0, 1 or 2 image demonstrations (prompt i has i % 3) over the bundled test images,
/// encoded and tokenized by `model`.
pub fn photo_prompts(model: &mut flamingo_eval::model::FlamingoModel, n: usize) -> Vec<flamingo_eval::model::Prompt> {
    use flamingo_eval::model::Media;
    let img = |name: &str| Media::Image(images_dir().join(name));
    let names = ["chelsea.png", "rocket.jpg", "coffee.png", "grace_hopper.jpg"];
    (0..n)
        .map(|i| {
            let (mut text, mut media) = (String::new(), Vec::new());
            for s in 0..i % 3 {
                text.push_str(&format!("<image>Output:a photo {s} of {i}.<|endofchunk|>"));
                media.push(img(names[(i + s) % 4]));
            }
            text.push_str("<image>Output:");
            media.push(img(names[i % 4]));
            let enc = model.encode_media(&media).unwrap();
            model.make_prompt(&text, enc).unwrap()
        })
        .collect()
}
