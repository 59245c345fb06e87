//! `report` on the committed demo baseline: the numbers in the Markdown, published rows put beside a run only
//! when the model's source identity matches (never by name), valid SVG and PNG plots with the y-axis of the
//! metric, and the HTML page rendered by headless Chromium (Debian's package) into a non-blank screenshot.

mod common;

use common::repo;
use flamingo_eval::report::plot::{y_range, Series};
use flamingo_eval::report::render::{report, ReportOptions, SamplesMode};
use std::path::{Path, PathBuf};
use std::process::Command;

fn render_dir(dir: &Path, out: &Path, refs: &Path) -> String {
    let o = report(&[dir.to_path_buf()], &ReportOptions { out: out.to_path_buf(), references: refs.to_path_buf(), samples: SamplesMode::Off }).unwrap();
    assert_eq!(o.files.len(), 2 + 2 * 3);
    assert!(o.browser.is_none());
    std::fs::read_to_string(out.join("report.md")).unwrap()
}

fn render(out: &Path, refs: &Path) -> String {
    render_dir(&repo().join("tests/fixtures/results/tiny-gptneox-demo"), out, refs)
}

/// A copy of the demo results with `benchmark` / `model` renamed in one run's summary and the model's source
/// identity recorded as `run` records it (provenance.model_source).
fn demo_copy(root: &Path, run: &str, benchmark: &str, model: &str, source: serde_json::Value) -> PathBuf {
    let dir = root.join("results");
    for b in ["demo_vqa", "demo_coco", "demo_hateful"] {
        let from = repo().join("tests/fixtures/results/tiny-gptneox-demo").join(b);
        std::fs::create_dir_all(dir.join(b)).unwrap();
        for f in ["run.json", "samples.jsonl", "summary.json", "summary.csv"] {
            std::fs::copy(from.join(f), dir.join(b).join(f)).unwrap();
        }
    }
    let p = dir.join(run).join("summary.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["benchmark"] = benchmark.into();
    v["model"] = model.into();
    v["provenance"]["model_source"] = source;
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    dir
}

#[test]
fn published_rows_are_matched_by_source_identity_never_by_name() {
    let t = tempfile::tempdir().unwrap();
    let refs = repo().join("results/reference");
    let hash = "ab".repeat(32);
    // A random-initialised model named like the paper's model: the shipped OpenFlamingo-3B COCO row is not shown.
    let random = demo_copy(&t.path().join("a"), "demo_coco", "coco", "OpenFlamingo-3B", serde_json::json!({"checkpoint_sha256": "random-init:0"}));
    let md = render_dir(&random, &t.path().join("out_a"), &refs);
    assert!(!md.contains("Published:"), "{md}");
    assert!(md.contains("Published rows named like this model (OpenFlamingo-3B) are not shown"), "{md}");
    assert!(!md.contains("dashed: published"), "no published line drawn, no legend for one: {md}");
    // A random model of the published structure exported through the preset: still not the published model.
    let structure = demo_copy(
        &t.path().join("b"),
        "demo_coco",
        "coco",
        "OpenFlamingo-3B",
        serde_json::json!({"checkpoint_sha256": "published-structure:OpenFlamingo-3B-vitl-mpt1b:seed 0", "preset": "OpenFlamingo-3B-vitl-mpt1b"}),
    );
    assert!(!render_dir(&structure, &t.path().join("out_b"), &refs).contains("Published:"));
    // The preset with weights read from a checkpoint file, whatever the display name: shown, with how it matched.
    let real = demo_copy(&t.path().join("c"), "demo_coco", "coco", "my-export", serde_json::json!({"checkpoint_sha256": hash, "preset": "OpenFlamingo-3B-vitl-mpt1b"}));
    let md = render_dir(&real, &t.path().join("out_c"), &refs);
    assert!(md.contains("Published: OpenFlamingo-3B (OpenFlamingo: An Open-Source Framework"), "{md}");
    assert!(md.contains("matched by exporter preset `OpenFlamingo-3B-vitl-mpt1b`"), "{md}");
    assert!(md.contains("| 0 | ") && md.contains(" | 74.9 | "), "{md}");
    assert!(md.contains("dashed: published"), "{md}");
    // Another preset's export is not put beside the 3B row; a row listing the checkpoint's hash matches by it.
    let other = demo_copy(&t.path().join("d"), "demo_coco", "coco", "OpenFlamingo-3B", serde_json::json!({"checkpoint_sha256": hash, "preset": "OpenFlamingo-9B-vitl-mpt7b"}));
    let md = render_dir(&other, &t.path().join("out_d"), &refs);
    assert!(md.contains("Published: OpenFlamingo-9B (") && !md.contains("Published: OpenFlamingo-3B ("), "{md}");
}

#[test]
fn y_axis_is_the_metrics_scale() {
    let s = |pts: &[f64]| vec![Series { label: "x".into(), points: pts.iter().enumerate().map(|(i, &v)| (i, v, None)).collect(), published: false }];
    assert_eq!(y_range("vqa_accuracy", &s(&[0.3, 2.0])), (0.0, 100.0));
    assert_eq!(y_range("roc_auc", &s(&[48.0, 52.0])), (0.0, 100.0));
    assert_eq!(y_range("cider", &s(&[3.0, 9.0])), (0.0, 100.0));
    assert_eq!(y_range("cider", &s(&[80.0, 113.8])), (0.0, 120.0));
}

#[test]
fn markdown_has_the_summary_numbers_and_published_rows() {
    let t = tempfile::tempdir().unwrap();
    let refs = t.path().join("refs");
    std::fs::create_dir_all(&refs).unwrap();
    let hash = "cd".repeat(32);
    std::fs::write(
        refs.join("paper.yaml"),
        format!("source: \"A test table\"\ndemo_selection: random\nshots: [0, 4, 8]\nrows:\n  - {{benchmark: demo_hateful, model: Tiny-GPTNeoX, checkpoint_sha256: [\"{hash}\"], split: test seen, metric: roc_auc, values: [20.0, 55.5, 60.0]}}\n"),
    )
    .unwrap();
    // By name alone (the fixture records no source identity) the row is not shown.
    assert!(!render(&t.path().join("out0"), &refs).contains("Published:"));
    let dir = demo_copy(&t.path().join("copy"), "demo_hateful", "demo_hateful", "tiny-gptneox", serde_json::json!({"checkpoint_sha256": hash}));
    let md = render_dir(&dir, &t.path().join("out"), &refs);
    assert!(md.contains("matched by checkpoint sha256"), "{md}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/results/tiny-gptneox-demo/demo_hateful/summary.json")).unwrap()).unwrap();
    for r in summary["results"].as_array().unwrap() {
        let row = format!("| {} | {:.2} ± {:.2} |", r["shot"], r["mean"].as_f64().unwrap(), r["std"].as_f64().unwrap());
        assert!(md.contains(&row), "missing {row} in\n{md}");
    }
    // demo_hateful: 25.00 at 0 shots, 50.00 at 4 shots; published 20.0 and 55.5 → differences +5.00 and -5.50.
    assert!(md.contains("| 0 | 25.00 | 20.0 | +5.00 |"), "{md}");
    assert!(md.contains("| 4 | 50.00 | 55.5 | -5.50 |"), "{md}");
    assert!(md.contains("Published: Tiny-GPTNeoX (A test table; split: test seen"), "{md}");
    // VQA answer types, provenance.
    assert!(md.contains("Per answer type"));
    assert!(md.contains("| shots | number | other | yes/no |"), "{md}");
    assert!(md.contains("model `tiny-gptneox`"));
    // The shipped tables parse, and the demo runs match none of them.
    let md2 = render(&t.path().join("out2"), &repo().join("results/reference"));
    assert!(!md2.contains("Published:"));
}

#[test]
fn plots_are_valid_svg_and_png() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    render(&out, &repo().join("results/reference"));
    for b in ["demo_vqa", "demo_coco", "demo_hateful"] {
        let svg = std::fs::read_to_string(out.join(format!("shot_scaling_{b}.svg"))).unwrap();
        assert!(svg.trim_start().starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..100]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(b), "title missing");
        if Command::new("xmllint").arg("--version").output().is_ok() {
            let v = Command::new("xmllint").args(["--noout", out.join(format!("shot_scaling_{b}.svg")).to_str().unwrap()]).output().unwrap();
            assert!(v.status.success(), "SVG is not well-formed XML: {}", String::from_utf8_lossy(&v.stderr));
        }
        let f = std::fs::File::open(out.join(format!("shot_scaling_{b}.png"))).unwrap();
        let mut r = png::Decoder::new(std::io::BufReader::new(f)).read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (900, 540));
        // Drawn: not a single colour.
        let first = &buf[..3];
        assert!(buf.chunks(3).any(|p| p != first));
    }
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().map(|o| o.status.success()).unwrap_or(false))
        .map(String::from)
}

#[test]
fn html_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED html_page_renders_in_headless_chromium: chromium is not installed (apt-get install chromium; scripts/test.sh installs it)");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    render(&out, &repo().join("results/reference"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("src=\"http"), "the page must be self-contained");
    let shot = t.path().join("screenshot.png");
    let profile = t.path().join("profile");
    let o = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--window-size=1200,1600",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", out.join("report.html").display()),
        ])
        .output()
        .unwrap();
    assert!(shot.is_file(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&o.stderr));
    let (width, height, px) = common::screenshot_pixels(&shot);
    assert_eq!((width, height), (1200, 1600));
    // The page drew text, tables and the plot: many non-white pixels, in more than a few colours.
    let non_white = px.iter().filter(|p| p.iter().any(|&c| c < 200)).count();
    assert!(non_white > px.len() / 100, "screenshot looks blank ({non_white} dark pixels)");
    let colours = common::distinct_colours(&px);
    assert!(colours > 20, "only {colours} colours");
}

/// Results folders of older versions record no `model_source`: the report reads it from the model folder's
/// model.yaml, but only while that file is the one the run used (its SHA-256 is run.json's). The runtime reads
/// a manifest with `source.preset`.
#[test]
fn older_folders_take_the_identity_from_the_very_model_yaml_the_run_used() {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let text = std::fs::read_to_string(repo().join("tests/fixtures/models/tiny-gptneox/model.yaml")).unwrap();
    let text = text.replace(
        "  checkpoint_sha256: \"random-init:0\"\n",
        &format!("  checkpoint_sha256: \"{}\"\n  preset: OpenFlamingo-3B-vitl-mpt1b\n", "ef".repeat(32)),
    );
    assert!(text.contains("preset: OpenFlamingo-3B-vitl-mpt1b"));
    std::fs::write(model.join("model.yaml"), &text).unwrap();
    let m = flamingo_eval::model::manifest::Manifest::load(&model).unwrap();
    assert_eq!(m.source.preset.as_deref(), Some("OpenFlamingo-3B-vitl-mpt1b"));
    let sha = flamingo_eval::hashing::sha256_file_hex(&model.join("model.yaml")).unwrap();
    let setup = |root: &Path, manifest_sha: &str| {
        let dir = demo_copy(root, "demo_coco", "coco", "whatever", serde_json::Value::Null);
        let s = dir.join("demo_coco/summary.json");
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&s).unwrap()).unwrap();
        v["provenance"].as_object_mut().unwrap().remove("model_source");
        v["provenance"]["model_dir"] = model.display().to_string().into();
        std::fs::write(&s, serde_json::to_string(&v).unwrap()).unwrap();
        let r = dir.join("demo_coco/run.json");
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
        v["model_manifest_sha256"] = manifest_sha.into();
        std::fs::write(&r, serde_json::to_string(&v).unwrap()).unwrap();
        dir
    };
    let md = render_dir(&setup(&t.path().join("same"), &sha), &t.path().join("out_same"), &repo().join("results/reference"));
    assert!(md.contains("Published: OpenFlamingo-3B (") && md.contains("the model folder's model.yaml"), "{md}");
    let md = render_dir(&setup(&t.path().join("changed"), &"0".repeat(64)), &t.path().join("out_changed"), &repo().join("results/reference"));
    assert!(!md.contains("Published:"), "{md}");
}
