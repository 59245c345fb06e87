//! `report` on the committed demo baseline: the numbers in the Markdown, published rows put beside a
//! matching run, valid SVG and PNG plots, and the HTML page rendered by headless Chromium (Debian's package)
//! into a non-blank screenshot.

mod common;

use common::repo;
use flamingo_eval::report::render::{report, ReportOptions};
use std::path::Path;
use std::process::Command;

fn render(out: &Path, refs: &Path) -> String {
    let o = report(&[repo().join("tests/fixtures/results/tiny-gptneox-demo")], &ReportOptions { out: out.to_path_buf(), references: refs.to_path_buf() }).unwrap();
    assert_eq!(o.files.len(), 2 + 2 * 3);
    std::fs::read_to_string(out.join("report.md")).unwrap()
}

#[test]
fn markdown_has_the_summary_numbers_and_published_rows() {
    let t = tempfile::tempdir().unwrap();
    let refs = t.path().join("refs");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(
        refs.join("paper.yaml"),
        "source: \"A test table\"\ndemo_selection: random\nshots: [0, 4, 8]\nrows:\n  - {benchmark: demo_hateful, model: Tiny-GPTNeoX, split: test seen, metric: roc_auc, values: [20.0, 55.5, 60.0]}\n",
    )
    .unwrap();
    let md = render(&t.path().join("out"), &refs);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/results/tiny-gptneox-demo/demo_hateful/summary.json")).unwrap()).unwrap();
    for r in summary["results"].as_array().unwrap() {
        let row = format!("| {} | {:.2} ± {:.2} |", r["shot"], r["mean"].as_f64().unwrap(), r["std"].as_f64().unwrap());
        assert!(md.contains(&row), "missing {row} in\n{md}");
    }
    // demo_hateful: 25.00 at 0 shots, 50.00 at 4 shots; published 20.0 and 55.5 → differences +5.00 and -5.50.
    assert!(md.contains("| 0 | 25.00 | 20.0 | +5.00 |"), "{md}");
    assert!(md.contains("| 4 | 50.00 | 55.5 | -5.50 |"), "{md}");
    assert!(md.contains("Published: Tiny-GPTNeoX (A test table; split: test seen"));
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
    let f = std::fs::File::open(&shot).unwrap();
    let mut r = png::Decoder::new(std::io::BufReader::new(f)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1600));
    // The page drew text, tables and the plot: many non-white pixels, in more than a few colours.
    let bpp = info.line_size / info.width as usize;
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(bpp).collect();
    let non_white = px.iter().filter(|p| p[..3].iter().any(|&c| c < 200)).count();
    assert!(non_white > px.len() / 100, "screenshot looks blank ({non_white} dark pixels)");
    let mut colours: Vec<[u8; 3]> = px.iter().map(|p| [p[0], p[1], p[2]]).collect();
    colours.sort();
    colours.dedup();
    assert!(colours.len() > 20, "only {} colours", colours.len());
}
