//! `flamingo-eval report`: one Markdown report (`report.md`), the same as a self-contained HTML page
//! (`report.html`) and a shot-scaling plot per benchmark (`shot_scaling_<benchmark>.svg` / `.png`) for one
//! or several results folders. Runs of the same benchmark share a plot; published numbers that match a run
//! (results/reference/*.yaml) are put beside it, with the difference.

use crate::report::document::{Block, Document};
use crate::report::plot::{self, Series};
use crate::report::reference::{self, ReferenceTable};
use crate::report::samples;
use crate::report::{discover_runs, fmt_num, write_atomic, RunFolder};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct ReportOptions {
    /// Where report.md, report.html and the plots go.
    pub out: PathBuf,
    /// Folder of published tables (results/reference).
    pub references: PathBuf,
    /// The sample browser (samples.html and report_samples/).
    pub samples: SamplesMode,
}

/// Whether `report` writes the sample browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplesMode {
    /// When the runs hold at most [`samples::DEFAULT_MAX_RECORDS`] records in all.
    #[default]
    Auto,
    On,
    Off,
}

pub struct ReportOutcome {
    pub files: Vec<PathBuf>,
    pub markdown: String,
    /// The sample browser, when written.
    pub browser: Option<samples::BrowserOutcome>,
    /// Lines for the user (why the browser was not written, media not found).
    pub notes: Vec<String>,
}

fn ci_text(ci: Option<crate::report::Interval>) -> String {
    match ci {
        Some(c) => format!("[{}, {}]", fmt_num(Some(c.low), 2), fmt_num(Some(c.high), 2)),
        None => "–".into(),
    }
}

fn file_stem(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Per-class accuracy of the predicted class (classification metrics), per shot: class -> (correct, n).
fn per_class(run: &RunFolder) -> Result<BTreeMap<usize, BTreeMap<String, (usize, usize)>>> {
    let mut out: BTreeMap<usize, BTreeMap<String, (usize, usize)>> = BTreeMap::new();
    if !run.samples_path().is_file() {
        return Ok(out); // no per-sample records kept: no per-class table
    }
    for r in run.records()?.iter().filter(|r| r.error.is_none()) {
        let Some(name) = r.target["name"].as_str() else { continue };
        let e = out.entry(r.shot).or_default().entry(name.to_string()).or_default();
        e.1 += 1;
        if r.prediction.as_deref() == Some(name) {
            e.0 += 1;
        }
    }
    Ok(out)
}

fn run_section(doc: &mut Document, run: &RunFolder, tables: &[ReferenceTable]) -> Result<()> {
    let s = &run.summary;
    doc.push(Block::Heading(3, format!("{} — `{}`", s.model, run.dir.display())));
    doc.push(Block::Paragraph(format!("Metric: {}.", s.metric)));
    let mut rows = Vec::new();
    for r in &s.results {
        let per_trial: Vec<String> = r.trials.iter().map(|t| fmt_num(t.value, 2)).collect();
        rows.push(vec![
            r.shot.to_string(),
            format!("{} ± {}", fmt_num(r.mean, 2), fmt_num(r.std, 2)),
            ci_text(r.ci),
            r.trials.len().to_string(),
            per_trial.join(" / "),
            r.n.to_string(),
            r.errors.to_string(),
        ]);
    }
    doc.push(Block::Table(
        ["shots", "mean ± std (over trials)", "95% CI", "trials", "per trial", "n", "errors"].map(String::from).to_vec(),
        rows,
    ));

    // Per answer type (VQA): mean over trials.
    let mut types: Vec<String> = s.results.iter().flat_map(|r| r.trials.iter().flat_map(|t| t.per_answer_type.keys().cloned())).collect();
    types.sort();
    types.dedup();
    if !types.is_empty() {
        let rows = s
            .results
            .iter()
            .map(|r| {
                let mut row = vec![r.shot.to_string()];
                for ty in &types {
                    let v: Vec<f64> = r.trials.iter().filter_map(|t| t.per_answer_type.get(ty).copied()).collect();
                    row.push(if v.is_empty() { "–".into() } else { fmt_num(Some(v.iter().sum::<f64>() / v.len() as f64), 2) });
                }
                row
            })
            .collect();
        doc.push(Block::Paragraph("Per answer type (mean over trials):".into()));
        doc.push(Block::Table(std::iter::once("shots".to_string()).chain(types.iter().cloned()).collect(), rows));
    }
    if matches!(s.metric_key.as_str(), "roc_auc" | "top_k_accuracy") {
        let pc = per_class(run)?;
        let mut classes: Vec<String> = pc.values().flat_map(|m| m.keys().cloned()).collect();
        classes.sort();
        classes.dedup();
        if !classes.is_empty() && classes.len() <= 30 {
            let rows = pc
                .iter()
                .map(|(shot, m)| {
                    let mut row = vec![shot.to_string()];
                    for c in &classes {
                        row.push(match m.get(c) {
                            Some((k, n)) if *n > 0 => format!("{:.2} (n={n})", 100.0 * *k as f64 / *n as f64),
                            _ => "–".into(),
                        });
                    }
                    row
                })
                .collect();
            doc.push(Block::Paragraph("Per class: accuracy ×100 of the predicted (top-1) class, all trials pooled:".into()));
            doc.push(Block::Table(std::iter::once("shots".to_string()).chain(classes.iter().cloned()).collect(), rows));
        }
    }

    let source = run.model_source();
    let matched = reference::matches(tables, &s.benchmark, &s.metric_key, source.as_ref().map(|x| &x.0));
    let named = reference::named_like(tables, &s.benchmark, &s.metric_key, &s.model);
    if matched.is_empty() && !named.is_empty() {
        doc.push(Block::Paragraph(format!(
            "Published rows named like this model ({}) are not shown: published numbers are put beside a run only when the model's source identity matches (exporter preset with weights from a checkpoint file, or the published checkpoint's SHA-256); this model's is {}.",
            named.iter().map(|r| r.model.as_str()).collect::<Vec<_>>().join(", "),
            match &source {
                Some((src, _)) => format!("checkpoint `{}`, preset {}", src.checkpoint_sha256, src.preset.as_deref().map(|p| format!("`{p}`")).unwrap_or_else(|| "none".into())),
                None => "not recorded (a results folder of an older version whose model folder is gone or changed)".into(),
            }
        )));
    }
    for m in matched {
        let rows: Vec<Vec<String>> = s
            .results
            .iter()
            .filter_map(|r| {
                let p = m.value_at(r.shot)?;
                let mean = r.mean.filter(|v| v.is_finite());
                Some(vec![
                    r.shot.to_string(),
                    fmt_num(mean, 2),
                    format!("{p:.1}"),
                    mean.map(|v| format!("{:+.2}", v - p)).unwrap_or_else(|| "–".into()),
                ])
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        doc.push(Block::Paragraph(format!(
            "Published: {} ({}; split: {}; demonstrations: {}{}). Source file: `{}`; {} (read from {}).",
            m.row.model,
            m.table.source,
            m.row.split,
            m.table.demo_selection,
            m.table.trials.as_ref().map(|t| format!("; {t}")).unwrap_or_default(),
            m.table.file.display(),
            m.how,
            source.as_ref().map(|x| x.1).unwrap_or("?")
        )));
        doc.push(Block::Table(
            vec!["shots".into(), "this run".into(), format!("published ({})", m.row.model), "difference".into()],
            rows,
        ));
    }

    let p = &s.provenance;
    let get = |k: &str| run.provenance_str(k).unwrap_or_else(|| "–".into());
    let id = &run.identity;
    let mut prov = vec![
        format!("harness {} at commit `{}`", get("harness_version"), get("git_commit")),
        format!("model `{}` from `{}` (model.yaml sha256 `{}`)", id.model_name, get("model_dir"), id.model_manifest_sha256),
        format!("benchmark `{}` from `{}` (sha256 `{}`; template sha256 `{}`)", id.benchmark_name, get("benchmark_file"), id.benchmark_sha256, id.template_sha256),
        format!(
            "shots {:?}, trial seeds {:?}, limit {}",
            id.shots,
            id.trial_seeds,
            id.limit.map(|l| l.to_string()).unwrap_or_else(|| "none".into())
        ),
        format!("ONNX Runtime `{}`; providers: {}", get("onnxruntime_library"), p["providers"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()),
        format!("threads {}, batch size {}, bootstrap {}", get("intra_op_threads"), get("batch_size"), p["bootstrap"]),
        format!(
            "{} sample(s) evaluated ({} resumed) in {} s ({}% inside ONNX Runtime)",
            get("samples_evaluated_this_invocation"),
            get("samples_resumed"),
            p["times"]["total_s"],
            fmt_num(p["times"]["ort_share"].as_f64().map(|v| 100.0 * v), 0)
        ),
    ];
    if run.dir.join("merge.json").is_file() {
        prov.push("merged from shards (see merge.json)".into());
    }
    if !s.skipped_records.is_empty() {
        prov.push(format!("{} skipped record message(s) (summary.json `skipped_records`)", s.skipped_records.len()));
    }
    doc.push(Block::Paragraph("Provenance:".into()));
    doc.push(Block::List(prov));
    Ok(())
}

/// Writes the report of the runs under `dirs` into `opts.out`.
pub fn report(dirs: &[PathBuf], opts: &ReportOptions) -> Result<ReportOutcome> {
    let mut runs = Vec::new();
    for d in dirs {
        runs.extend(discover_runs(d)?);
    }
    let tables = reference::load_dir(&opts.references)?;
    let mut benchmarks: Vec<String> = Vec::new();
    for r in &runs {
        if !benchmarks.contains(&r.summary.benchmark) {
            benchmarks.push(r.summary.benchmark.clone());
        }
    }
    let mut doc = Document { title: "flamingo-eval report".into(), blocks: vec![] };
    doc.push(Block::Paragraph(format!(
        "{} run(s) on {} benchmark(s): {}. Values are ×100; mean ± population std over trials; the 95% CI is a seeded bootstrap over samples (resampled jointly across trials).",
        runs.len(),
        benchmarks.len(),
        runs.iter().map(|r| format!("`{}`", r.dir.display())).collect::<Vec<_>>().join(", ")
    )));
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let n_records: usize = runs.iter().map(|r| r.summary.results.iter().map(|x| x.n + x.errors).sum::<usize>()).sum();
    let write_browser = match opts.samples {
        SamplesMode::On => true,
        SamplesMode::Off => false,
        SamplesMode::Auto => {
            if n_records > samples::DEFAULT_MAX_RECORDS {
                notes.push(format!(
                    "sample browser not written: {n_records} records > {} (the default limit); pass --samples to write it anyway",
                    samples::DEFAULT_MAX_RECORDS
                ));
            }
            n_records <= samples::DEFAULT_MAX_RECORDS
        }
    };
    let browser = if write_browser {
        let refs: Vec<&RunFolder> = runs.iter().collect();
        let b = samples::write_browser(&refs, &opts.out)?;
        if !b.missing_media.is_empty() {
            notes.push(format!(
                "sample browser: {} media file(s) not found or not decodable (shown as placeholders), e.g. {} (paths are relative to the folder the run was started in: run report from there)",
                b.missing_media.len(),
                b.missing_media[0]
            ));
        }
        for d in &b.without_records {
            notes.push(format!("sample browser: {d} has no samples.jsonl: its run is listed with no records"));
        }
        let changed = if b.comparisons > 0 {
            format!(" Changed between runs of one benchmark: {} sample(s), side by side at `samples.html#changed`.", b.changed)
        } else {
            String::new()
        };
        doc.push(Block::Link {
            text: format!("Sample browser ({} records: images, prompts, predictions, references, scores, errors; filters and search).{changed}", b.records),
            label: "samples.html".into(),
            href: "samples.html".into(),
        });
        Some(b)
    } else {
        None
    };
    for b in &benchmarks {
        let group: Vec<&RunFolder> = runs.iter().filter(|r| &r.summary.benchmark == b).collect();
        doc.push(Block::Heading(2, b.clone()));
        // Overview: one row per run, one column per shot count.
        if group.len() > 1 {
            let mut shots: Vec<usize> = group.iter().flat_map(|r| r.summary.results.iter().map(|x| x.shot)).collect();
            shots.sort_unstable();
            shots.dedup();
            let rows = group
                .iter()
                .map(|r| {
                    let mut row = vec![format!("{} (`{}`)", r.summary.model, r.dir.display())];
                    for s in &shots {
                        row.push(r.summary.results.iter().find(|x| x.shot == *s).map(|x| format!("{} ± {}", fmt_num(x.mean, 2), fmt_num(x.std, 2))).unwrap_or_else(|| "–".into()));
                    }
                    row
                })
                .collect();
            doc.push(Block::Table(std::iter::once("run".to_string()).chain(shots.iter().map(|s| format!("{s} shots"))).collect(), rows));
        }
        let mut series = Vec::new();
        for r in &group {
            series.push(Series {
                label: if group.len() > 1 { format!("{} ({})", r.summary.model, short_path(&r.dir)) } else { r.summary.model.clone() },
                points: r.summary.results.iter().filter_map(|x| Some((x.shot, x.mean?, x.ci.map(|c| (c.low, c.high))))).collect(),
                published: false,
            });
        }
        let mut seen_pub = Vec::new();
        for r in &group {
            let source = r.model_source();
            for m in reference::matches(&tables, b, &r.summary.metric_key, source.as_ref().map(|x| &x.0)) {
                let key = (m.table.file.clone(), m.row.model.clone());
                if seen_pub.contains(&key) {
                    continue;
                }
                seen_pub.push(key);
                series.push(Series {
                    label: format!("{} (published, {})", m.row.model, m.row.split),
                    points: m.table.shots.iter().zip(&m.row.values).filter_map(|(&s, v)| v.map(|v| (s, v, None))).collect(),
                    published: true,
                });
            }
        }
        let metric_key = group[0].summary.metric_key.clone();
        // An unannotated split (no metric) with no published row has nothing to plot; its tables still follow.
        if series.iter().any(|s| !s.points.is_empty()) {
            let stem = format!("shot_scaling_{}", file_stem(b));
            let title = format!("{b}: {metric_key} vs shots");
            let y = Some(plot::y_range(&metric_key, &series));
            let svg = plot::svg(&title, &format!("{metric_key} ×100"), &series, y)?;
            let png = plot::png(&title, &format!("{metric_key} ×100"), &series, y)?;
            let published_drawn = series.iter().any(|s| s.published && !s.points.is_empty());
            let (svg_path, png_path) = (opts.out.join(format!("{stem}.svg")), opts.out.join(format!("{stem}.png")));
            write_atomic(&svg_path, svg.as_bytes())?;
            write_atomic(&png_path, &png)?;
            files.push(svg_path);
            files.push(png_path);
            doc.push(Block::Figure {
                file: format!("{stem}.svg"),
                png: format!("{stem}.png"),
                svg,
                caption: format!(
                    "{b}: {metric_key} ×100 against shot count (bars: 95% CI{})",
                    if published_drawn { "; dashed: published" } else { "" }
                ),
            });
        }
        for r in &group {
            run_section(&mut doc, r, &tables)?;
            if browser.is_some() {
                // The browser lists the runs in this order (runs[k] is its run k).
                let k = runs.iter().position(|x| std::ptr::eq(x, *r)).expect("a run of this report");
                let errors: usize = r.summary.results.iter().map(|x| x.errors).sum();
                doc.push(Block::Link {
                    text: format!("This run's samples ({errors} failed):"),
                    label: "incorrect or failed samples".into(),
                    href: format!("samples.html#run={k}&status=ie"),
                });
            }
        }
    }
    let md = doc.markdown();
    let md_path = opts.out.join("report.md");
    let html_path = opts.out.join("report.html");
    write_atomic(&md_path, md.as_bytes())?;
    write_atomic(&html_path, doc.html().as_bytes())?;
    files.insert(0, html_path);
    files.insert(0, md_path);
    if let Some(b) = &browser {
        files.push(b.page.clone());
    }
    Ok(ReportOutcome { files, markdown: md, browser, notes })
}

/// The last two components of a results folder (enough to tell runs apart in a legend).
fn short_path(p: &std::path::Path) -> String {
    let parts: Vec<String> = p.components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
    parts[parts.len().saturating_sub(2)..].join("/")
}

/// The default output folder: the results folder itself for one folder.
pub fn default_out(dirs: &[PathBuf]) -> Option<PathBuf> {
    match dirs {
        [one] => Some(one.clone()),
        _ => None,
    }
}

