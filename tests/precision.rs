//! Half precision (contract 4 `dtype`, export/CONTRACT.md "Precision"). The fp16 model is made inside the test
//! from a committed fp32 fixture by the exporter's own converter (`python -m export.precision`, ~3 s; needs
//! export/.venv, which scripts/test.sh sets up), so no fp16 fixture is committed. The runtime must run its
//! float16 graphs end to end (KV cache and cross-attention keys/values in float16), agree with the fp32 model
//! within the tolerance the exporter's parity check uses, be deterministic across batch sizes like fp32, and
//! refuse a manifest whose `dtype` disagrees with its graphs with a clear message.

mod common;

use common::*;
use flamingo_eval::model::{FlamingoModel, Prompt, RuntimeOptions, SearchParams};
use std::path::{Path, PathBuf};
use std::process::Command;

/// export/precision.py DEFAULT_TOL["fp16"]: an fp16 export's max abs difference against fp32 may be this
/// fraction of max(1, max |fp32 value|) of the tensor compared.
const FP16_TOL: f32 = 2e-2;

fn load(dir: &Path) -> anyhow::Result<FlamingoModel> {
    FlamingoModel::load(dir, &RuntimeOptions { intra_threads: 1, ..Default::default() })
}

fn convert(name: &str, dtype: &str, out: &Path) -> PathBuf {
    let py = repo().join("export/.venv/bin/python");
    assert!(py.exists(), "{} missing: run export/setup_venv.sh (scripts/test.sh does) for the precision tests", py.display());
    let r = Command::new(&py)
        .args(["-m", "export.precision", "--dtype", dtype])
        .arg(model(name))
        .arg(out)
        .current_dir(repo())
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(r.status.success(), "conversion failed: {}", String::from_utf8_lossy(&r.stderr));
    out.to_path_buf()
}

fn prompts(model: &mut FlamingoModel) -> Vec<Prompt> {
    photo_prompts(model, 6)
}

#[test]
fn fp16_model_runs_end_to_end_and_agrees_with_fp32() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["tiny-gptneox", "tiny-mpt"] {
        let dir16 = convert(name, "fp16", &tmp.path().join(format!("{name}-fp16")));
        let mut m32 = load(&model(name)).unwrap();
        let mut m16 = load(&dir16).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(m16.manifest.dtype().as_str(), "fp16");
        assert_eq!(m16.manifest.contract_version, 4);
        let (p32, p16) = (prompts(&mut m32), prompts(&mut m16));
        assert!(p32.iter().zip(&p16).all(|(a, b)| a.ids == b.ids));
        // media latents: float16 outputs read back exactly, close to fp32
        let lat = max_abs_diff(&p32[0].media[0].latents, &p16[0].media[0].latents);
        let lat_scale = p32[0].media[0].latents.iter().fold(1f32, |m, x| m.max(x.abs()));
        assert!(lat > 0.0 && lat < FP16_TOL * lat_scale, "{name}: latents differ by {lat}");
        // prefill logits of every prompt position
        let (mut worst, mut scale) = (0f32, 1f32);
        for (a, b) in p32.iter().zip(&p16) {
            let (la, lb) = (m32.prompt_logits(&[a], a.ids.len()).unwrap(), m16.prompt_logits(&[b], b.ids.len()).unwrap());
            assert!(lb.iter().all(|x| x.is_finite()), "{name}: non-finite fp16 logits");
            worst = worst.max(max_abs_diff(&la, &lb));
            scale = la.iter().fold(scale, |m, x| m.max(x.abs()));
        }
        assert!(worst > 1e-5, "{name}: fp16 logits equal fp32's to {worst}: the graphs were not converted");
        assert!(worst <= FP16_TOL * scale, "{name}: fp16 prefill logits differ from fp32 by {worst} > {FP16_TOL} x {scale}");
        eprintln!("{name}: max abs prefill logit diff fp16 vs fp32 {worst:.3e} (logits up to {scale:.2})");
        // generation: greedy (decode steps through the float16 KV cache and cross-attention keys/values)
        let eoc = m32.tokenizer.endofchunk_id;
        let params = |beams| SearchParams {
            num_beams: beams,
            max_new_tokens: 8,
            min_new_tokens: 0,
            length_penalty: 0.0,
            stop_tokens: vec![eoc],
        };
        let (r32, r16): (Vec<&Prompt>, Vec<&Prompt>) = (p32.iter().collect(), p16.iter().collect());
        let (g32, g16) = (m32.generate(&r32, &params(1)).unwrap(), m16.generate(&r16, &params(1)).unwrap());
        let mut same = 0;
        for (a, b) in g32.iter().zip(&g16) {
            assert!(b.score.is_finite());
            same += (a.tokens == b.tokens) as usize;
            // the scores are sums of log-probs of (mostly) the same tokens
            if a.tokens == b.tokens {
                assert!((a.score - b.score).abs() <= FP16_TOL * scale * a.tokens.len() as f32, "{name}: {} vs {}", a.score, b.score);
            }
        }
        // measured: identical greedy tokens on all 6 prompts for both fixtures
        assert_eq!(same, g32.len(), "{name}: fp16 greedy tokens differ from fp32 on {} of {} prompts", g32.len() - same, g32.len());
        // beam search runs (row selections of a float16 cache) and is deterministic across batch sizes
        let all = m16.generate(&r16, &params(3)).unwrap();
        for (i, p) in r16.iter().enumerate() {
            let one = m16.generate(&[p], &params(3)).unwrap();
            assert_eq!((&one[0].tokens, one[0].score.to_bits()), (&all[i].tokens, all[i].score.to_bits()), "{name}: prompt {i}");
        }
        // the IoBinding path (--io-binding) gives the same bits on float16 graphs
        let mut mb = FlamingoModel::load(&dir16, &RuntimeOptions { intra_threads: 1, io_binding: true, ..Default::default() }).unwrap();
        let pb = prompts(&mut mb);
        let via = mb.generate(&pb.iter().collect::<Vec<_>>(), &params(3)).unwrap();
        for (x, y) in all.iter().zip(&via) {
            assert_eq!((&x.tokens, x.score.to_bits()), (&y.tokens, y.score.to_bits()), "{name}: --io-binding");
        }
        // candidate scoring shares one float16 prefill cache between candidates
        let cands: Vec<Vec<u32>> = ["yes", "no", "a cat on a mat"].iter().map(|t| m32.tokenizer.encode_continuation(t).unwrap()).collect();
        let (s32, s16) = (m32.score_candidates(&p32[2], &cands).unwrap(), m16.score_candidates(&p16[2], &cands).unwrap());
        for (a, b) in s32.iter().zip(&s16) {
            assert!(max_abs_diff(&a.token_logprobs, &b.token_logprobs) <= 2.0 * FP16_TOL * scale);
        }
    }
}

fn set_manifest(dir: &Path, f: impl Fn(&str) -> String) {
    let p = dir.join("model.yaml");
    let t = std::fs::read_to_string(&p).unwrap();
    let new = f(&t);
    assert_ne!(new, t, "the edit changed nothing");
    std::fs::write(&p, new).unwrap();
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

fn load_err(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_dtype_that_disagrees_with_the_graphs_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir16 = convert("tiny-gptneox", "fp16", &tmp.path().join("fp16"));
    // float16 graphs, manifest says fp32
    let a = tmp.path().join("a");
    copy_dir(&dir16, &a);
    set_manifest(&a, |t| t.replace("dtype: \"fp16\"", "dtype: \"fp32\""));
    let e = load_err(&a);
    assert!(e.contains("vision_encoder.onnx") && e.contains("'patch_tokens'") && e.contains("expected float32"), "{e}");
    assert!(e.contains("model.yaml's `dtype`") && e.contains("re-export"), "{e}");
    // float32 graphs, manifest says fp16
    let b = tmp.path().join("b");
    copy_dir(&model("tiny-gptneox"), &b);
    set_manifest(&b, |t| t.replace("contract_version: 3\n", "contract_version: 4\n").replace("opset: 17\n", "opset: 17\ndtype: \"fp16\"\n"));
    let e = load_err(&b);
    assert!(e.contains("expected float16") && e.contains("model.yaml's `dtype`"), "{e}");
    // dtype needs contract 4, and contract 4 needs dtype
    let c = tmp.path().join("c");
    copy_dir(&model("tiny-gptneox"), &c);
    set_manifest(&c, |t| t.replace("opset: 17\n", "opset: 17\ndtype: \"fp32\"\n"));
    let e = load_err(&c);
    assert!(e.contains("dtype (fp32) is a contract version 4 key, but contract_version is 3"), "{e}");
    let d = tmp.path().join("d");
    copy_dir(&dir16, &d);
    set_manifest(&d, |t| t.replace("dtype: \"fp16\"\n", ""));
    let e = load_err(&d);
    assert!(e.contains("contract_version 4 needs dtype"), "{e}");
    set_manifest(&d, |t| t.replace("opset: 17\n", "opset: 17\ndtype: \"fp8\"\n"));
    let e = load_err(&d);
    assert!(e.contains("model.yaml") && e.contains("fp8") && e.contains("fp16"), "{e}");
}

#[test]
fn bf16_model_runs_on_float32_graphs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = convert("tiny-gptneox", "bf16", &tmp.path().join("bf16"));
    let mut m = load(&dir).unwrap_or_else(|e| panic!("{e:#}"));
    let mut m32 = load(&model("tiny-gptneox")).unwrap();
    assert_eq!(m.manifest.dtype().as_str(), "bf16");
    let (p, p32) = (prompts(&mut m), prompts(&mut m32));
    let (a, b) = (m.prompt_logits(&[&p[1]], p[1].ids.len()).unwrap(), m32.prompt_logits(&[&p32[1]], p32[1].ids.len()).unwrap());
    let d = max_abs_diff(&a, &b);
    let scale = b.iter().fold(1f32, |m, x| m.max(x.abs()));
    assert!(d > 1e-4 && d < 8e-2 * scale, "bf16 vs fp32 logits differ by {d} (export/precision.py DEFAULT_TOL[\"bf16\"])");
}

#[test]
fn runs_record_the_dtype_and_compare_names_the_precision() {
    let tmp = tempfile::tempdir().unwrap();
    let dir16 = convert("tiny-gptneox", "fp16", &tmp.path().join("fp16"));
    let bench = bench("demo_vqa");
    let (out32, out16) = (tmp.path().join("r32"), tmp.path().join("r16"));
    let mut cfg = run_config("tiny-gptneox", &bench, &out32);
    cfg.shots = Some(vec![0]);
    cfg.limit = Some(6);
    flamingo_eval::engine::run(&cfg).unwrap();
    cfg.model_dir = dir16;
    cfg.out = out16.clone();
    flamingo_eval::engine::run(&cfg).unwrap();
    let source = |d: &Path| {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap();
        v["provenance"]["model_source"].clone()
    };
    assert_eq!(source(&out16)["dtype"], "fp16");
    assert!(source(&out32).get("dtype").is_none(), "an fp32 (contract 3) run records no dtype: {}", source(&out32));
    let c = flamingo_eval::report::compare::compare(&out32, &out16, &Default::default()).unwrap();
    assert!(c.notes.iter().any(|n| n.contains("different models") && n.contains("(precision fp32 → fp16)")), "{:?}", c.notes);
    assert_eq!(c.exit_code(), 0, "fp16 vs fp32 on 6 samples: {:?}", c.rows.len());
}
