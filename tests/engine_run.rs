//! End-to-end runs of the tiny fixture models on the bundled demo benchmarks: outputs, determinism across
//! batch sizes and threads, resume after interruption, and the failure policy.

mod common;

use common::*;
use flamingo_eval::engine::{read_records, run, RunConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

fn config(model_name: &str, bench: &Path, out: &Path) -> RunConfig {
    run_config(model_name, bench, out)
}

#[test]
fn demo_benchmarks_run_end_to_end() {
    let cases = [
        ("demo_vqa", "tiny-gptneox", "vqa_accuracy"),
        ("demo_coco", "tiny-mpt", "cider"),
        ("demo_hateful", "tiny-gptneox", "roc_auc"),
        ("demo_videoqa", "tiny-video", "exact_match"),
        // tiny models of the published OF-3B (mosaic_gpt, QK LayerNorm) and OF-9B (remote-code MPT) structures,
        // exported through their --preset path (export/tiny/published.py)
        ("demo_coco", "tiny-of3b-mpt1b", "cider"),
        ("demo_vqa", "tiny-of9b-mpt7b", "vqa_accuracy"),
        ("demo_hateful", "tiny-of3b-mpt1b", "roc_auc"),
        // the LLaMA fixture (OpenFlamingo v1 structure: BOS, RoPE positions, xattn every 4th layer)
        ("demo_vqa", "tiny-llama", "vqa_accuracy"),
        ("demo_coco", "tiny-llama", "cider"),
        ("demo_hateful", "tiny-llama", "roc_auc"),
        // OF-4B's structure (GPT-NeoX as released), exported through --preset OpenFlamingo-4B-vitl-rpj3b
        ("demo_vqa", "tiny-of4b-rpj3b", "vqa_accuracy"),
    ];
    for (b, m, key) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let summary = run(&config(m, &bench(b), tmp.path())).unwrap_or_else(|e| panic!("{b}: {e:#}"));
        assert_eq!(summary.metric_key, key);
        let records = read_records(&tmp.path().join("samples.jsonl"), false).unwrap();
        let spec = flamingo_eval::benchmark::spec::BenchmarkSpec::from_file(&bench(b)).unwrap();
        assert_eq!(summary.results.len(), spec.shots.len(), "{b}");
        for r in &summary.results {
            let n = records.iter().filter(|x| x.shot == r.shot).count();
            assert_eq!(r.n + r.errors, n, "{b} shot {}", r.shot);
            assert_eq!(r.errors, 0, "{b}");
            assert!(r.mean.is_finite(), "{b}: {}", r.mean);
            if key == "vqa_accuracy" || key == "exact_match" {
                // Decomposable metrics: the summary is the mean of the per-sample values.
                let mean: f64 = 100.0
                    * records.iter().filter(|x| x.shot == r.shot).map(|x| x.metric.unwrap()).sum::<f64>()
                    / n as f64;
                assert!((mean - r.mean).abs() < 1e-9, "{b}: {mean} vs {}", r.mean);
            }
        }
        for rec in &records {
            assert_eq!(rec.media.len(), rec.prompt.matches("<image>").count(), "{b}: media per marker");
            if rec.shot > 0 {
                assert_eq!(rec.demo_ids.len(), rec.shot);
            }
            match key {
                "roc_auc" => assert_eq!(rec.candidate_scores.as_ref().unwrap().len(), 2),
                _ => assert!(rec.raw_output.is_some() && rec.tokens.is_some()),
            }
        }
        for f in ["summary.json", "summary.csv", "run.json", "samples.jsonl"] {
            assert!(tmp.path().join(f).exists(), "{b}: {f}");
        }
        let prov = &summary.provenance;
        // Every distinct image is encoded once per run, however many prompts show it.
        assert!(prov.images_encoded <= distinct_media(&records), "{b}: {} encoded", prov.images_encoded);
    }
}

/// Frames to encode if each distinct media item (by content) is encoded once.
fn distinct_media(records: &[flamingo_eval::engine::SampleRecord]) -> usize {
    let mut s = std::collections::HashMap::new();
    for r in records {
        for m in &r.media {
            let content: Vec<Vec<u8>> = m.iter().map(|f| std::fs::read(f).unwrap()).collect();
            s.insert(content, m.len());
        }
    }
    s.values().sum()
}

#[test]
fn samples_are_byte_identical_across_batch_sizes_and_threads() {
    let mut outputs = Vec::new();
    for (batch, threads) in [(1, 1), (8, 2), (3, 0)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config("tiny-gptneox", &bench("demo_vqa"), tmp.path());
        c.batch_size = batch;
        c.runtime.intra_threads = threads;
        run(&c).unwrap();
        outputs.push(std::fs::read(tmp.path().join("samples.jsonl")).unwrap());
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "samples.jsonl differs across batch sizes / threads");
}

#[test]
fn resume_after_truncation_gives_identical_files() {
    let full = tempfile::tempdir().unwrap();
    run(&config("tiny-mpt", &bench("demo_vqa"), full.path())).unwrap();
    let want = std::fs::read(full.path().join("samples.jsonl")).unwrap();
    let want_summary = std::fs::read_to_string(full.path().join("summary.csv")).unwrap();
    // Simulate a run killed mid-write: keep 7 complete lines and half of the 8th.
    let part = tempfile::tempdir().unwrap();
    let lines: Vec<&[u8]> = want.split_inclusive(|&b| b == b'\n').collect();
    let mut cut: Vec<u8> = lines[..7].concat();
    cut.extend_from_slice(&lines[7][..lines[7].len() / 2]);
    std::fs::write(part.path().join("samples.jsonl"), &cut).unwrap();
    std::fs::copy(full.path().join("run.json"), part.path().join("run.json")).unwrap();
    let s = run(&config("tiny-mpt", &bench("demo_vqa"), part.path())).unwrap();
    assert_eq!(s.provenance.samples_resumed, 7);
    assert_eq!(std::fs::read(part.path().join("samples.jsonl")).unwrap(), want);
    assert_eq!(std::fs::read_to_string(part.path().join("summary.csv")).unwrap(), want_summary);
}

#[test]
fn resume_after_kill_gives_identical_files() {
    let exe = env!("CARGO_BIN_EXE_flamingo-eval");
    let args = |out: &Path| {
        let mut c = Command::new(exe);
        c.args(["run", "--quiet", "--batch-size", "1", "--threads", "1", "--model"])
            .arg(model("tiny-gptneox"))
            .arg("--benchmark")
            .arg(bench("demo_vqa"))
            .arg("--out")
            .arg(out);
        c
    };
    let full = tempfile::tempdir().unwrap();
    assert!(args(full.path()).output().unwrap().status.success());
    let killed = tempfile::tempdir().unwrap();
    let mut child = args(killed.path()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let samples = killed.path().join("samples.jsonl");
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < 60 {
        if std::fs::read(&samples).map(|b| b.iter().filter(|&&c| c == b'\n').count() >= 3).unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = args(killed.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&samples).unwrap(), std::fs::read(full.path().join("samples.jsonl")).unwrap());
}

/// A copy of demo_vqa whose query images live in `images` (absolute paths everywhere).
fn vqa_bench_with_images(dir: &Path, images: &Path) -> PathBuf {
    let text = std::fs::read_to_string(bench("demo_vqa")).unwrap();
    let root = repo();
    let text = text
        .replace("../prompts/", &format!("{}/prompts/", root.display()))
        .replace("../data/", &format!("{}/data/", root.display()))
        .replace(&format!("{}/data/demo/images/val2014", root.display()), &images.display().to_string());
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn failing_sample_is_recorded_and_fail_fast_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("val2014");
    std::fs::create_dir_all(&images).unwrap();
    let src = repo().join("data/demo/images/val2014");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in &names {
        std::fs::copy(p, images.join(p.file_name().unwrap())).unwrap();
    }
    let broken = images.join(names[0].file_name().unwrap());
    std::fs::write(&broken, b"not an image").unwrap();
    // a truncated JPEG is unreadable too (Pillow, hence OpenFlamingo, refuses it), not decoded with grey filler
    let cut = images.join(names[1].file_name().unwrap());
    let data = std::fs::read(&cut).unwrap();
    assert!(data.starts_with(&[0xFF, 0xD8]), "demo images are JPEGs");
    std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
    let b = vqa_bench_with_images(tmp.path(), &images);
    let out = tmp.path().join("out");
    let s = run(&config("tiny-gptneox", &b, &out)).unwrap();
    let records = read_records(&out.join("samples.jsonl"), false).unwrap();
    let failed: Vec<_> = records.iter().filter(|r| r.error.is_some()).collect();
    assert!(!failed.is_empty());
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let mut truncated = 0;
    for r in &failed {
        let e = r.error.as_ref().unwrap();
        assert!(e.contains(&name(&broken)) || e.contains(&name(&cut)), "{e}");
        if e.contains(&name(&cut)) {
            assert!(e.contains("image file is truncated"), "{e}");
            truncated += 1;
        }
        assert!(r.prediction.is_none() && r.metric.is_none());
    }
    assert!(truncated > 0, "no sample used the truncated image");
    let errors: usize = s.results.iter().map(|r| r.errors).sum();
    assert_eq!(errors, failed.len());
    let mut c = config("tiny-gptneox", &b, &tmp.path().join("out2"));
    c.fail_fast = true;
    let err = format!("{:#}", run(&c).unwrap_err());
    assert!(err.contains("sample") && err.contains(broken.file_name().unwrap().to_str().unwrap()), "{err}");
}

#[test]
fn configuration_errors_stop_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config("tiny-gptneox", &bench("demo_vqa"), &tmp.path().join("out"));
    c.model_dir = tmp.path().join("no-such-model");
    let err = format!("{:#}", run(&c).unwrap_err());
    assert!(err.contains("model.yaml"), "{err}");
    assert!(!tmp.path().join("out/samples.jsonl").exists());
    let mut c = config("tiny-gptneox", &bench("demo_vqa"), &tmp.path().join("out"));
    c.trials = Some(5);
    let err = format!("{:#}", run(&c).unwrap_err());
    assert!(err.contains("trial seed"), "{err}");
}

#[test]
fn a_results_folder_of_another_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    run(&config("tiny-gptneox", &bench("demo_vqa"), tmp.path())).unwrap();
    let err = format!("{:#}", run(&config("tiny-mpt", &bench("demo_vqa"), tmp.path())).unwrap_err());
    assert!(err.contains("different run") && err.contains("model"), "{err}");
}

/// demo_vqa with RICES demonstration selection (absolute paths, so it can live in a temp dir).
fn rices_bench(dir: &Path) -> PathBuf {
    let root = repo();
    let text = std::fs::read_to_string(bench("demo_vqa"))
        .unwrap()
        .replace("../prompts/", &format!("{}/prompts/", root.display()))
        .replace("../data/", &format!("{}/data/", root.display()))
        .replace("demo_selection:\n  method: random", &format!("cache_dir: {}/cache\ndemo_selection:\n  method: rices", dir.display()));
    assert!(text.contains("method: rices"), "demo_vqa.yaml layout changed");
    let p = dir.join("rices.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn rices_with_the_models_embeddings_runs_and_caches() {
    let tmp = tempfile::tempdir().unwrap();
    let b = rices_bench(tmp.path());
    let s = run(&config("tiny-gptneox", &b, &tmp.path().join("out"))).unwrap();
    let records = read_records(&tmp.path().join("out/samples.jsonl"), false).unwrap();
    // Most similar last: every 4-shot prompt's last demonstration is the query's nearest neighbour, which
    // the `prompts` command (same selection code) reproduces.
    assert!(records.iter().filter(|r| r.shot == 4).all(|r| r.demo_ids.len() == 4));
    assert!(std::fs::read_dir(tmp.path().join("cache")).unwrap().count() > 0, "RICES embeddings are cached on disk");
    let calls_first = s.provenance.vision_encoder_calls;
    let s2 = run(&config("tiny-gptneox", &b, &tmp.path().join("out2"))).unwrap();
    assert!(s2.provenance.vision_encoder_calls < calls_first, "second run reuses the embedding cache");
    assert_eq!(
        std::fs::read(tmp.path().join("out/samples.jsonl")).unwrap(),
        std::fs::read(tmp.path().join("out2/samples.jsonl")).unwrap()
    );
    // The prompts command needs the model for RICES, and prints the same demonstrations.
    let exe = env!("CARGO_BIN_EXE_flamingo-eval");
    let no_model = Command::new(exe).args(["prompts", "--benchmark"]).arg(&b).output().unwrap();
    assert!(!no_model.status.success());
    assert!(String::from_utf8_lossy(&no_model.stderr).contains("--model"));
    let out = Command::new(exe)
        .args(["prompts", "--json", "--shots", "4", "--benchmark"])
        .arg(&b)
        .arg("--model")
        .arg(model("tiny-gptneox"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for p in printed {
        let rec = records.iter().find(|r| r.shot == 4 && r.sample_id == p["sample_id"].as_str().unwrap()).unwrap();
        assert_eq!(p["prompt"].as_str().unwrap(), rec.prompt);
    }
}

/// RICES with a separate CLIP encoder exported by export/export_clip.py (`encoder: clip_onnx`, a folder).
#[test]
fn rices_with_an_exported_clip_encoder_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let clip_dir = repo().join("tests/fixtures/clip/tiny-clip");
    let text = std::fs::read_to_string(rices_bench(tmp.path()))
        .unwrap()
        .replace("  method: rices", &format!("  method: rices\n  encoder: clip_onnx\n  clip_onnx: {}", clip_dir.display()));
    assert!(text.contains("encoder: clip_onnx"));
    let b = tmp.path().join("rices_clip.yaml");
    std::fs::write(&b, text).unwrap();
    run(&config("tiny-gptneox", &b, &tmp.path().join("out"))).unwrap();
    let records = read_records(&tmp.path().join("out/samples.jsonl"), false).unwrap();
    // Every 4-shot prompt's demonstrations are the query's nearest neighbours under the CLIP encoder (embedded
    // here directly), most similar last. Retrieval ranks question records; the demo split has 3 questions per
    // image, so the 4 demonstrations show the second-nearest image once, then the nearest image 3 times.
    let mut enc = flamingo_eval::model::clip::ClipImageEncoder::load(&clip_dir, &Default::default()).unwrap();
    let mut train: Vec<PathBuf> = std::fs::read_dir(repo().join("data/demo/images/train2014"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    train.sort();
    let norm = |v: Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let demo_emb: Vec<Vec<f32>> = enc.embed(&train).unwrap().into_iter().map(norm).collect();
    let four: Vec<_> = records.iter().filter(|r| r.shot == 4).collect();
    assert!(!four.is_empty());
    for r in four {
        assert_eq!(r.media.len(), 5, "{}", r.sample_id);
        let q = norm(enc.embed(&[PathBuf::from(&r.media[4][0])]).unwrap().remove(0));
        let sims: Vec<f32> = demo_emb.iter().map(|d| d.iter().zip(&q).map(|(a, b)| a * b).sum()).collect();
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.sort_by(|&a, &b| sims[b].total_cmp(&sims[a]).then(a.cmp(&b)));
        let name = |i: usize| train[i].file_name().unwrap().to_string_lossy().to_string();
        let want = vec![name(order[1]), name(order[0]), name(order[0]), name(order[0])];
        let got: Vec<String> =
            r.media[..4].iter().map(|m| Path::new(&m[0]).file_name().unwrap().to_string_lossy().to_string()).collect();
        assert_eq!(got, want, "{}: demonstrations vs the CLIP encoder's neighbours", r.sample_id);
    }
    // A changed encoder folder is refused (hash), not silently used.
    let bad = tmp.path().join("bad-clip");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["clip.yaml", "clip_image_encoder.onnx"] {
        std::fs::copy(clip_dir.join(f), bad.join(f)).unwrap();
    }
    let yaml = std::fs::read_to_string(bad.join("clip.yaml")).unwrap();
    std::fs::write(bad.join("clip.yaml"), yaml.replace("sha256: \"", "sha256: \"00")).unwrap();
    let err = format!("{:#}", flamingo_eval::model::clip::ClipImageEncoder::load(&bad, &Default::default()).err().unwrap());
    assert!(err.contains("clip_image_encoder.onnx") && err.contains("sha256"), "{err}");
}

#[test]
fn a_prompt_without_room_for_its_answer_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let b = repo().join("benchmarks/demo_vqa.yaml");
    let first = tmp.path().join("first");
    run(&config("tiny-gptneox", &b, &first)).unwrap();
    // The longest prompt, in tokens.
    let src = repo().join("tests/fixtures/models/tiny-gptneox");
    let manifest = flamingo_eval::model::Manifest::load(&src).unwrap();
    let tok = flamingo_eval::model::tokenizer::Tokenizer::load(&src.join("tokenizer.json"), &manifest).unwrap();
    let records = read_records(&first.join("samples.jsonl"), false).unwrap();
    let lens: Vec<usize> = records.iter().map(|r| tok.encode(&r.prompt).unwrap().len()).collect();
    let longest = *lens.iter().max().unwrap();
    // A copy of the model whose maximum fits every prompt but not the longest one's 5 new tokens.
    let model = tmp.path().join("short-model");
    std::fs::create_dir_all(&model).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, model.join(p.file_name().unwrap())).unwrap();
        }
    }
    let yaml = std::fs::read_to_string(model.join("model.yaml")).unwrap();
    assert!(yaml.contains("max_positions: 2048"));
    std::fs::write(model.join("model.yaml"), yaml.replace("max_positions: 2048", &format!("max_positions: {}", longest + 1))).unwrap();
    let out = tmp.path().join("out");
    let mut c = config("tiny-gptneox", &b, &out);
    c.model_dir = model;
    run(&c).unwrap();
    let again = read_records(&out.join("samples.jsonl"), false).unwrap();
    assert_eq!(again.len(), records.len());
    for (r, &n) in again.iter().zip(&lens) {
        if n + 4 > longest + 1 {
            assert!(r.error.as_deref().unwrap_or("").contains("max_new_tokens"), "{:?}", r.error);
        } else {
            assert!(r.error.is_none(), "{:?}", r.error);
        }
    }
    assert!(again.iter().any(|r| r.error.is_none()));
}

#[test]
fn an_unannotated_split_is_not_scored_and_still_reports() {
    // VQAv2 test-dev style: the query split has no annotations.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("benchmarks/demo_vqa.yaml")).unwrap();
    let data = repo().join("data/demo");
    let text = text
        .replace("    annotations: ../data/demo/vqa_val_annotations.json\n", "")
        .replace("../prompts/", &format!("{}/", repo().join("prompts").display()))
        .replace("../data/demo", data.to_str().unwrap());
    assert!(!text.contains("vqa_val_annotations"));
    let b = tmp.path().join("unannotated.yaml");
    std::fs::write(&b, text).unwrap();
    let out = tmp.path().join("out");
    let s = run(&config("tiny-gptneox", &b, &out)).unwrap();
    for r in &s.results {
        assert_eq!((r.n, r.errors), (0, 0), "shot {}", r.shot);
        assert!(r.mean.is_nan(), "shot {}: {}", r.shot, r.mean);
    }
    let records = read_records(&out.join("samples.jsonl"), false).unwrap();
    assert!(records.iter().all(|r| r.prediction.is_some() && r.metric.is_none() && r.error.is_none()));
    let rep = flamingo_eval::report::render::report(
        &[out.clone()],
        &flamingo_eval::report::render::ReportOptions { out: tmp.path().join("report"), references: repo().join("results/reference"), samples: Default::default() },
    )
    .unwrap();
    assert!(rep.markdown.contains("demo_vqa"));
}
