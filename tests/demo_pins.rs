//! Pinned demonstrations (`--demos FILE`): replaying a run's own samples.jsonl, hand-written pins checked
//! through `flamingo-eval prompts`, fallback counting, run identity, and every validation error.

mod common;

use common::*;
use flamingo_eval::benchmark::pinned::PinsConfig;
use flamingo_eval::engine::{read_records, run, RunConfig};
use std::path::Path;
use std::process::Command;

fn config(bench: &Path, out: &Path, demos: Option<(&Path, bool)>) -> RunConfig {
    RunConfig {
        demos: demos.map(|(p, fallback)| PinsConfig { path: p.to_path_buf(), fallback }),
        rices_cache: Default::default(),
        ..run_config("tiny-gptneox", bench, out)
    }
}

fn prompts(args: &[&str], bench: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flamingo-eval")).arg("prompts").args(args).arg("--benchmark").arg(bench).output().unwrap()
}

#[test]
fn replaying_samples_jsonl_is_byte_identical_and_fallback_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    run(&config(&bench("demo_vqa"), &a, None)).unwrap();
    let samples = a.join("samples.jsonl");
    let want = std::fs::read(&samples).unwrap();
    let n = read_records(&samples, false).unwrap().len();

    // Replay the run's own samples.jsonl on the same model: same samples, byte for byte.
    let s = run(&config(&bench("demo_vqa"), &b, Some((&samples, false)))).unwrap();
    assert_eq!(std::fs::read(b.join("samples.jsonl")).unwrap(), want);
    assert_eq!(std::fs::read(b.join("summary.csv")).unwrap(), std::fs::read(a.join("summary.csv")).unwrap());
    let prov = s.provenance.demo_pins.as_ref().expect("pins provenance");
    assert_eq!((prov.pinned, prov.fallback, prov.fallback_allowed), (n, 0, false));
    let run_json = std::fs::read_to_string(b.join("run.json")).unwrap();
    assert!(run_json.contains(&prov.sha256), "{run_json}");
    assert!(!std::fs::read_to_string(a.join("run.json")).unwrap().contains("demo_pins"));

    // The folder of a pinned run refuses an unpinned resume (and the other way round).
    let err = format!("{:#}", run(&config(&bench("demo_vqa"), &b, None)).unwrap_err());
    assert!(err.contains("different run") && err.contains("pinned demonstrations"), "{err}");
    let err = format!("{:#}", run(&config(&bench("demo_vqa"), &a, Some((&samples, false)))).unwrap_err());
    assert!(err.contains("pinned demonstrations"), "{err}");

    // One hand-pinned sample, the rest by fallback: only that sample's line changes.
    let pins = tmp.path().join("one.jsonl");
    std::fs::write(&pins, "{\"sample_id\": \"13000\", \"shot\": 4, \"trial\": 0, \"demo_ids\": [\"2001\", \"1000\", \"5002\", \"1002\"]}\n").unwrap();
    let err = format!("{:#}", run(&config(&bench("demo_vqa"), &c, Some((&pins, false)))).unwrap_err());
    assert!(err.contains(&format!("{} of the {n} evaluated", n - 1)) && err.contains("--demos-fallback"), "{err}");
    assert!(!c.join("samples.jsonl").exists());
    let s = run(&config(&bench("demo_vqa"), &c, Some((&pins, true)))).unwrap();
    let prov = s.provenance.demo_pins.as_ref().unwrap();
    assert_eq!((prov.pinned, prov.fallback), (1, n - 1));
    let got = std::fs::read_to_string(c.join("samples.jsonl")).unwrap();
    let want = String::from_utf8(want).unwrap();
    let mut changed = 0;
    for (g, w) in got.lines().zip(want.lines()) {
        let rec: serde_json::Value = serde_json::from_str(g).unwrap();
        if rec["sample_id"] == "13000" && rec["shot"] == 4 {
            assert_eq!(rec["demo_ids"], serde_json::json!(["2001", "1000", "5002", "1002"]));
            changed += 1;
        } else {
            assert_eq!(g, w);
        }
    }
    assert_eq!(changed, 1);
}

#[test]
fn hand_written_pins_give_exactly_the_prompts_they_describe() {
    let tmp = tempfile::tempdir().unwrap();
    let pins = tmp.path().join("pins.json");
    // A JSON array; integer ids and `question_id` are accepted, extra fields ignored.
    std::fs::write(
        &pins,
        r#"[
  {"question_id": 13000, "shot": 4, "trial": 0, "demo_ids": [2001, "1000", "5002", "1002"], "note": "hand-written"},
  {"query_id": "13000", "shot": 0, "text_only_demo_ids": ["3001", "2000"]}
]"#,
    )
    .unwrap();
    let out = prompts(&["--json", "--limit", "1", "--demos", pins.to_str().unwrap()], &bench("demo_vqa"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(printed.len(), 2);
    let (zero, four) = (&printed[0], &printed[1]);
    assert_eq!(zero["shot"], 0);
    assert_eq!(zero["demo_ids"], serde_json::json!([]));
    assert_eq!(zero["text_only_demo_ids"], serde_json::json!(["3001", "2000"]));
    assert_eq!(
        zero["prompt"],
        "Question:Is this a black and white photo? Short answer:no<|endofchunk|>\n\
         Question:What drink is in the cup? Short answer:coffee<|endofchunk|>\n\
         <image>Question:What is the man riding? Short answer:"
    );
    assert_eq!(four["demo_ids"], serde_json::json!(["2001", "1000", "5002", "1002"]));
    assert_eq!(
        four["prompt"],
        "<image>Question:What color is the cup? Short answer:white<|endofchunk|>\n\
         <image>Question:What is the woman wearing? Short answer:space suit<|endofchunk|>\n\
         <image>Question:Is anyone riding it? Short answer:no<|endofchunk|>\n\
         <image>Question:How many people are there? Short answer:1<|endofchunk|>\n\
         <image>Question:What is the man riding? Short answer:"
    );
    let media: Vec<String> = four["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Path::new(m["image"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        media,
        [
            "COCO_train2014_000000000002.jpg",
            "COCO_train2014_000000000001.jpg",
            "COCO_train2014_000000000005.jpg",
            "COCO_train2014_000000000001.jpg",
            "COCO_val2014_000000000013.jpg"
        ]
    );
    // The text form says the same.
    let out = prompts(&["--limit", "1", "--shots", "4", "--demos", pins.to_str().unwrap()], &bench("demo_vqa"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("demos: 2001, 1000, 5002, 1002"));
    // Beyond the file's coverage: an error, or the benchmark's selection with a note saying how many.
    let out = prompts(&["--limit", "2", "--demos", pins.to_str().unwrap()], &bench("demo_vqa"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 of the 4 evaluated"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = prompts(&["--json", "--limit", "2", "--demos-fallback", "--demos", pins.to_str().unwrap()], &bench("demo_vqa"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 of 4 evaluated (sample, shot, trial) are not in the file"));
    let plain = prompts(&["--json", "--limit", "2"], &bench("demo_vqa"));
    let (pinned, plain) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&plain.stdout).into_owned());
    let (p, q): (Vec<&str>, Vec<&str>) = (pinned.lines().collect(), plain.lines().collect());
    assert_eq!((p[1], p[3]), (q[1], q[3]), "uncovered samples get the benchmark's own selection");
}

#[test]
fn pinned_rices_benchmark_needs_no_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let root = repo();
    let text = std::fs::read_to_string(bench("demo_vqa"))
        .unwrap()
        .replace("../prompts/", &format!("{}/prompts/", root.display()))
        .replace("../data/", &format!("{}/data/", root.display()))
        .replace("demo_selection:\n  method: random", &format!("cache_dir: {}/cache\ndemo_selection:\n  method: rices", tmp.path().display()));
    let b = tmp.path().join("rices.yaml");
    std::fs::write(&b, text).unwrap();
    let pins = tmp.path().join("pins.jsonl");
    std::fs::write(&pins, "{\"sample_id\": \"13000\", \"shot\": 4, \"demo_ids\": [\"2001\", \"1000\", \"5002\", \"1002\"]}\n").unwrap();
    let out = prompts(&["--json", "--limit", "1", "--shots", "4", "--demos", pins.to_str().unwrap()], &b);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""demo_ids":["2001","1000","5002","1002"]"#));
    // Falling back to RICES does need them.
    let out = prompts(&["--limit", "2", "--shots", "4", "--demos-fallback", "--demos", pins.to_str().unwrap()], &b);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn invalid_pins_are_refused_before_any_model_work() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("{\"sample_id\": \"99\", \"shot\": 4, \"demo_ids\": [\"1000\", \"1001\", \"1002\", \"2000\"]}", "line 1: query sample `99` is not in the query split"),
        (
            "{\"sample_id\": \"13000\", \"shot\": 0, \"text_only_demo_ids\": [\"1000\", \"1001\"]}\n{\"sample_id\": \"13000\", \"shot\": 4, \"demo_ids\": [\"1000\", \"77\", \"1002\", \"2000\"]}",
            "line 2: sample `13000`, shot 4, trial 0: demonstration `77` is not in the demonstration split",
        ),
        ("{\"sample_id\": \"13000\", \"shot\": 4, \"demo_ids\": [\"1000\", \"1001\", \"1002\"]}", "shot is 4 but demo_ids lists 3 demonstration(s)"),
        ("{\"sample_id\": \"13000\", \"shot\": 0, \"text_only_demo_ids\": [\"1000\"]}", "uses 2 text-only demonstration(s) but text_only_demo_ids lists 1"),
        ("{\"sample_id\": \"13000\", \"shot\": 0, \"demo_ids\": [\"1000\", \"1001\"]}", "a zero-shot record has no demo_ids"),
        ("{\"sample_id\": \"13000\", \"shot\": 2, \"demo_ids\": [\"1000\", \"1001\"], \"text_only_demo_ids\": [\"2000\"]}", "text_only_demo_ids are only for zero-shot records"),
        ("{\"sample_id\": \"13000\", \"shot\": 4, \"trial\": 3, \"demo_ids\": [\"1000\", \"1001\", \"1002\", \"2000\"]}", "trial 3 does not exist"),
        (
            "{\"sample_id\": \"13000\", \"shot\": 2, \"demo_ids\": [\"1000\", \"1001\"]}\n\n{\"sample_id\": 13000, \"shot\": 2, \"demo_ids\": [\"1000\", \"1001\"]}",
            "line 3: sample `13000`, shot 2, trial 0 is pinned twice (first at line 1)",
        ),
        ("{\"sample_id\": \"13000\", \"shot\": 2, \"demo_ids\": [\"1000\", \"1000\"]}", "demonstration `1000` is listed twice"),
        ("{\"sample_id\": \"13000\", \"shot\": 2", "line 1: not a JSON record"),
        ("[{\"sample_id\": \"13000\"}]", "record 1: missing `shot`"),
        // Valid, but covers 1 of the 24 evaluated (sample, shot, trial).
        ("{\"sample_id\": \"13000\", \"shot\": 4, \"demo_ids\": [\"1000\", \"1001\", \"1002\", \"2000\"]}", "does not pin the demonstrations of 23 of the 24 evaluated"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let pins = tmp.path().join(format!("pins{i}.jsonl"));
        std::fs::write(&pins, text).unwrap();
        let out = tmp.path().join(format!("out{i}"));
        // A model directory that does not exist: the pins error must come first.
        let mut c = config(&bench("demo_vqa"), &out, Some((&pins, false)));
        c.model_dir = tmp.path().join("no-such-model");
        let err = format!("{:#}", run(&c).unwrap_err());
        assert!(err.contains(want) && err.contains(pins.to_str().unwrap()), "case {i}: {err}");
        assert!(!out.join("samples.jsonl").exists() && !out.join("run.json").exists(), "case {i}");
    }
    // The CLI: --demos-fallback needs --demos; a missing file is named.
    let out = prompts(&["--demos-fallback"], &bench("demo_vqa"));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--demos"));
    let out = prompts(&["--demos", "/no/such/pins.jsonl"], &bench("demo_vqa"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/pins.jsonl"));
}
