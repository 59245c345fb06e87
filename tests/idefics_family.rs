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
            // the IDEFICS evaluation wording (m4's templates: prompts/idefics_*.yaml), not OpenFlamingo's
            let idefics_words = ["Instruction: provide an answer", "Image:<image>Caption:", "It's a conversation between a human"];
            assert!(idefics_words.iter().any(|w| x.prompt.contains(w)), "{name}: IDEFICS template: {:?}", x.prompt);
            assert!(!idefics_words.iter().any(|w| y.prompt.contains(w)), "{name}: OpenFlamingo template: {:?}", y.prompt);
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

/// The `--cross-attn-compat transformers-4.33` fixture (tests/fixtures/models_compat/tiny-idefics-tf433, written
/// by `python -m export.families.idefics_fixture --compat-fixture`): goldens from transformers 4.33.3.
fn compat_dir() -> PathBuf {
    repo().join("tests/fixtures/models_compat/tiny-idefics-tf433")
}

fn load_model(dir: &Path) -> flamingo_eval::model::FlamingoModel {
    let opts = flamingo_eval::model::RuntimeOptions { intra_threads: 1, ..Default::default() };
    flamingo_eval::model::FlamingoModel::load(dir, &opts).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

/// A golden case's prompts with their images, checked against the Hugging Face ids (padding removed).
fn case_prompts(m: &mut flamingo_eval::model::FlamingoModel, case: &serde_json::Value) -> Vec<flamingo_eval::model::Prompt> {
    let mut out = Vec::new();
    for (r, (text, imgs)) in strs(&case["prompts"]).iter().zip(case["images"].as_array().unwrap()).enumerate() {
        let media: Vec<flamingo_eval::model::Media> = strs(imgs).iter().map(|n| flamingo_eval::model::Media::Image(images_dir().join(n))).collect();
        let enc = m.encode_media(&media).unwrap();
        let p = m.make_prompt(text, enc).unwrap();
        let want: Vec<u32> = ids(&case["input_ids"][r]).into_iter().zip(ids(&case["attention_mask"][r])).filter(|&(_, k)| k == 1).map(|(t, _)| t).collect();
        assert_eq!(p.ids, want, "row {r}: tokenisation of {text:?}");
        out.push(p);
    }
    out
}

#[test]
fn compat_mode_matches_transformers_433_goldens() {
    use flamingo_eval::model::manifest::NoMedia;
    use flamingo_eval::model::SearchParams;
    const TOL: f32 = 1e-4;
    let dir = compat_dir();
    let mut m = load_model(&dir);
    assert_eq!(m.manifest.cross_attention().no_media, NoMedia::UniformAllMedia);
    let g = Goldens::load(&dir);
    assert!(g.doc["oracle"].as_str().unwrap().contains("4.33"), "{}", g.doc["oracle"]);

    // logits at every position of a prompt that starts with text (BOS, "Note:") before its first image: those
    // tokens attend to the uniform average of the row's images (media_index 0), as in transformers 4.33
    let c = g.case("prefill_2shot").unwrap();
    let p = case_prompts(&mut m, c).remove(0);
    let midx = ids(&c["media_index"][0]);
    let pre_image = midx.iter().take_while(|&&i| i == 0).count();
    assert!(pre_image >= 2, "the prompt has text before its first image: {midx:?}");
    let logits = m.prompt_logits(&[&p], p.ids.len()).unwrap();
    let (_, want) = g.tensor_f32(c["logits"].as_str().unwrap());
    let d = max_abs_diff(&logits, &want);
    assert!(d <= TOL, "prefill logits vs transformers 4.33: max abs diff {d}");
    // ... and they do depend on the images (in the fixed mode they could not: zero cross-attention output)
    let v = m.manifest.lang.vocab_size;
    let other: Vec<flamingo_eval::model::Media> = ["grace_hopper.jpg", "coffee.png"].iter().map(|n| flamingo_eval::model::Media::Image(images_dir().join(n))).collect();
    let enc = m.encode_media(&other).unwrap();
    let q = m.make_prompt(&strs(&c["prompts"])[0], enc).unwrap();
    let other_logits = m.prompt_logits(&[&q], q.ids.len()).unwrap();
    let pre = max_abs_diff(&logits[..pre_image * v], &other_logits[..pre_image * v]);
    assert!(pre > 1e-3, "pre-image logits do not depend on the images ({pre}): not the 4.33 behaviour");

    // greedy and beam-3 generations (tokens, text, beam score)
    for case in ["generate_greedy", "generate_beam3"] {
        let c = g.case(case).unwrap();
        let p = case_prompts(&mut m, c).remove(0);
        let eos = c["eos_token_id"].as_u64().unwrap() as u32;
        let params = SearchParams {
            num_beams: c["num_beams"].as_u64().unwrap() as usize,
            max_new_tokens: c["max_new_tokens"].as_u64().unwrap() as usize,
            min_new_tokens: 0,
            length_penalty: 0.0,
            stop_tokens: vec![eos],
        };
        let out = m.generate(&[&p], &params).unwrap();
        assert_eq!(out[0].tokens, strip_trailing(ids(&c["expected_new_tokens"][0]), eos), "{case}");
        assert!(!out[0].tokens.is_empty(), "{case}: the fixture generates something before EOS");
        assert_eq!(out[0].text, strs(&c["expected_text"])[0], "{case}");
        if let Some(s) = c.get("expected_sequence_scores") {
            assert!((out[0].score - s[0].as_f64().unwrap() as f32).abs() <= TOL, "{case}: score {}", out[0].score);
        }
    }

    // candidate log-likelihoods (candidate tokens attend to what the prompt's last token attends to)
    let c = g.case("loglik").unwrap();
    let p = case_prompts(&mut m, c).remove(0);
    let cands = c["candidates"].as_array().unwrap();
    let toks: Vec<Vec<u32>> = cands.iter().map(|x| ids(&x["token_ids"])).collect();
    for (s, x) in m.score_candidates(&p, &toks).unwrap().iter().zip(cands) {
        let want: Vec<f32> = x["token_logprobs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert!(max_abs_diff(&s.token_logprobs, &want) <= TOL, "candidate {:?}", x["text"]);
    }

    // a left-padded batch of two rows with the same number of images (4.33 batched; no padding images)
    let c = g.case("batch2_leftpad").unwrap();
    let ps = case_prompts(&mut m, c);
    assert_eq!(ps[0].media.len(), ps[1].media.len());
    let refs: Vec<&flamingo_eval::model::Prompt> = ps.iter().collect();
    let last = m.prompt_logits(&refs, 1).unwrap();
    let d = max_abs_diff(&last, &g.tensor_f32(c["last_logits"].as_str().unwrap()).1);
    assert!(d <= TOL, "batch last logits: {d}");
    let eos = c["eos_token_id"].as_u64().unwrap() as u32;
    for (beams, key) in [(1, "expected_greedy_new_tokens"), (3, "expected_beam3_new_tokens")] {
        let params = SearchParams { num_beams: beams, max_new_tokens: c["max_new_tokens"].as_u64().unwrap() as usize, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![eos] };
        for (r, o) in m.generate(&refs, &params).unwrap().iter().enumerate() {
            assert_eq!(o.tokens, strip_trailing(ids(&c[key][r]), eos), "{key} row {r}");
        }
    }
}

#[test]
fn compat_mode_never_batches_rows_with_different_media_counts() {
    // prompts of the same token length with 1 and 2 images: batched, the 1-image row would get a zero-padded
    // media slot that its pre-image tokens average too; the runtime gives each row exactly its own media, so one
    // call over both equals each prompt alone, bit for bit
    use flamingo_eval::model::{Media, SearchParams};
    let mut m = load_model(&compat_dir());
    let img = |names: &[&str]| -> Vec<Media> { names.iter().map(|n| Media::Image(images_dir().join(n))).collect() };
    let enc2 = m.encode_media(&img(&["chelsea.png", "rocket.jpg"])).unwrap();
    let two = m.make_prompt("Note:\n<image><image>Question: What is this? Answer:", enc2).unwrap();
    let filler = (1..40)
        .map(|n| "a ".repeat(n))
        .find(|f| m.tokenizer.encode(&format!("Note:\n{f}<image>Question: What is this? Answer:")).unwrap().len() == two.ids.len())
        .expect("a 1-image prompt as long as the 2-image one");
    let enc1 = m.encode_media(&img(&["coffee.png"])).unwrap();
    let one = m.make_prompt(&format!("Note:\n{filler}<image>Question: What is this? Answer:"), enc1).unwrap();
    assert_eq!((one.ids.len(), one.media.len(), two.media.len()), (two.ids.len(), 1, 2));
    let v = m.manifest.lang.vocab_size;
    let together = m.prompt_logits(&[&one, &two], 1).unwrap();
    let alone: Vec<f32> = [&one, &two].iter().flat_map(|p| m.prompt_logits(&[p], 1).unwrap()).collect();
    assert_eq!(together.len(), 2 * v);
    let eos = m.tokenizer.eos_id;
    for beams in [1, 3] {
        let p = SearchParams { num_beams: beams, max_new_tokens: 6, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![eos] };
        let both = m.generate(&[&one, &two, &one], &p).unwrap();
        let each: Vec<_> = [&one, &two, &one].iter().map(|q| m.generate(&[q], &p).unwrap().remove(0)).collect();
        for (got, want) in both.iter().zip(&each) {
            assert_eq!((&got.tokens, got.score.to_bits()), (&want.tokens, want.score.to_bits()), "beams {beams}");
        }
    }
    // prompt_logits is the raw batched call (callers group): there the padded slot does change the 1-image
    // row, which is what the grouping above avoids
    let d = max_abs_diff(&together[..v], &alone[..v]);
    assert!(d > 1e-3, "a zero-padded media slot should change the 1-image row in one raw call ({d})");
    assert!(max_abs_diff(&together[v..], &alone[v..]) <= 1e-4);
}

#[test]
fn compat_mode_runs_are_identical_across_batch_sizes() {
    // `run` with the compatibility model: rows with different media counts (0-shot and 4-shot prompts, and the
    // IDEFICS VQA instruction before the first image) are never batched, so the batch size changes nothing
    let tmp = tempfile::tempdir().unwrap();
    let b = bench_with_template("demo_vqa", Some("idefics_vqa"), tmp.path());
    let mut preds = Vec::new();
    let model = compat_dir();
    for bs in ["1", "5"] {
        let out = tmp.path().join(format!("bs{bs}"));
        let args = [
            "run", "--quiet", "--threads", "1", "--limit", "3", "--shots", "0,4", "--batch-size", bs, "--model", model.to_str().unwrap(),
            "--benchmark", b.to_str().unwrap(), "--out", out.to_str().unwrap(),
        ];
        let o = fe(&args);
        assert!(o.status.success(), "batch size {bs}: {}", text(&o));
        let recs = read_records(&out.join("samples.jsonl"), false).unwrap();
        assert!(recs.iter().all(|r| r.error.is_none()));
        preds.push(recs.iter().map(|r| (r.sample_id.clone(), r.shot, r.prediction.clone())).collect::<Vec<_>>());
    }
    assert!(!preds[0].is_empty());
    assert_eq!(preds[0], preds[1]);
}

/// A copy of tiny-idefics whose tokenizer has `<end_of_utterance>` (as the instruct variants' tokenizers do) at
/// `id` and whose manifest says so in `special_tokens.end_of_utterance` (what export_idefics writes for them).
fn with_end_of_utterance(dst: &Path, id: u32, in_manifest: bool) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(model("tiny-idefics")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    let tj = dst.join("tokenizer.json");
    let mut t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&tj).unwrap()).unwrap();
    // the token takes the place of vocabulary entry `id` (a head row the model can produce): that entry and the
    // merge that makes it are removed
    let vocab = t["model"]["vocab"].as_object_mut().unwrap();
    let word = vocab.iter().find(|(_, v)| v.as_u64() == Some(id as u64)).map(|(k, _)| k.clone()).unwrap();
    vocab.remove(&word);
    vocab.insert("<end_of_utterance>".into(), serde_json::json!(id));
    t["model"]["merges"].as_array_mut().unwrap().retain(|m| m.as_str().unwrap().replace(' ', "") != word);
    t["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({
        "id": id, "content": "<end_of_utterance>", "single_word": false, "lstrip": false, "rstrip": false,
        "normalized": false, "special": true
    }));
    std::fs::write(&tj, serde_json::to_string(&t).unwrap()).unwrap();
    let old = flamingo_eval::hashing::sha256_file_hex(&model("tiny-idefics").join("tokenizer.json")).unwrap();
    let new = flamingo_eval::hashing::sha256_file_hex(&tj).unwrap();
    let mut y = std::fs::read_to_string(dst.join("model.yaml")).unwrap().replace(&old, &new);
    if in_manifest {
        y = y.replace("  bos: 1\n", &format!("  bos: 1\n  end_of_utterance: {id}\n"));
    }
    std::fs::write(dst.join("model.yaml"), y).unwrap();
}

#[test]
fn generation_stops_at_end_of_utterance_when_the_manifest_has_one() {
    // the goldens' greedy continuation of the 2-shot prompt: three tokens, then EOS
    let g = Goldens::load(&model("tiny-idefics"));
    let c = g.case("generate_greedy").unwrap();
    let want = ids(&c["expected_new_tokens"][0]);
    assert!(want.len() >= 4 && want[3] == 2 && !want[..2].contains(&want[2]), "{want:?}");
    let tmp = tempfile::tempdir().unwrap();
    let prompt = &strs(&c["prompts"])[0];
    let images: Vec<String> = strs(&c["images"][0]).iter().map(|n| images_dir().join(n).display().to_string()).collect();
    let generate = |dir: &Path| {
        let mut args = vec!["generate", "--model", dir.to_str().unwrap(), "--prompt", prompt, "--num-beams", "1", "--max-new-tokens", "8", "--json"];
        for i in &images {
            args.extend(["--image", i.as_str()]);
        }
        let o = fe(&args);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
        ids(&v["tokens"])
    };
    // the third generated token is the model's <end_of_utterance>: generation ends before it (the model card's
    // eos_token_id=<end_of_utterance>), and still at EOS otherwise
    let eou = tmp.path().join("eou");
    with_end_of_utterance(&eou, want[2], true);
    let m = load_model(&eou);
    assert_eq!(m.tokenizer.stop_ids, vec![2, want[2]]);
    assert_eq!(m.tokenizer.encode("User:<end_of_utterance>").unwrap().iter().filter(|&&t| t == want[2]).count(), 1);
    assert_eq!(generate(&eou), want[..2].to_vec());
    let o = fe(&["model", "inspect", eou.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success() && t.contains(&format!("<end_of_utterance>={}", want[2])) && t.contains(&format!("stops at [2, {}]", want[2])), "{t}");
    assert_eq!(generate(&model("tiny-idefics")), want[..3].to_vec());
    // the same tokenizer without the manifest key: no extra stop
    let plain = tmp.path().join("plain");
    with_end_of_utterance(&plain, want[2], false);
    assert_eq!(generate(&plain), want[..3].to_vec());
    // the manifest names one the tokenizer does not have: refused, naming the token
    let bad = tmp.path().join("bad");
    with_end_of_utterance(&bad, want[2], true);
    std::fs::write(bad.join("model.yaml"), std::fs::read_to_string(bad.join("model.yaml")).unwrap().replace(&format!("end_of_utterance: {}", want[2]), "end_of_utterance: 7")).unwrap();
    let e = flamingo_eval::model::FlamingoModel::load(&bad, &Default::default()).err().expect("refused").to_string();
    assert!(e.contains("<end_of_utterance>") && e.contains("model.yaml says 7"), "{e}");
}
