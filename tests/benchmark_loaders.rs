//! Loaders on the real samples and on synthetic files in every other layout; schema validation; video.

use flamingo_eval::benchmark::datasets::{self, BadRecords};
use flamingo_eval::benchmark::spec::{self, BadRecordPolicy, BenchmarkSpec};
use flamingo_eval::benchmark::{Benchmark, Media, MediaRef, Target};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
fn fx(p: &str) -> PathBuf {
    root().join("tests/fixtures/data").join(p)
}

#[test]
fn real_vqav2_sample_in_official_layout() {
    let mut bad = BadRecords::new(BadRecordPolicy::Error);
    let d = datasets::load_vqa(
        &fx("vqav2_sample/questions.json"),
        Some(&fx("vqav2_sample/annotations.json")),
        &fx("vqav2_sample"),
        "COCO_train2014_{image_id:012}.jpg",
        &mut bad,
    )
    .unwrap();
    assert!(bad.records().is_empty());
    assert_eq!(d.len(), 3);
    let s = &d.samples[d.position("458752000").unwrap()];
    assert_eq!(s.question.as_deref(), Some("What is this photo taken looking through?"));
    assert_eq!(s.demo_target, "net"); // answers[0], not multiple_choice_answer
    assert!(s.media.path().ends_with("COCO_train2014_000000458752.jpg") && s.media.path().is_file());
    match &s.target {
        Target::Vqa { answers, .. } => assert_eq!(answers.len(), 10),
        t => panic!("{t:?}"),
    }
}

#[test]
fn real_textvqa_and_vizwiz_join_by_id_not_position() {
    for (name, pattern, n) in [("textvqa_subset", "{image_id}.jpg", 60), ("vizwiz_subset", "{image_id}", 40)] {
        let mut bad = BadRecords::new(BadRecordPolicy::Error);
        let d = datasets::load_vqa(&fx(&format!("{name}/questions.json")), Some(&fx(&format!("{name}/annotations.json"))), Path::new("/img"), pattern, &mut bad).unwrap();
        assert_eq!(d.len(), n, "{name}");
        // The fixture's annotations are reversed: the first question must still get its own answers.
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fx(&format!("{name}/annotations.json"))).unwrap()).unwrap();
        let first_q = &d.samples[0];
        let ann = raw["annotations"].as_array().unwrap().iter().find(|a| a["question_id"].to_string() == first_q.id).unwrap();
        assert_eq!(first_q.demo_target, ann["answers"][0]["answer"].as_str().unwrap());
    }
    let mut bad = BadRecords::new(BadRecordPolicy::Error);
    let d = datasets::load_vqa(&fx("textvqa_subset/questions.json"), Some(&fx("textvqa_subset/annotations.json")), Path::new("/img"), "{image_id}.jpg", &mut bad).unwrap();
    assert_eq!(d.samples[0].media, MediaRef::Image(PathBuf::from("/img/003a8ae2ef43b901.jpg")));
    let mut bad = BadRecords::new(BadRecordPolicy::Error);
    let d = datasets::load_vqa(&fx("vizwiz_subset/questions.json"), Some(&fx("vizwiz_subset/annotations.json")), Path::new("/img"), "{image_id}", &mut bad).unwrap();
    assert_eq!(d.samples[0].media, MediaRef::Image(PathBuf::from("/img/VizWiz_val_00000000.jpg")));
}

#[test]
fn real_captions_in_karpathy_layout() {
    let b = Benchmark::load(&fx("bench_caption.yaml")).unwrap();
    assert_eq!((b.query.len(), b.demos.len()), (6, 34));
    let s = &b.query.samples[0];
    match &s.target {
        Target::Caption { image_id, references, .. } => {
            assert_eq!(image_id, &s.id);
            assert!(references.len() >= 5);
        }
        t => panic!("{t:?}"),
    }
    assert!(s.media.path().to_string_lossy().contains("val2014/COCO_val2014_"));
    // Flickr layout: no cocoid, no filepath → id is the file stem.
    let mut bad = BadRecords::new(BadRecordPolicy::Error);
    let f = datasets::load_karpathy(&fx("flickr_karpathy/dataset_flickr30k.json"), Path::new("/f"), &["train".into()], None, &mut bad).unwrap();
    assert_eq!(f.len(), 6);
    assert!(f.position("6338542128").is_some());
    assert_eq!(f.samples[f.position("6338542128").unwrap()].media.path(), Path::new("/f/6338542128.jpg"));
}

#[test]
fn synthetic_imagenet_hateful_and_videoqa_layouts() {
    let b = Benchmark::load(&fx("bench_imagenet.yaml")).unwrap();
    assert_eq!((b.query.len(), b.demos.len()), (6, 36));
    assert_eq!(b.candidates, vec!["tench", "goldfish", "great white shark"]);
    let s = &b.query.samples[2];
    assert_eq!(s.id, "n01443537/n01443537_00000.JPEG");
    assert_eq!(s.target, Target::Class { label: 1, name: "goldfish".into() });

    let b = Benchmark::load(&fx("bench_hateful.yaml")).unwrap();
    assert_eq!((b.query.len(), b.demos.len()), (4, 40));
    let s = &b.demos.samples[0];
    assert_eq!(s.media.path(), fx("hateful_memes/img/00100.png"));
    assert!(matches!(s.target, Target::Class { .. }));

    let b = Benchmark::load(&fx("bench_videoqa.yaml")).unwrap();
    assert_eq!(b.demos.samples[3].media, MediaRef::Video(fx("msrvtt_qa/videos/video7003.mp4")));
    assert_eq!(b.demos.samples[3].target, Target::Answer { answer: "thing3".into() });
}

#[test]
fn bad_records_are_named_or_skipped_with_a_summary() {
    let q = fx("bad_vqa/questions.json");
    let a = fx("bad_vqa/annotations.json");
    let mut bad = BadRecords::new(BadRecordPolicy::Error);
    let d = datasets::load_vqa(&q, Some(&a), Path::new("/i"), "COCO_x_{image_id:012}.jpg", &mut bad).unwrap();
    assert_eq!(d.samples.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["1"]); // only question 1 survives
    let reasons: Vec<String> = bad.records().iter().map(|r| r.to_string()).collect();
    let joined = reasons.join("\n");
    for needle in ["record 2 in", "no annotation", "record 3 in", "question", "record 1 in", "duplicate", "record 4 in", "answers", "record 5 in", "image_id"] {
        assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
    }
    let err = bad.finish("dataset.query").unwrap_err().to_string();
    assert!(err.contains("5 bad record(s)") && err.contains("on_bad_record: skip"), "{err}");

    // Through a benchmark file with `skip`: loads, and reports a summary.
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("b.yaml");
    std::fs::write(
        &bench,
        format!(
            "name: bad\ntask: generate\ntemplate: {t}\ndataset:\n  layout: vqa\n  on_bad_record: skip\n  query: {{questions: {q}, annotations: {a}, images: /i, pattern: \"{{image_id:012}}.jpg\"}}\n  demos: {{questions: {q}, annotations: {a}, images: /i, pattern: \"{{image_id:012}}.jpg\"}}\nshots: [0]\ntrials: {{seeds: [1]}}\ngeneration: {{max_new_tokens: 5, num_beams: 3, length_penalty: 0.0}}\nmetric: {{name: vqa_accuracy}}\n",
            t = root().join("prompts/openflamingo_vqa.yaml").display(),
            q = q.display(),
            a = a.display()
        ),
    )
    .unwrap();
    let b = Benchmark::load(&bench).unwrap();
    assert_eq!(b.query.len(), 1);
    let summary = b.skipped_summaries().join("\n");
    assert!(summary.contains("skipped 5 bad record(s)"), "{summary}");
    // Under `error` the same file fails, naming records and files.
    std::fs::write(&bench, std::fs::read_to_string(&bench).unwrap().replace("on_bad_record: skip", "on_bad_record: error")).unwrap();
    let err = format!("{:#}", Benchmark::load(&bench).err().unwrap());
    assert!(err.contains("record 2 in") && err.contains("bad_vqa/annotations.json"), "{err}");
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("x.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = "name: t
task: generate
template: t.yaml
dataset:
  layout: vqa
  query:
    questions: q.json
    images: ${IMG_ROOT_FOR_TEST:-imgs}/val
    pattern: \"{image_id}.jpg\"
  demos:
    questions: q.json
    annotations: a.json
    images: imgs
    pattern: \"{image_id}.jpg\"
shots: [0, 4]
trials:
  seeds: [1]
generation:
  max_new_tokens: 5
  num_beams: 3
  length_penalty: 0.0
metric:
  name: vqa_accuracy
";

#[test]
fn schema_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    assert!(BenchmarkSpec::from_file(&write(dir.path(), GOOD)).is_ok());

    let p = write(dir.path(), &GOOD.replace("  num_beams: 3", "  num_beams: 3\n  beams: 2"));
    let e = BenchmarkSpec::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("x.yaml:21:") && e.contains("generation") && e.contains("unknown field `beams`"), "{e}");

    let p = write(dir.path(), &GOOD.replace("max_new_tokens: 5", "max_new_tokens: five"));
    let e = BenchmarkSpec::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("x.yaml:19:") && e.contains("generation.max_new_tokens") && e.contains("invalid type"), "{e}");

    let p = write(dir.path(), &GOOD.replace("shots: [0, 4]", "shots: [0, four]"));
    let e = BenchmarkSpec::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("x.yaml:15:") && e.contains("shots[1]"), "{e}");

    let p = write(dir.path(), &GOOD.replace("task: generate", "task: rank"));
    let e = BenchmarkSpec::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("x.yaml") && e.contains("ranking"), "{e}");

    let p = write(dir.path(), &GOOD.replace("    annotations: a.json\n", ""));
    let e = BenchmarkSpec::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("dataset.demos.annotations: required"), "{e}");

    let p = write(dir.path(), &GOOD.replace("layout: vqa", "layout: vqa2"));
    let e = BenchmarkSpec::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("x.yaml:5:") && e.contains("dataset.layout") && e.contains("vqa2"), "{e}");
}

#[test]
fn env_substitution_and_relative_paths() {
    let base = Path::new("/bench/dir");
    assert_eq!(spec::resolve_path("${NO_SUCH_VAR_FOR_TEST:-data}/x", base, "k").unwrap(), PathBuf::from("/bench/dir/data/x"));
    std::env::set_var("FE_TEST_ROOT_VAR", "/abs/root");
    assert_eq!(spec::resolve_path("${FE_TEST_ROOT_VAR}/val", base, "k").unwrap(), PathBuf::from("/abs/root/val"));
    let e = spec::resolve_path("${NO_SUCH_VAR_FOR_TEST}/x", base, "dataset.query.images").unwrap_err().to_string();
    assert!(e.contains("dataset.query.images") && e.contains("NO_SUCH_VAR_FOR_TEST"), "{e}");
}

#[test]
fn every_shipped_benchmark_file_validates() {
    for e in std::fs::read_dir(root().join("benchmarks")).unwrap() {
        let p = e.unwrap().path();
        BenchmarkSpec::from_file(&p).unwrap_or_else(|e| panic!("{e:#}"));
    }
    for name in ["demo_vqa", "demo_coco", "demo_hateful", "demo_videoqa"] {
        let b = Benchmark::load(&root().join(format!("benchmarks/{name}.yaml"))).unwrap();
        assert!(b.skipped_summaries().is_empty(), "{name}");
    }
}

#[test]
fn demo_benchmarks_build_requests_with_existing_media() {
    let cache = tempfile::tempdir().unwrap();
    for name in ["demo_vqa", "demo_coco", "demo_hateful"] {
        let b = Benchmark::load(&root().join(format!("benchmarks/{name}.yaml"))).unwrap();
        for &shot in &b.spec.shots {
            let set = b.requests(shot, 0, None).unwrap();
            assert_eq!(set.requests.len(), b.query.len());
            for r in &set.requests {
                assert_eq!(r.prompt.matches("<image>").count(), r.media.len());
                for m in &r.media {
                    match m {
                        Media::Image(p) => assert!(p.is_file()),
                        Media::Video(_) => unreachable!(),
                    }
                }
            }
        }
    }
    // 32 shots fit the demo VQA demonstration split (36 questions).
    let b = Benchmark::load(&root().join("benchmarks/demo_vqa.yaml")).unwrap();
    assert_eq!(b.requests(32, 0, Some(2)).unwrap().requests[0].demo_ids.len(), 32);
    let _ = cache;
}

#[test]
fn video_frames_are_sampled_and_cached_and_bad_videos_are_named() {
    if std::process::Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("ffmpeg not installed: skipping");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let vspec = spec::VideoSpec { frames: 5, sampling: spec::FrameSampling::Uniform, fps: None };
    let video = root().join("data/demo/videos/video7010.mp4");
    let frames = flamingo_eval::benchmark::video::frames_for(&video, &vspec, cache.path()).unwrap();
    assert_eq!(frames.len(), 5);
    let mtimes: Vec<_> = frames.iter().map(|f| std::fs::metadata(f).unwrap().modified().unwrap()).collect();
    let again = flamingo_eval::benchmark::video::frames_for(&video, &vspec, cache.path()).unwrap();
    assert_eq!(frames, again);
    assert_eq!(mtimes, again.iter().map(|f| std::fs::metadata(f).unwrap().modified().unwrap()).collect::<Vec<_>>());
    let fps = spec::VideoSpec { frames: 30, sampling: spec::FrameSampling::Fps, fps: Some(3.0) };
    let f3 = flamingo_eval::benchmark::video::frames_for(&video, &fps, cache.path()).unwrap();
    assert!((5..=7).contains(&f3.len()), "2 s at 3 fps gave {}", f3.len());

    let junk = cache.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video").unwrap();
    let e = format!("{:#}", flamingo_eval::benchmark::video::frames_for(&junk, &vspec, cache.path()).unwrap_err());
    assert!(e.contains("cannot read video") && e.contains("junk.mp4"), "{e}");

    // Through a benchmark: a missing video is a per-sample error naming the sample.
    std::env::set_var("FLAMINGO_EVAL_CACHE", cache.path());
    let b = Benchmark::load(&fx("bench_videoqa.yaml")).unwrap();
    let set = b.requests(0, 0, Some(1)).unwrap();
    let e = set.requests[0].error.clone().expect("the request carries its media error");
    assert!(e.contains("sample 1000") && e.contains("video7100.mp4") && e.contains("does not exist"), "{e}");
    let b = Benchmark::load(&root().join("benchmarks/demo_videoqa.yaml")).unwrap();
    let set = b.requests(4, 0, None).unwrap();
    assert_eq!(set.requests.len(), 4);
    match &set.requests[0].media[0] {
        Media::Video(f) => assert_eq!(f.len(), 4),
        m => panic!("{m:?}"),
    }
}

#[test]
fn repeated_shot_counts_or_seeds_are_refused() {
    let text = std::fs::read_to_string(root().join("benchmarks/demo_vqa.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (field, bad, want) in [("shots", "[0, 4, 4]", "shots: 4 is listed twice"), ("seeds", "[42, 42]", "trials.seeds: 42 is listed twice")] {
        let mut spec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(bad).unwrap();
        if field == "shots" {
            spec["shots"] = v;
        } else {
            spec["trials"]["seeds"] = v;
        }
        let p = dir.path().join(format!("{field}.yaml"));
        std::fs::write(&p, serde_yaml::to_string(&spec).unwrap()).unwrap();
        let e = format!("{:#}", BenchmarkSpec::from_file(&p).unwrap_err());
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn a_metric_that_cannot_score_the_layout_is_refused() {
    let text = std::fs::read_to_string(root().join("benchmarks/demo_vqa.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut spec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    spec["metric"]["name"] = "cider".into();
    let p = dir.path().join("cider_on_vqa.yaml");
    std::fs::write(&p, serde_yaml::to_string(&spec).unwrap()).unwrap();
    let e = format!("{:#}", BenchmarkSpec::from_file(&p).unwrap_err());
    assert!(e.contains("metric.name") && e.contains("cannot score"), "{e}");
}

/// pycocoevalcap tokenizes captions in the references file's image order (its `images` list; images it
/// does not list, in the order the annotations name them), or the Karpathy order without a references
/// file: the caption target carries that position.
#[test]
fn caption_targets_carry_the_evaluation_order() {
    let dir = tempfile::tempdir().unwrap();
    let karpathy = dir.path().join("karpathy.json");
    let im = |id: u64| serde_json::json!({"cocoid": id, "filename": format!("{id}.jpg"), "split": "test", "sentences": [{"raw": "a cat"}]});
    std::fs::write(&karpathy, serde_json::json!({"images": [im(5), im(7), im(9)]}).to_string()).unwrap();
    let refs = dir.path().join("refs.json");
    let ann = |id: u64| serde_json::json!({"image_id": id, "id": id * 10, "caption": "a dog"});
    std::fs::write(&refs, serde_json::json!({"images": [{"id": 9}, {"id": 5}], "annotations": [ann(5), ann(7), ann(9)]}).to_string())
        .unwrap();
    let order = |d: &datasets::Dataset| -> Vec<(String, Option<usize>)> {
        d.samples
            .iter()
            .map(|s| match &s.target {
                Target::Caption { eval_order, .. } => (s.id.clone(), *eval_order),
                t => panic!("{t:?}"),
            })
            .collect()
    };
    let mut bad = BadRecords::new(BadRecordPolicy::Error);
    let d = datasets::load_karpathy(&karpathy, Path::new("/i"), &["test".into()], Some(&refs), &mut bad).unwrap();
    assert_eq!(order(&d), vec![("5".into(), Some(1)), ("7".into(), Some(2)), ("9".into(), Some(0))]);
    let d = datasets::load_karpathy(&karpathy, Path::new("/i"), &["test".into()], None, &mut bad).unwrap();
    assert_eq!(order(&d), vec![("5".into(), Some(0)), ("7".into(), Some(1)), ("9".into(), Some(2))]);
}
