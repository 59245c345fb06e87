//! IDEFICS as a second model family (contract version 3), end to end with the tiny random-init fixture
//! (tests/fixtures/models/tiny-idefics): `run` on the demo benchmarks with the IDEFICS templates, the same
//! demonstrations as an OpenFlamingo model (tiny-llama), a side-by-side `report`, and the version-3 rules
//! (v3 keys refused in a v2 manifest, RICES `encoder: model` refused for a pooled, unprojected embedding).

mod common;

use common::*;
use flamingo_eval::engine::records::read_records;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flamingo-eval"))
}

fn fe(args: &[&str]) -> Output {
    Command::new(exe()).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A copy of a shipped demo benchmark with absolute paths and, when given, another prompt template (the
/// benchmark itself is unchanged: same data, shots, seeds, selection).
fn bench_with_template(name: &str, template: Option<&str>, dir: &Path) -> PathBuf {
    let mut t = std::fs::read_to_string(bench(name))
        .unwrap()
        .replace("../prompts/", &format!("{}/prompts/", repo().display()))
        .replace("../data/", &format!("{}/data/", repo().display()));
    if let Some(tpl) = template {
        let line = t.lines().find(|l| l.starts_with("template:")).unwrap().to_string();
        t = t.replace(&line, &format!("template: {}/prompts/{tpl}.yaml", repo().display()));
    }
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, t).unwrap();
    p
}

fn run(model_name: &str, bench: &Path, out: &Path, extra: &[&str]) -> Output {
    let m = model(model_name);
    let mut args = vec![
        "run", "--quiet", "--threads", "1", "--limit", "3", "--shots", "0,4", "--model", m.to_str().unwrap(), "--benchmark",
        bench.to_str().unwrap(), "--out", out.to_str().unwrap(),
    ];
    args.extend(extra);
    fe(&args)
}

#[test]
fn idefics_runs_the_demo_benchmarks_beside_openflamingo_on_the_same_demonstrations() {
    let tmp = tempfile::tempdir().unwrap();
    let mut folders = Vec::new();
    for (name, tpl) in [("demo_vqa", "idefics_vqa"), ("demo_coco", "idefics_caption"), ("demo_hateful", "idefics_hateful_memes")] {
        // one benchmark file for both models; IDEFICS gets its own wording with --template
        let b = bench_with_template(name, None, tmp.path());
        let tpl = repo().join(format!("prompts/{tpl}.yaml"));
        let (o1, o2) = (tmp.path().join(format!("{name}-idefics")), tmp.path().join(format!("{name}-of")));
        let r1 = run("tiny-idefics", &b, &o1, &["--template", tpl.to_str().unwrap()]);
        assert!(r1.status.success(), "{name} with tiny-idefics: {}", text(&r1));
        let r2 = run("tiny-llama", &b, &o2, &[]);
        assert!(r2.status.success(), "{name} with tiny-llama: {}", text(&r2));
        let a = read_records(&o1.join("samples.jsonl"), false).unwrap();
        let b = read_records(&o2.join("samples.jsonl"), false).unwrap();
        assert_eq!(a.len(), b.len());
        assert!(!a.is_empty());
        for (x, y) in a.iter().zip(&b) {
            // the same benchmark, seeds and selection: byte-identical demonstrations, another prompt wording
            assert_eq!((&x.sample_id, x.shot, x.trial), (&y.sample_id, y.shot, y.trial));
            assert_eq!(x.text_only_demo_ids, y.text_only_demo_ids);
            assert_eq!(x.demo_ids, y.demo_ids, "{name}: sample {} shot {}", x.sample_id, x.shot);
            assert!(x.error.is_none(), "{name}: {:?}", x.error);
            assert!(x.prompt.contains("Answer:") || x.prompt.contains("Caption:"), "{name}: IDEFICS template: {:?}", x.prompt);
            if x.shot > 0 {
                assert!(x.prompt.contains("</s>"), "{name}: IDEFICS demonstrations end with EOS: {:?}", x.prompt);
                assert!(!y.prompt.contains("</s>"));
            }
        }
        folders.push(o1);
        folders.push(o2);
    }
    let rep = tmp.path().join("report");
    let mut args: Vec<&str> = vec!["report"];
    args.extend(folders.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", rep.to_str().unwrap()]);
    let o = fe(&args);
    assert!(o.status.success(), "report: {}", text(&o));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    for needle in ["tiny-idefics", "tiny-llama", "demo_vqa", "demo_coco", "demo_hateful"] {
        assert!(md.contains(needle), "report.md lacks {needle}:\n{md}");
    }
}

#[test]
fn idefics_prompts_are_written_as_its_processor_writes_them() {
    // <image> markers become <fake_token_around_image><image><fake_token_around_image>, adjacent images share
    // one fake token, BOS first; a token after an EOS attends to no image (checked via the goldens' ids here,
    // and the media index against transformers in runtime_golden.rs).
    let m = flamingo_eval::model::FlamingoModel::load(&model("tiny-idefics"), &Default::default()).unwrap();
    let ids = m.tokenizer.encode("<image><image>Question: x? Answer:").unwrap();
    let (bos, fake, img) = (1u32, 2048u32, 2049u32);
    assert_eq!(&ids[..6], &[bos, fake, img, fake, img, fake]);
    let idx = flamingo_eval::model::prompt_format::media_index(&m.tokenizer.encode("<image>a</s>\nb<image>c").unwrap(), img, Some(2));
    let toks = m.tokenizer.encode("<image>a</s>\nb<image>c").unwrap();
    let eos_at = toks.iter().position(|&t| t == 2).unwrap();
    assert_eq!(idx[eos_at], 1, "the EOS itself still attends to image 1");
    assert!(idx[eos_at + 1..].iter().zip(&toks[eos_at + 1..]).take_while(|(_, &t)| t != img).all(|(&i, _)| i == 0));
    assert_eq!(*idx.last().unwrap(), 2);
}

#[test]
fn version_3_keys_are_refused_in_a_version_2_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("m");
    std::fs::create_dir_all(&dst).unwrap();
    // tiny-gptneox as a version-2 export (tests/fixtures/models_v2 holds its v2 decoder and manifest)
    for e in std::fs::read_dir(model("tiny-gptneox")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::remove_file(dst.join("xattn_kv.onnx")).unwrap();
    for f in ["lang_decoder.onnx", "model.yaml"] {
        std::fs::copy(repo().join("tests/fixtures/models_v2/tiny-gptneox").join(f), dst.join(f)).unwrap();
    }
    let y = std::fs::read_to_string(dst.join("model.yaml")).unwrap();
    assert!(y.contains("contract_version: 2"));
    std::fs::write(
        dst.join("model.yaml"),
        format!("{y}cross_attention:\n  position: before_layer\n  first_layer: 0\n  no_media: zero\n  media_reset_after_eos: true\n"),
    )
    .unwrap();
    let e = flamingo_eval::model::Manifest::load(&dst).unwrap_err().to_string();
    assert!(e.contains("cross_attention is a contract version 3 key, but contract_version is 2"), "{e}");
    // the same keys with contract_version 3 load (and change the meaning: IDEFICS placement)
    std::fs::write(dst.join("model.yaml"), std::fs::read_to_string(dst.join("model.yaml")).unwrap().replace("contract_version: 2", "contract_version: 3")).unwrap();
    let m = flamingo_eval::model::Manifest::load(&dst).unwrap();
    assert_eq!(m.cross_attention().first_layer, 0);
    let y = std::fs::read_to_string(repo().join("tests/fixtures/models_v2/tiny-gptneox/model.yaml")).unwrap();
    std::fs::write(dst.join("model.yaml"), y.replace("resize: \"shortest_side\"", "resize: \"exact\"")).unwrap();
    let e = flamingo_eval::model::Manifest::load(&dst).unwrap_err().to_string();
    assert!(e.contains("preprocess.resize: exact needs contract_version 3"), "{e}");
}

#[test]
fn rices_with_the_model_encoder_is_refused_for_a_pooled_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bench_with_template("demo_vqa_rices", Some("idefics_vqa"), tmp.path());
    let o = run("tiny-idefics", &b, &tmp.path().join("out"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("vision.image_embedding: pooled") && t.contains("encoder: clip_onnx"), "{t}");
}
