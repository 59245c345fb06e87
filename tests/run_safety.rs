//! Reliability and safety of runs (issue 13): exit status scripts can trust, no stale record reused on
//! resume, one writer per results folder, paths kept inside the data, configuration errors before any work,
//! per-sample media failures, device honesty and the run-time lookup of ONNX Runtime.

mod common;

use common::*;
use flamingo_eval::engine::{read_records, run, RunConfig, SampleRecord};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flamingo-eval"))
}

fn fe(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(exe()).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// `flamingo-eval run --quiet --threads 1` of `bench` on tiny-gptneox into `out`, plus `extra` flags.
fn cli_run(bench: &Path, out: &Path, extra: &[&str]) -> Output {
    let m = model("tiny-gptneox");
    let mut args: Vec<&std::ffi::OsStr> =
        vec![os("run"), os("--quiet"), os("--threads"), os("1"), os("--model"), m.as_os_str(), os("--benchmark"), bench.as_os_str(), os("--out"), out.as_os_str()];
    args.extend(extra.iter().map(os));
    fe(&args)
}

/// A copy of the demo VQA data under `dir` (images and annotation files), and a benchmark over it.
struct VqaCopy {
    bench: PathBuf,
    val: PathBuf,
    train: PathBuf,
    val_annotations: PathBuf,
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn vqa_copy(dir: &Path, extra_yaml: &str) -> VqaCopy {
    let data = repo().join("data/demo");
    let (val, train) = (dir.join("images/val2014"), dir.join("images/train2014"));
    copy_dir(&data.join("images/val2014"), &val);
    copy_dir(&data.join("images/train2014"), &train);
    for f in ["vqa_val_questions.json", "vqa_val_annotations.json", "vqa_train_questions.json", "vqa_train_annotations.json"] {
        std::fs::copy(data.join(f), dir.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(bench("demo_vqa")).unwrap();
    let text = text.replace("../prompts/", &format!("{}/prompts/", repo().display())).replace("../data/demo/", "./");
    let bench = dir.join("bench.yaml");
    std::fs::write(&bench, format!("{text}{extra_yaml}")).unwrap();
    VqaCopy { bench, val, train, val_annotations: dir.join("vqa_val_annotations.json") }
}

/// A copy of a shipped benchmark in `dir` with absolute paths (so it can live anywhere), edited by `edit`.
fn bench_copy(name: &str, dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(bench(name))
        .unwrap()
        .replace("../prompts/", &format!("{}/prompts/", repo().display()))
        .replace("../data/", &format!("{}/data/", repo().display()));
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(format!("{name}-copy.yaml"));
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit of {name} changed nothing (benchmark file layout changed?)");
    std::fs::write(&p, edited).unwrap();
    p
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn records(out: &Path) -> Vec<SampleRecord> {
    read_records(&out.join("samples.jsonl"), false).unwrap()
}

fn cfg(bench: &Path, out: &Path) -> RunConfig {
    run_config("tiny-gptneox", bench, out)
}

// ---------------------------------------------------------------------------------------------------------
// 1. Exit status

#[test]
fn exit_status_fails_a_run_without_scored_samples_and_above_the_error_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let v = vqa_copy(tmp.path(), "");
    let vals = sorted_files(&v.val);
    // One broken query image: the run succeeds, the failures are reported in the summary line.
    std::fs::write(&vals[0], b"not an image").unwrap();
    let o = cli_run(&v.bench, &tmp.path().join("one"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("sample(s) failed and are excluded from the metric"), "{}", text(&o));
    // The same with --max-error-rate 0: exit 1, the first errors shown.
    let o = cli_run(&v.bench, &tmp.path().join("strict"), &["--max-error-rate", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("above --max-error-rate") && text(&o).contains("first errors:"), "{}", text(&o));
    // A generous rate passes.
    let o = cli_run(&v.bench, &tmp.path().join("lenient"), &["--max-error-rate", "0.9"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Every query image broken: no (shot, trial) has a scored sample -> exit 1 naming the files.
    for p in &vals {
        std::fs::write(p, b"not an image").unwrap();
    }
    let o = cli_run(&v.bench, &tmp.path().join("all"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("no scored sample") && t.contains("first errors:") && t.contains(vals[0].file_name().unwrap().to_str().unwrap()), "{t}");
    // --fail-fast stopping at a failed sample is exit 1, not a configuration error.
    let o = cli_run(&v.bench, &tmp.path().join("ff"), &["--fail-fast"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // --limit 0 and a bad rate are configuration errors (exit 2) before any work.
    for (flags, want) in [(["--limit", "0"], "--limit 0"), (["--max-error-rate", "2"], "--max-error-rate")] {
        let out = tmp.path().join("cfg");
        let o = cli_run(&v.bench, &out, &flags);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(want), "{}", text(&o));
        assert!(!out.join("samples.jsonl").exists());
    }
    // The exit codes are documented.
    let help = text(&fe(&[os("run"), os("--help")]));
    for code in ["0  every (shot, trial)", "1  the run finished", "2  nothing was evaluated", "3  the results folder is in use"] {
        assert!(help.contains(code), "run --help lacks {code:?}:\n{help}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Nothing stale reused on resume

#[test]
fn a_replaced_image_or_changed_annotation_recomputes_exactly_the_affected_records() {
    let tmp = tempfile::tempdir().unwrap();
    let v = vqa_copy(tmp.path(), "");
    let out = tmp.path().join("out");
    let first = run(&cfg(&v.bench, &out)).unwrap();
    assert_eq!(first.provenance.samples_recomputed, 0);
    let before = records(&out);
    let n = before.len();

    // Replace one demonstration image by another picture (same name): exactly the records that show it
    // (as a demonstration) recompute.
    let trains = sorted_files(&v.train);
    let victim = &trains[0];
    std::fs::copy(&trains[1], victim).unwrap();
    let shows = |r: &SampleRecord| r.media.iter().flatten().any(|m| Path::new(m).file_name() == victim.file_name());
    let affected = before.iter().filter(|r| shows(r)).count();
    assert!(affected > 0 && affected < n, "{affected} of {n}");
    let s = run(&cfg(&v.bench, &out)).unwrap();
    assert_eq!(s.provenance.samples_recomputed, affected);
    assert_eq!(s.provenance.samples_resumed, n - affected);
    assert_eq!(s.provenance.samples_evaluated_this_invocation, affected);
    // Byte-identical to an uninterrupted run on the changed data.
    let fresh = tmp.path().join("fresh");
    run(&cfg(&v.bench, &fresh)).unwrap();
    assert_eq!(std::fs::read(out.join("samples.jsonl")).unwrap(), std::fs::read(fresh.join("samples.jsonl")).unwrap());
    assert_eq!(std::fs::read(out.join("summary.csv")).unwrap(), std::fs::read(fresh.join("summary.csv")).unwrap());

    // Change one question's annotations: its records (every shot and trial) recompute, nothing else.
    let mut ann: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&v.val_annotations).unwrap()).unwrap();
    let qid = ann["annotations"][0]["question_id"].to_string();
    for a in ann["annotations"][0]["answers"].as_array_mut().unwrap() {
        a["answer"] = "zebra".into();
    }
    std::fs::write(&v.val_annotations, serde_json::to_string(&ann).unwrap()).unwrap();
    let per_question = records(&out).iter().filter(|r| r.sample_id == qid).count();
    assert!(per_question > 0);
    let s = run(&cfg(&v.bench, &out)).unwrap();
    assert_eq!(s.provenance.samples_recomputed, per_question);
    let fresh2 = tmp.path().join("fresh2");
    run(&cfg(&v.bench, &fresh2)).unwrap();
    assert_eq!(std::fs::read(out.join("samples.jsonl")).unwrap(), std::fs::read(fresh2.join("samples.jsonl")).unwrap());

    // Unchanged inputs: everything reused, each distinct media file hashed once.
    let s = run(&cfg(&v.bench, &out)).unwrap();
    assert_eq!((s.provenance.samples_recomputed, s.provenance.samples_resumed), (0, n));
    let distinct: std::collections::HashSet<&String> = before.iter().flat_map(|r| r.media.iter().flatten()).collect();
    assert_eq!(s.provenance.media_files_hashed, distinct.len());
}

#[test]
fn a_repaired_image_recomputes_its_failures_and_retry_errors_recomputes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let v = vqa_copy(tmp.path(), "");
    let vals = sorted_files(&v.val);
    let good = std::fs::read(&vals[0]).unwrap();
    std::fs::write(&vals[0], b"not an image").unwrap();
    let out = tmp.path().join("out");
    run(&cfg(&v.bench, &out)).unwrap();
    let failed = records(&out).iter().filter(|r| r.error.is_some()).count();
    assert!(failed > 0);
    // Unchanged: failures are kept (same file, same error) unless --retry-errors.
    let s = run(&cfg(&v.bench, &out)).unwrap();
    assert_eq!(s.provenance.samples_recomputed, 0);
    let mut c = cfg(&v.bench, &out);
    c.retry_errors = true;
    let before = std::fs::read(out.join("samples.jsonl")).unwrap();
    let s = run(&c).unwrap();
    assert_eq!(s.provenance.samples_recomputed, failed);
    assert_eq!(std::fs::read(out.join("samples.jsonl")).unwrap(), before, "they fail again, identically");
    // Repair the image: exactly its failed records recompute, and the folder equals a fresh run.
    std::fs::write(&vals[0], &good).unwrap();
    let s = run(&cfg(&v.bench, &out)).unwrap();
    assert_eq!(s.provenance.samples_recomputed, failed);
    assert!(records(&out).iter().all(|r| r.error.is_none()));
    let fresh = tmp.path().join("fresh");
    run(&cfg(&v.bench, &fresh)).unwrap();
    assert_eq!(std::fs::read(out.join("samples.jsonl")).unwrap(), std::fs::read(fresh.join("samples.jsonl")).unwrap());
}

#[test]
fn records_without_media_digests_are_recomputed() {
    // A folder written before records carried digests: nothing in it can be trusted, so all recompute.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run(&cfg(&bench("demo_vqa"), &out)).unwrap();
    let want = std::fs::read(out.join("samples.jsonl")).unwrap();
    let old: String = records(&out)
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r).unwrap();
            v.as_object_mut().unwrap().remove("media_sha256");
            serde_json::to_string(&v).unwrap() + "\n"
        })
        .collect();
    std::fs::write(out.join("samples.jsonl"), old).unwrap();
    let s = run(&cfg(&bench("demo_vqa"), &out)).unwrap();
    assert_eq!(s.provenance.samples_recomputed, s.provenance.samples_evaluated_this_invocation);
    assert_eq!(s.provenance.samples_resumed, 0);
    assert_eq!(std::fs::read(out.join("samples.jsonl")).unwrap(), want);
}

// ---------------------------------------------------------------------------------------------------------
// 3. One writer per results folder

#[test]
fn a_second_run_into_a_locked_folder_stops_at_once_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // This test process holds the lock; the run is a second process.
    let lock = flamingo_eval::engine::lock::ResultsLock::acquire(&out).unwrap();
    let o = cli_run(&bench("demo_vqa"), &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains(&format!("PID {}", std::process::id())) && t.contains("host") && t.contains("in use"), "{t}");
    assert!(!out.join("samples.jsonl").exists() && !out.join("run.json").exists(), "nothing was touched");
    drop(lock);

    // A lock file left by a dead process (its PID and host still written in it): taken over.
    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(out.join(".flamingo-eval.lock"), format!("PID {pid} on host elsewhere, since unix time 1")).unwrap();
    let o = cli_run(&bench("demo_vqa"), &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&format!("took over the lock left by PID {pid}")), "{}", text(&o));

    // Two runs started together: while the first holds the folder, the second exits 3 naming its PID.
    let out2 = tmp.path().join("out2");
    let m = model("tiny-gptneox");
    let b = bench("demo_coco");
    let mut first = Command::new(exe())
        .args([os("run"), os("--quiet"), os("--threads"), os("1"), os("--batch-size"), os("1"), os("--model"), m.as_os_str(), os("--benchmark"), b.as_os_str(), os("--out"), out2.as_os_str()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let want = format!("PID {}", first.id());
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < 60 && !std::fs::read_to_string(out2.join(".flamingo-eval.lock")).unwrap_or_default().contains(&want) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = cli_run(&b, &out2, &[]);
    let still_running = first.try_wait().unwrap().is_none();
    assert!(first.wait().unwrap().success());
    if still_running {
        assert_eq!(second.status.code(), Some(3), "{}", text(&second));
        assert!(text(&second).contains(&want), "{}", text(&second));
    }
    // Afterwards the folder is whole and resumable: a rerun reuses every record.
    let o = cli_run(&b, &out2, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 sample(s) evaluated"), "{}", text(&o));
}

// ---------------------------------------------------------------------------------------------------------
// 4. Paths stay inside the data

#[test]
fn records_naming_files_outside_the_media_root_are_refused_by_id() {
    use flamingo_eval::benchmark::Benchmark;
    let tmp = tempfile::tempdir().unwrap();
    let v = vqa_copy(tmp.path(), "");
    // VQA: image ids through a `{image_id}` rule; one climbs out with `..`, one is absolute.
    let q = tmp.path().join("vqa_val_questions.json");
    let mut qs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&q).unwrap()).unwrap();
    let list = qs["questions"].as_array_mut().unwrap();
    for item in list.iter_mut() {
        let id = item["image_id"].as_u64().unwrap();
        item["image_id"] = format!("COCO_val2014_{id:012}.jpg").into();
    }
    let escaping = list[0]["question_id"].to_string();
    let absolute = list[1]["question_id"].to_string();
    let secret = tmp.path().join("secret.jpg");
    std::fs::copy(sorted_files(&v.val)[0].clone(), &secret).unwrap();
    list[0]["image_id"] = "../../secret.jpg".into();
    list[1]["image_id"] = secret.display().to_string().into();
    let names: std::collections::HashMap<String, serde_json::Value> =
        list.iter().map(|i| (i["question_id"].to_string(), i["image_id"].clone())).collect();
    std::fs::write(&q, serde_json::to_string(&qs).unwrap()).unwrap();
    // The annotations name the same images (they are checked against the questions).
    let mut ann: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&v.val_annotations).unwrap()).unwrap();
    for a in ann["annotations"].as_array_mut().unwrap() {
        a["image_id"] = names[&a["question_id"].to_string()].clone();
    }
    std::fs::write(&v.val_annotations, serde_json::to_string(&ann).unwrap()).unwrap();
    let orig = std::fs::read_to_string(&v.bench).unwrap();
    let text = orig.replace("pattern: \"COCO_val2014_{image_id:012}.jpg\"", "pattern: \"{image_id}\"");
    assert_ne!(text, orig);
    std::fs::write(&v.bench, &text).unwrap();
    let e = format!("{:#}", Benchmark::load(&v.bench).err().expect("refused"));
    assert!(e.contains(&escaping) && e.contains(&absolute) && e.contains("outside") && e.contains("allow_paths_outside_root"), "{e}");
    // Skipped (and named) under on_bad_record: skip; accepted with allow_paths_outside_root: true.
    std::fs::write(&v.bench, format!("{}\n", text.replace("layout: vqa", "layout: vqa\n  on_bad_record: skip"))).unwrap();
    let b = Benchmark::load(&v.bench).unwrap();
    assert_eq!(b.query.skipped.len(), 2);
    std::fs::write(&v.bench, format!("{text}allow_paths_outside_root: true\n")).unwrap();
    let b = Benchmark::load(&v.bench).unwrap();
    assert!(b.query.skipped.is_empty());

    // Karpathy `filepath` climbing out.
    let k = std::fs::read_to_string(repo().join("data/demo/karpathy_coco.json")).unwrap();
    let mut kj: serde_json::Value = serde_json::from_str(&k).unwrap();
    let first_test = kj["images"].as_array_mut().unwrap().iter_mut().find(|i| i["split"] == "test").unwrap();
    first_test["filepath"] = "../..".into();
    let kid = first_test["cocoid"].to_string();
    let kpath = tmp.path().join("karpathy.json");
    std::fs::write(&kpath, serde_json::to_string(&kj).unwrap()).unwrap();
    let cb = bench_copy("demo_coco", tmp.path(), |t| t.replace(&format!("{}/data/demo/karpathy_coco.json", repo().display()), kpath.to_str().unwrap()));
    let e = format!("{:#}", Benchmark::load(&cb).err().expect("refused"));
    assert!(e.contains(&kid) && e.contains("outside"), "{e}");

    // Video QA `video` naming an absolute file.
    let vq = std::fs::read_to_string(repo().join("data/demo/videoqa_test.json")).unwrap();
    let mut vj: serde_json::Value = serde_json::from_str(&vq).unwrap();
    let vid = vj[0]["id"].to_string();
    vj[0].as_object_mut().unwrap().remove("video_id");
    vj[0]["video"] = "/etc/passwd".into();
    let vpath = tmp.path().join("videoqa_test.json");
    std::fs::write(&vpath, serde_json::to_string(&vj).unwrap()).unwrap();
    let vb = bench_copy("demo_videoqa", tmp.path(), |t| t.replace(&format!("{}/data/demo/videoqa_test.json", repo().display()), vpath.to_str().unwrap()));
    let e = format!("{:#}", Benchmark::load(&vb).err().expect("refused"));
    assert!(e.contains(&format!("record {vid} ")) && e.contains("/etc/passwd") && e.contains("outside"), "{e}");
}

#[test]
fn a_symlink_out_of_the_image_folder_fails_its_samples_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let v = vqa_copy(tmp.path(), "");
    let vals = sorted_files(&v.val);
    let outside = tmp.path().join("elsewhere.jpg");
    std::fs::rename(&vals[0], &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &vals[0]).unwrap();
    let out = tmp.path().join("out");
    run(&cfg(&v.bench, &out)).unwrap();
    let failed: Vec<SampleRecord> = records(&out).into_iter().filter(|r| r.error.is_some()).collect();
    assert!(!failed.is_empty());
    for r in &failed {
        let e = r.error.as_deref().unwrap();
        assert!(e.contains(&format!("sample {}", r.sample_id)) && e.contains("outside the declared media root") && e.contains("allow_paths_outside_root"), "{e}");
    }
    let text = std::fs::read_to_string(&v.bench).unwrap();
    std::fs::write(&v.bench, format!("{text}allow_paths_outside_root: true\n")).unwrap();
    let out2 = tmp.path().join("out2");
    run(&cfg(&v.bench, &out2)).unwrap();
    assert!(records(&out2).iter().all(|r| r.error.is_none()));
}

#[test]
fn a_benchmark_name_is_a_name_not_a_path() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["../../escaped", "/tmp/abs", "a/b", ".."] {
        let text = std::fs::read_to_string(bench("demo_vqa")).unwrap().replace("name: demo_vqa", &format!("name: \"{bad}\""));
        let p = tmp.path().join("b.yaml");
        std::fs::write(&p, text).unwrap();
        let e = format!("{:#}", flamingo_eval::benchmark::BenchmarkSpec::from_file(&p).unwrap_err());
        assert!(e.contains("not a plain name"), "{bad}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 5. Configuration errors before any work

fn model_copy(name: &str, dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let src = model(name);
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let y = std::fs::read_to_string(dir.join("model.yaml")).unwrap();
    let edited = edit(y.clone());
    std::fs::write(dir.join("model.yaml"), &edited).unwrap();
    assert!(edited != y || dir.ends_with("tok"), "the edit of {name}/model.yaml changed nothing");
    dir.to_path_buf()
}

fn err_before_work(c: &RunConfig) -> String {
    let e = format!("{:#}", run(c).err().unwrap_or_else(|| panic!("{} on {} was not refused", c.benchmark.display(), c.model_dir.display())));
    assert!(!c.out.join("samples.jsonl").exists(), "work was done before the refusal: {e}");
    e
}

#[test]
fn every_configuration_error_comes_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // A shot count larger than the demonstration pool (36 demonstration questions): today's behaviour was to
    // fail after the shot-0 samples.
    let mut c = cfg(&bench("demo_vqa"), &out);
    c.shots = Some(vec![0, 40]);
    let e = err_before_work(&c);
    assert!(e.contains("--shots 40") && e.contains("pool of 36"), "{e}");
    // The query set, not the split, is the pool.
    let small = bench_copy("demo_vqa", tmp.path(), |t| t.replace("query_set_size: 2048", "query_set_size: 3"));
    let e = err_before_work(&cfg(&small, &out));
    assert!(e.contains("pool of 3") && e.contains("query_set_size"), "{e}");
    // RICES ranks the whole split: 40 > 36 before any embedding is computed.
    let rb = bench_copy("demo_vqa", &tmp.path().join("r"), |t| {
        t.replace("demo_selection:\n  method: random", &format!("cache_dir: {}/cache\ndemo_selection:\n  method: rices", tmp.path().display()))
    });
    let mut c = cfg(&rb, &out);
    c.shots = Some(vec![4, 40]);
    let e = err_before_work(&c);
    assert!(e.contains("RICES") && e.contains("36"), "{e}");
    assert!(!tmp.path().join("cache").exists(), "no embedding was computed");
    // Trials beyond the seeds; --limit 0.
    let mut c = cfg(&bench("demo_vqa"), &out);
    c.trials = Some(2);
    assert!(err_before_work(&c).contains("trial seed"));
    let mut c = cfg(&bench("demo_vqa"), &out);
    c.limit = Some(0);
    assert!(err_before_work(&c).contains("--limit 0"));
    // Video frames beyond the model's perceiver.max_frames (tiny-video takes 4).
    let vb = bench_copy("demo_videoqa", tmp.path(), |t| t.replace("frames: 4", "frames: 8"));
    let e = err_before_work(&run_config("tiny-video", &vb, &out));
    assert!(e.contains("video.frames is 8") && e.contains("max_frames"), "{e}");
}

#[test]
fn model_mismatches_are_refused_by_run_and_flagged_by_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        // model.yaml promises more positions than the decoder graph has (its rotary table ends at 2048).
        ("max_positions", model_copy("tiny-gptneox", &tmp.path().join("pos"), |y| y.replace("max_positions: 2048", "max_positions: 4096")), "lang.max_positions is 4096"),
        // Images of another size than the vision graph takes.
        ("image_size", model_copy("tiny-gptneox", &tmp.path().join("size"), |y| y.replace("image_size: 64", "image_size: 48")), "preprocess.image_size"),
        // A vocabulary smaller than the tokenizer's (and than the logits).
        ("vocab", model_copy("tiny-gptneox", &tmp.path().join("vocab"), |y| y.replace("vocab_size: 2051", "vocab_size: 2000")), "vocab"),
    ];
    for (what, dir, want) in &cases {
        let out = tmp.path().join(format!("out-{what}"));
        let mut c = cfg(&bench("demo_vqa"), &out);
        c.model_dir = dir.clone();
        let e = err_before_work(&c);
        assert!(e.contains(want), "{what}: {e}");
        assert!(!e.contains('\u{1b}'), "{what}: ANSI codes in {e:?}");
        let o = fe(&[os("model"), os("inspect"), dir.as_os_str()]);
        if *what == "vocab" {
            // Special-token ids past lang.vocab_size: the manifest itself is refused when loaded (exit 2).
            assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
            assert!(text(&o).contains("lang.vocab_size"), "{what}: {}", text(&o));
        } else {
            assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
            assert!(text(&o).contains("MISMATCH") && text(&o).contains(want), "{what}: {}", text(&o));
        }
    }
    // A tokenizer with more tokens than the model's embedding table (ids past lang.vocab_size).
    let dir = model_copy("tiny-gptneox", &tmp.path().join("tok"), |y| y);
    let tok_path = dir.join("tokenizer.json");
    let old_sha = flamingo_eval::hashing::sha256_file_hex(&tok_path).unwrap();
    let mut tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&tok_path).unwrap()).unwrap();
    tok["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({
        "id": 5000, "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true
    }));
    std::fs::write(&tok_path, serde_json::to_string(&tok).unwrap()).unwrap();
    let new_sha = flamingo_eval::hashing::sha256_file_hex(&tok_path).unwrap();
    let y = std::fs::read_to_string(dir.join("model.yaml")).unwrap().replace(&old_sha, &new_sha);
    std::fs::write(dir.join("model.yaml"), y).unwrap();
    let mut c = cfg(&bench("demo_vqa"), &tmp.path().join("out-tok"));
    c.model_dir = dir.clone();
    let e = err_before_work(&c);
    assert!(e.contains("the tokenizer has") && e.contains("lang.vocab_size"), "{e}");
    // The fixtures themselves agree with their graphs.
    for m in ["tiny-gptneox", "tiny-mpt", "tiny-video"] {
        let o = fe(&[os("model"), os("inspect"), model(m).as_os_str()]);
        assert_eq!(o.status.code(), Some(0), "{m}: {}", text(&o));
        assert!(text(&o).contains("agree"), "{m}: {}", text(&o));
    }
}

// ---------------------------------------------------------------------------------------------------------
// 6. Per-sample media failures

#[test]
fn missing_directory_and_looping_media_are_recorded_on_their_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let v = vqa_copy(tmp.path(), "");
    let vals = sorted_files(&v.val);
    std::fs::remove_file(&vals[0]).unwrap();
    std::fs::remove_file(&vals[1]).unwrap();
    std::fs::create_dir(&vals[1]).unwrap();
    std::fs::remove_file(&vals[2]).unwrap();
    let loop_b = v.val.join("loop_b.jpg");
    std::os::unix::fs::symlink(&loop_b, &vals[2]).unwrap();
    std::os::unix::fs::symlink(&vals[2], &loop_b).unwrap();
    let out = tmp.path().join("out");
    let s = run(&cfg(&v.bench, &out)).unwrap();
    let recs = records(&out);
    let err_of = |p: &Path| -> Vec<String> {
        recs.iter().filter(|r| r.media.last().unwrap()[0].ends_with(p.file_name().unwrap().to_str().unwrap())).map(|r| r.error.clone().unwrap_or_default()).collect()
    };
    for (p, want) in [(&vals[0], "does not exist"), (&vals[1], "is a directory"), (&vals[2], "symlink")] {
        let errs = err_of(p);
        assert!(!errs.is_empty(), "{}", p.display());
        for e in errs {
            assert!(e.contains(want) && e.contains(p.file_name().unwrap().to_str().unwrap()), "{want}: {e}");
        }
    }
    assert!(recs.iter().any(|r| r.error.is_none()), "the other samples ran");
    assert_eq!(s.results.iter().map(|r| r.errors).sum::<usize>(), recs.iter().filter(|r| r.error.is_some()).count());
    let mut c = cfg(&v.bench, &tmp.path().join("ff"));
    c.fail_fast = true;
    let e = format!("{:#}", run(&c).unwrap_err());
    assert!(e.contains("--fail-fast") && ["does not exist", "is a directory", "symlink"].iter().any(|w| e.contains(w)), "{e}");
}

#[test]
fn a_missing_image_in_a_ranking_batch_is_recorded_and_the_rest_of_the_batch_is_scored() {
    // The ranking path keeps per-request state (prompt ensembling orders) beside each prompt: a sample whose
    // image is missing must not shift it onto the next sample of its batch.
    let tmp = tempfile::tempdir().unwrap();
    let val = tmp.path().join("val2014");
    copy_dir(&repo().join("data/demo/images/val2014"), &val);
    let gone = sorted_files(&val)[0].clone();
    std::fs::remove_file(&gone).unwrap();
    let b = bench_copy("demo_hateful", tmp.path(), |t| t.replace(&format!("{}/data/demo/images/val2014", repo().display()), val.to_str().unwrap()));
    let out = tmp.path().join("out");
    run(&cfg(&b, &out)).unwrap();
    let recs = records(&out);
    let name = gone.file_name().unwrap().to_str().unwrap();
    let (bad, good): (Vec<_>, Vec<_>) = recs.iter().partition(|r| r.media.last().unwrap()[0].ends_with(name));
    assert!(!bad.is_empty() && !good.is_empty());
    for r in &bad {
        assert!(r.error.as_deref().unwrap_or("").contains("does not exist"), "{:?}", r.error);
    }
    for r in &good {
        assert!(r.error.is_none() && r.candidate_scores.as_ref().is_some_and(|c| c.len() == 2), "{:?}", r.error);
    }
}

#[test]
fn a_missing_video_is_recorded_on_its_sample() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("ffmpeg not installed: skipping");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    copy_dir(&repo().join("data/demo/videos"), &videos);
    let gone = sorted_files(&videos).last().unwrap().clone();
    std::fs::remove_file(&gone).unwrap();
    let b = bench_copy("demo_videoqa", tmp.path(), |t| {
        format!("{}cache_dir: {}/cache\n", t.replace(&format!("{}/data/demo/videos", repo().display()), videos.to_str().unwrap()), tmp.path().display())
    });
    let out = tmp.path().join("out");
    run(&run_config("tiny-video", &b, &out)).unwrap();
    let recs = records(&out);
    let failed: Vec<&SampleRecord> = recs.iter().filter(|r| r.error.is_some()).collect();
    assert!(!failed.is_empty() && failed.len() < recs.len(), "{} of {}", failed.len(), recs.len());
    for r in failed {
        let e = r.error.as_deref().unwrap();
        assert!(e.contains(gone.file_name().unwrap().to_str().unwrap()) && e.contains("does not exist"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 7. Device honesty

#[test]
#[cfg(not(feature = "cuda"))]
fn an_unusable_device_is_an_error_naming_the_fix_unless_cpu_fallback_is_allowed() {
    let m = model("tiny-gptneox");
    let o = fe(&[os("model"), os("inspect"), m.as_os_str(), os("--device"), os("cuda")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("--features cuda") && t.contains("--allow-cpu-fallback") && t.contains("cuda:0"), "{t}");
    let o = fe(&[os("model"), os("inspect"), m.as_os_str(), os("--device"), os("cuda"), os("--allow-cpu-fallback")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("WARNING") && text(&o).contains("CPUExecutionProvider"), "{}", text(&o));
    // A run stops before any work.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = cli_run(&bench("demo_vqa"), &out, &["--device", "cuda:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--allow-cpu-fallback"), "{}", text(&o));
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------------------
// 8. ONNX Runtime looked up at run time

#[test]
fn a_copied_binary_finds_onnx_runtime_only_where_it_runs() {
    let system = ["/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib"]
        .iter()
        .any(|d| Path::new(d).join("libonnxruntime.so").exists() || Path::new(d).join("libonnxruntime.so.1").exists());
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("flamingo-eval");
    std::fs::copy(exe(), &bin).unwrap();
    let inspect = || {
        Command::new(&bin)
            .args([os("model"), os("inspect"), model("tiny-gptneox").as_os_str()])
            .current_dir(tmp.path())
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap()
    };
    let ort = std::fs::canonicalize(repo().join(".ort/libonnxruntime.so")).expect("the checkout's .ort/ (scripts/setup_ort.sh)");
    if !system {
        // Copied out of its checkout, the binary does not use the checkout it was built in.
        let o = inspect();
        assert!(!o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("ONNX Runtime library not found"), "{t}");
        assert!(!t.contains(repo().join(".ort").to_str().unwrap()), "looked in the build checkout: {t}");
        assert!(t.contains(tmp.path().join("libonnxruntime.so").to_str().unwrap()), "next to the binary first: {t}");
    }
    // A library next to the binary is found and used.
    std::os::unix::fs::symlink(&ort, tmp.path().join("libonnxruntime.so")).unwrap();
    let o = inspect();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("onnxruntime  {}", tmp.path().join("libonnxruntime.so").display())), "{}", text(&o));
}
