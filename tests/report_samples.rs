//! The sample browser of `report` (samples.html + report_samples/), driven in headless Chromium: images load,
//! the filters, search and paging give the counts the records imply, text is escaped (a prediction holding a
//! `<script>` shows as text), the changed view pairs the two runs' samples, and screenshots are not blank.
//! Also: thumbnails are deduplicated by content, the page names no network resource, and a missing media file
//! is a placeholder naming the file.

mod common;

use common::repo;
use flamingo_eval::engine::records::{read_records, SampleRecord};
use flamingo_eval::report::render::{report, ReportOptions, SamplesMode};
use flamingo_eval::report::samples::outcome;
use std::path::{Path, PathBuf};
use std::process::Command;

const XSS: &str = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss=2\">";

/// The demo results (3 runs) plus a candidate run of demo_vqa in which 3 predictions became correct, one sample
/// failed, one prediction holds markup and one query image is missing: 5 samples changed.
fn fixture(root: &Path) -> (PathBuf, PathBuf) {
    let base = repo().join("tests/fixtures/results/tiny-gptneox-demo");
    let cand = root.join("cand/demo_vqa");
    std::fs::create_dir_all(&cand).unwrap();
    for f in ["run.json", "summary.json", "summary.csv"] {
        std::fs::copy(base.join("demo_vqa").join(f), cand.join(f)).unwrap();
    }
    let mut recs = read_records(&base.join("demo_vqa/samples.jsonl"), false).unwrap();
    for r in recs.iter_mut().take(3) {
        r.prediction = Some("skateboard".into());
        r.raw_output = Some("skateboard".into());
        r.metric = Some(1.0);
    }
    recs[3].error = Some("decode failed: <b>not bold</b>".into());
    (recs[3].raw_output, recs[3].prediction, recs[3].metric, recs[3].tokens) = (None, None, None, None);
    recs[4].prediction = Some(XSS.into());
    let last = recs[5].media.len() - 1;
    recs[5].media[last] = vec!["data/demo/images/no-such-image.jpg".into()];
    let mut text = String::new();
    for r in &recs {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    std::fs::write(cand.join("samples.jsonl"), text).unwrap();
    (base, root.join("cand"))
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().map(|o| o.status.success()).unwrap_or(false))
        .map(String::from)
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=20000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Steps the page through its filters and writes what it saw into <pre id="test-result">.
const DRIVER: &str = r#"
(function () {
  var out = {};
  function until(cond) {
    return new Promise(function (res) { (function poll() { if (cond()) res(); else setTimeout(poll, 20); })(); });
  }
  function settle() {
    return until(function () { return FE.ready; }).then(function () {
      var imgs = Array.prototype.slice.call(document.querySelectorAll('#list img'));
      return Promise.all(imgs.map(function (i) { return i.complete ? 1 : new Promise(function (r) { i.onload = i.onerror = r; }); }));
    });
  }
  function snap(name) {
    var imgs = Array.prototype.slice.call(document.querySelectorAll('#list img'));
    var cards = Array.prototype.slice.call(document.querySelectorAll('#list > .card, #list > .pair > .card'));
    out[name] = {
      matches: +document.getElementById('count').getAttribute('data-matches'),
      count_text: document.getElementById('count').textContent,
      cards: cards.length,
      pairs: document.querySelectorAll('#list > .pair').length,
      first_index: cards.length ? +cards[0].getAttribute('data-index') : -1,
      images: imgs.length,
      images_loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
      missing_placeholders: Array.prototype.slice.call(document.querySelectorAll('#list .miss')).map(function (m) { return m.textContent; }),
      scripts_in_list: document.querySelectorAll('#list script, #list b, #list img[src="x"]').length,
      list_text: document.getElementById('list').textContent,
      page_info: document.getElementById('pageinfo').textContent,
      hash: location.hash
    };
  }
  var steps = [
    ['all', {}],
    ['errors', { status: 'e' }],
    ['incorrect_4shot', { status: 'i', shot: '4' }],
    ['search', { status: '', shot: '', q: 'SKATEBOARD' }],
    ['run3', { q: '', run: '3' }],
    ['page2', { run: '', page: 1 }],
    ['xss', { run: '3', q: 'window.__xss' }],
    ['changed', { view: 'changed', run: '', q: '' }],
    ['changed_errors', { status: 'e' }],
    ['hash_nav', '#shot=4'],
    ['bench', { bench: 'demo_vqa', shot: '' }]
  ];
  until(function () { return FE.idx && FE.ready; }).then(function () {
    var chain = Promise.resolve();
    steps.forEach(function (s) {
      chain = chain.then(function () {
        if (typeof s[1] !== 'string') return FE.set(s[1]);
        // a link or the back button: the address alone sets the whole state
        var before = FE.renders;
        location.hash = s[1];
        return until(function () { return FE.renders > before; });
      }).then(settle).then(function () { snap(s[0]); });
    });
    return chain;
  }).then(function () {
    out.xss_ran = window.__xss || 0;
    out.external = Array.prototype.slice.call(document.querySelectorAll('[src],[href]')).map(function (e) { return e.getAttribute('src') || e.getAttribute('href'); }).filter(function (u) { return /^[a-z]+:\/\//i.test(u); });
  }).catch(function (e) { out.error = String(e); }).then(function () {
    var pre = document.createElement('pre');
    pre.id = 'test-result';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
"#;

fn search_hit(r: &SampleRecord, q: &str) -> bool {
    // The same fields the page searches (src/report/samples.rs search_text), ASCII query.
    let query = r.prompt.rsplit("<|endofchunk|>").next().unwrap_or(&r.prompt);
    let refs: Vec<String> = ["answers", "references"]
        .iter()
        .find_map(|k| r.target[*k].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect()))
        .or_else(|| r.target["name"].as_str().map(|s| vec![s.to_string()]))
        .unwrap_or_default();
    let s = format!(
        "{} {} {} {} {} {}",
        r.sample_id,
        query,
        r.raw_output.as_deref().unwrap_or(""),
        r.prediction.as_deref().unwrap_or(""),
        refs.join(" "),
        r.error.as_deref().unwrap_or("")
    );
    s.to_lowercase().contains(&q.to_lowercase())
}

#[test]
fn sample_browser_in_headless_chromium() {
    let t = tempfile::tempdir().unwrap();
    let (base, cand) = fixture(t.path());
    let out = t.path().join("report");
    let o = report(&[base.clone(), cand.clone()], &ReportOptions { out: out.clone(), references: repo().join("results/reference"), samples: SamplesMode::Auto })
        .unwrap();
    let b = o.browser.as_ref().expect("small runs: the browser is written by default");
    assert!(o.files.contains(&out.join("samples.html")));
    // The records, in the page's order: base runs by name, then the candidate.
    let mut all: Vec<(String, SampleRecord)> = Vec::new();
    for d in [base.join("demo_coco"), base.join("demo_hateful"), base.join("demo_vqa"), cand.join("demo_vqa")] {
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap();
        for r in read_records(&d.join("samples.jsonl"), false).unwrap() {
            all.push((s["metric_key"].as_str().unwrap().to_string(), r));
        }
    }
    assert_eq!(b.records, all.len());
    assert_eq!(b.changed, 5);
    assert_eq!(b.missing_media, vec!["data/demo/images/no-such-image.jpg".to_string()]);
    // Thumbnails: one per distinct file content.
    let mut distinct = std::collections::BTreeSet::new();
    for (_, r) in &all {
        for m in &r.media {
            if let Ok(bytes) = std::fs::read(&m[0]) {
                distinct.insert(bytes);
            }
        }
    }
    assert_eq!(b.thumbnails, distinct.len());
    assert_eq!(std::fs::read_dir(out.join("report_samples/media")).unwrap().count(), distinct.len());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("[samples.html](samples.html)") && md.contains("`samples.html#changed`"), "{md}");
    // Each run section links to its own incorrect or failed samples (the candidate is the browser's run 3).
    assert!(md.contains("[incorrect or failed samples](samples.html#run=3&status=ie)"), "{md}");
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains("href=\"samples.html#run=3&amp;status=ie\""));
    let page = std::fs::read_to_string(out.join("samples.html")).unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"), "the page names no network resource");

    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the Chromium part of sample_browser_in_headless_chromium: chromium is not installed (apt-get install chromium; scripts/test.sh installs it)");
        return;
    };
    // The page with the driver appended (same folder, so the data files resolve the same way).
    std::fs::write(out.join("driver.js"), DRIVER).unwrap();
    std::fs::write(out.join("samples_test.html"), page.replace("</body>", "<script src=\"driver.js\"></script>\n</body>")).unwrap();
    let o = Command::new(&browser)
        .args(chromium_args(&t.path().join("profile")))
        .arg("--dump-dom")
        .arg(format!("file://{}", out.join("samples_test.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let Some(start) = dom.find("<pre id=\"test-result\">") else {
        panic!("the driver reported nothing; chromium stderr:\n{}", String::from_utf8_lossy(&o.stderr));
    };
    let json = &dom[start + "<pre id=\"test-result\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let json = json.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(v.get("error").is_none(), "{v}");

    let count = |f: &dyn Fn(usize, &str, &SampleRecord) -> bool| all.iter().enumerate().filter(|(i, (k, r))| f(*i, k, r)).count() as u64;
    let n = all.len() as u64;
    assert_eq!(v["all"]["matches"], n);
    assert_eq!(v["all"]["cards"], 20);
    assert_eq!(v["all"]["page_info"], format!("page 1 of {}", n.div_ceil(20)));
    for step in ["all", "errors", "incorrect_4shot", "search", "run3", "page2", "xss", "changed"] {
        let s = &v[step];
        assert!(s["images"].as_u64().unwrap() > 0 || s["cards"] == 0, "{step}: no images on the page: {s}");
        assert_eq!(s["images"], s["images_loaded"], "{step}: an image did not load: {s}");
        assert_eq!(s["scripts_in_list"], 0, "{step}: markup from the data became elements");
    }
    assert_eq!(v["errors"]["matches"], count(&|_, k, r| outcome(k, r) == 'e'));
    assert_eq!(v["errors"]["matches"], 1);
    assert!(v["errors"]["list_text"].as_str().unwrap().contains("decode failed: <b>not bold</b>"), "{}", v["errors"]);
    assert_eq!(v["errors"]["hash"], "#status=e");
    assert_eq!(v["incorrect_4shot"]["matches"], count(&|_, k, r| outcome(k, r) == 'i' && r.shot == 4));
    let hits = count(&|_, _, r| search_hit(r, "skateboard"));
    assert!(hits > 3);
    assert_eq!(v["search"]["matches"], hits);
    assert_eq!(v["run3"]["matches"], 24);
    assert_eq!(v["run3"]["missing_placeholders"], serde_json::json!(["missing: data/demo/images/no-such-image.jpg"]));
    // Paging: the second page starts at the 21st record.
    assert_eq!(v["page2"]["first_index"], 20);
    assert_eq!(v["page2"]["page_info"], format!("page 2 of {}", n.div_ceil(20)));
    // Escaping: the markup in a prediction is text on the page and never ran.
    assert_eq!(v["xss"]["matches"], 1);
    assert!(v["xss"]["list_text"].as_str().unwrap().contains("<script>window.__xss = 1</script>"));
    assert_eq!(v["xss_ran"], 0);
    // Changed: 5 pairs side by side; the error filter keeps the one that failed.
    assert_eq!(v["changed"]["matches"], 5);
    assert_eq!(v["changed"]["pairs"], 5);
    assert_eq!(v["changed"]["cards"], 10);
    assert_eq!(v["changed"]["hash"], "#view=changed");
    assert_eq!(v["changed_errors"]["matches"], 1);
    assert_eq!(v["hash_nav"]["matches"], count(&|_, _, r| r.shot == 4), "{}", v["hash_nav"]);
    assert_eq!(v["hash_nav"]["hash"], "#shot=4");
    assert_eq!(v["bench"]["matches"], 48, "both demo_vqa runs: {}", v["bench"]);
    assert_eq!(v["external"], serde_json::json!([]), "no network resource");

    // Screenshots of three views (kept in the target folder for a look).
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_samples_screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, hash) in [("all", ""), ("errors", "#status=ie&run=3"), ("changed", "#view=changed")] {
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        let o = Command::new(&browser)
            .args(chromium_args(&t.path().join(format!("profile-{name}"))))
            .args(["--window-size=1240,1600".to_string(), format!("--screenshot={}", png.display())])
            .arg(format!("file://{}{hash}", out.join("samples.html").display()))
            .output()
            .unwrap();
        assert!(png.is_file(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&o.stderr));
        let (_, _, px) = common::screenshot_pixels(&png);
        let colours = common::distinct_colours(&px);
        // Photos on the page: thousands of colours, not a page of text alone.
        assert!(colours > 2000, "{name}: only {colours} colours");
    }
}

#[test]
fn browser_off_and_default_limit() {
    let t = tempfile::tempdir().unwrap();
    let base = repo().join("tests/fixtures/results/tiny-gptneox-demo");
    let out = t.path().join("off");
    let o = report(&[base.clone()], &ReportOptions { out: out.clone(), references: repo().join("results/reference"), samples: SamplesMode::Off }).unwrap();
    assert!(o.browser.is_none() && !out.join("samples.html").exists() && !out.join("report_samples").exists());
    assert!(!std::fs::read_to_string(out.join("report.md")).unwrap().contains("samples.html"));
    // Written again over an older browser: the old data folder is replaced whole.
    let out = t.path().join("on");
    report(&[base.clone()], &ReportOptions { out: out.clone(), references: repo().join("results/reference"), samples: SamplesMode::On }).unwrap();
    std::fs::write(out.join("report_samples/chunk_99999.js"), "stale").unwrap();
    report(&[base], &ReportOptions { out: out.clone(), references: repo().join("results/reference"), samples: SamplesMode::On }).unwrap();
    assert!(!out.join("report_samples/chunk_99999.js").exists());
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')), "no temporary left");
}

/// `compare` says where the changed samples are seen side by side.
#[test]
fn compare_points_to_the_changed_view() {
    let t = tempfile::tempdir().unwrap();
    let (base, cand) = fixture(t.path());
    let o = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"))
        .args(["compare", base.join("demo_vqa").to_str().unwrap(), cand.join("demo_vqa").to_str().unwrap(), "--resamples", "50"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("flamingo-eval report --results {} {} --out DIR --samples, then open DIR/samples.html#changed", base.join("demo_vqa").display(), cand.join("demo_vqa").display())),
        "{err}"
    );
}

/// A results folder without samples.jsonl still reports; the browser lists it with no records and says so.
#[test]
fn a_run_without_records_is_listed_empty() {
    let t = tempfile::tempdir().unwrap();
    let base = repo().join("tests/fixtures/results/tiny-gptneox-demo");
    let dir = t.path().join("runs");
    for b in ["demo_vqa", "demo_hateful"] {
        std::fs::create_dir_all(dir.join(b)).unwrap();
        for f in ["run.json", "summary.json", "samples.jsonl"] {
            if !(b == "demo_hateful" && f == "samples.jsonl") {
                std::fs::copy(base.join(b).join(f), dir.join(b).join(f)).unwrap();
            }
        }
    }
    let o = report(&[dir.clone()], &ReportOptions { out: t.path().join("out"), references: repo().join("results/reference"), samples: SamplesMode::On }).unwrap();
    let b = o.browser.unwrap();
    assert_eq!(b.records, 24);
    assert_eq!(b.without_records, vec![dir.join("demo_hateful").display().to_string()]);
    assert!(o.notes.iter().any(|n| n.contains("has no samples.jsonl")), "{:?}", o.notes);
}
