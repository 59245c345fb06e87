//! `flamingo-eval benchmarks list|validate|keys`, templates by name, and docs/benchmarks.md against the
//! parser: every key the parser accepts is documented (with every word it accepts), and every documented key
//! exists.

use flamingo_eval::benchmark::schema::benchmark_keys;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fe(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// demo_vqa.yaml written into `dir` with its data paths through `${FE_DEMO}` and its template changed by `edit`.
fn demo_copy(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let s = std::fs::read_to_string(repo().join("benchmarks/demo_vqa.yaml")).unwrap();
    let s = s.replace("../data/demo", "${FE_DEMO}").replace("../prompts/", &format!("{}/", repo().join("prompts").display()));
    let p = dir.join(name);
    std::fs::write(&p, edit(s)).unwrap();
    p
}

fn demo_env() -> (&'static str, String) {
    ("FE_DEMO", repo().join("data/demo").display().to_string())
}

#[test]
fn docs_list_every_key_the_parser_accepts_and_no_other() {
    let doc = std::fs::read_to_string(repo().join("docs/benchmarks.md")).unwrap();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    let keys = benchmark_keys();
    assert!(keys.len() > 40, "the parser has more keys than {}", keys.len());
    let mut missing = Vec::new();
    for k in &keys {
        let tag = format!("`{}`", k.path);
        // The key's row: its first cell names it.
        let Some(row) = rows.iter().find(|r| r.split('|').nth(1).is_some_and(|c| c.contains(&tag))) else {
            missing.push(format!("{} (no table row)", k.path));
            continue;
        };
        for v in &k.variants {
            if !row.contains(&format!("`{v}`")) {
                missing.push(format!("{}: value `{v}` not listed", k.path));
            }
        }
        // Type, default, example and meaning columns are all filled.
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 6 || cells[1..6].iter().any(|c| c.is_empty()) {
            missing.push(format!("{}: a column is empty", k.path));
        }
    }
    assert!(missing.is_empty(), "docs/benchmarks.md lacks:\n{}", missing.join("\n"));
    // Every key a table documents exists (a renamed or removed key must leave the doc).
    let known: Vec<&str> = keys.iter().map(|k| k.path.as_str()).collect();
    for r in &rows {
        let first = r.split('|').nth(1).unwrap_or("");
        for tok in first.split('`').skip(1).step_by(2) {
            if tok.starts_with('-') {
                continue; // the command-line overrides table
            }
            assert!(known.contains(&tok), "docs/benchmarks.md documents `{tok}`, which the parser does not accept");
        }
    }
    // The complete example parses with the strict parser.
    let start = doc.find("```yaml\n").unwrap() + 8;
    let end = start + doc[start..].find("```").unwrap();
    let spec: flamingo_eval::benchmark::BenchmarkSpec = serde_yaml::from_str(&doc[start..end]).expect("the doc's example parses");
    spec.validate().unwrap();
}

#[test]
fn keys_are_printed_from_the_parser() {
    let o = fe(&["benchmarks", "keys"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    for k in benchmark_keys() {
        assert!(t.lines().any(|l| l.split_whitespace().next() == Some(k.path.as_str())), "{} missing:\n{t}", k.path);
    }
    assert!(t.contains("task") && t.contains("generate | rank"), "{t}");
}

#[test]
fn list_shows_name_task_metric_layout_and_env_vars() {
    let o = fe(&["benchmarks", "list"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    let row = |name: &str| t.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name}:\n{t}")).to_string();
    let vqa = row("vqav2");
    for w in ["generate", "vqa_accuracy", "vqa", "vqav2.yaml", "VQAV2_ROOT"] {
        assert!(vqa.contains(w), "{w} not in {vqa}");
    }
    let hm = row("hateful_memes");
    assert!(hm.contains("rank") && hm.contains("roc_auc") && hm.contains("hateful_memes"), "{hm}");
    let demo = row("demo_vqa");
    assert!(demo.trim_end().ends_with('-'), "the demo needs no variable: {demo}");
    // Whether a variable is set is shown.
    let mut c = Command::new(env!("CARGO_BIN_EXE_flamingo-eval"));
    let unset = c.args(["benchmarks", "list"]).env_remove("VQAV2_ROOT").output().unwrap();
    assert!(text(&unset).lines().any(|l| l.starts_with("vqav2 ") && l.contains("VQAV2_ROOT (NOT SET)")), "{}", text(&unset));
    let set = fe(&["benchmarks", "list"], &[("VQAV2_ROOT", "/data/vqav2")]);
    assert!(text(&set).lines().any(|l| l.starts_with("vqav2 ") && l.contains("VQAV2_ROOT (set)")), "{}", text(&set));
    // JSON: one object per file.
    let o = fe(&["benchmarks", "list", "--json"], &[]);
    let objs: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let v = objs.iter().find(|o| o["name"] == "vqav2").expect("vqav2 in --json");
    assert_eq!((v["task"].as_str(), v["metric"].as_str(), v["layout"].as_str()), (Some("generate"), Some("vqa_accuracy"), Some("vqa")));
    assert_eq!(v["env"][0]["name"], "VQAV2_ROOT");
    // Another folder, with a broken file: listed as invalid, pointing at validate.
    let tmp = tempfile::tempdir().unwrap();
    demo_copy(tmp.path(), "a.yaml", |s| s);
    std::fs::write(tmp.path().join("b.yaml"), "name: b\ntask: generate\nbogus: 1\n").unwrap();
    let o = fe(&["benchmarks", "list", tmp.path().to_str().unwrap()], &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.lines().any(|l| l.starts_with("demo_vqa") && l.contains("FE_DEMO")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("(invalid)") && l.contains("b.yaml") && l.contains("validate")), "{t}");
}

#[test]
fn validate_checks_schema_paths_counts_and_pools_without_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let env = demo_env();
    let env = [(env.0, env.1.as_str())];
    let good = demo_copy(d, "good.yaml", |s| s);
    let o = fe(&["benchmarks", "validate", good.to_str().unwrap(), repo().join("benchmarks/demo_coco.yaml").to_str().unwrap()], &env);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ok: ") && t.contains("12 query sample(s), 36 demonstration sample(s)"), "{t}");

    let cases: Vec<(&str, Box<dyn Fn(String) -> String>, Vec<&str>)> = vec![
        ("unknown_key.yaml", Box::new(|s: String| s.replace("  num_beams: 3", "  beams: 3")), vec!["unknown_key.yaml:", "unknown field `beams`", "generation"]),
        ("missing_path.yaml", Box::new(|s: String| s.replace("vqa_val_questions.json", "nope.json")), vec!["dataset.query.questions", "nope.json", "does not exist"]),
        ("missing_var.yaml", Box::new(|s: String| s.replace("${FE_DEMO}/images/train2014", "${FE_UNSET_VAR}/train2014")), vec!["FE_UNSET_VAR", "is not set (used by dataset.demos.images)"]),
        ("pool.yaml", Box::new(|s: String| s.replace("shots: [0, 4]", "shots: [0, 64]")), vec!["shots:", "64", "pool of 36"]),
        ("bad_template.yaml", Box::new(|s: String| s.replace(&format!("{}/openflamingo_vqa.yaml", repo().join("prompts").display()), "no_such_template")), vec!["no_such_template", "known names", "openflamingo_vqa"]),
        ("bad_beams.yaml", Box::new(|s: String| s.replace("num_beams: 3", "num_beams: 0")), vec!["generation.num_beams", "at least 1"]),
    ];
    for (name, edit, want) in &cases {
        let f = demo_copy(d, name, edit);
        let o = fe(&["benchmarks", "validate", good.to_str().unwrap(), f.to_str().unwrap()], &env);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {t}");
        assert!(t.contains(&format!("INVALID: {}", f.display())), "{name}: {t}");
        assert!(t.contains(&format!("ok: {}", good.display())), "{name}: the valid file is still reported: {t}");
        for w in want {
            assert!(t.contains(w), "{name}: `{w}` not in:\n{t}");
        }
    }
    // A record naming a missing image.
    let img = d.join("images");
    std::fs::create_dir_all(&img).unwrap();
    for e in std::fs::read_dir(repo().join("data/demo/images/val2014")).unwrap().skip(1) {
        let e = e.unwrap();
        std::fs::copy(e.path(), img.join(e.file_name())).unwrap();
    }
    let f = demo_copy(d, "missing_image.yaml", |s| s.replace("${FE_DEMO}/images/val2014", img.to_str().unwrap()));
    let o = fe(&["benchmarks", "validate", f.to_str().unwrap()], &env);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("dataset.query") && t.contains("name a media file that does not exist"), "{t}");
}

#[test]
fn templates_resolve_by_name_as_by_path() {
    let tmp = tempfile::tempdir().unwrap();
    let env = demo_env();
    let by_path = demo_copy(tmp.path(), "by_path.yaml", |s| s);
    let by_name = demo_copy(tmp.path(), "by_name.yaml", |s| s.replace(&format!("{}/openflamingo_vqa.yaml", repo().join("prompts").display()), "openflamingo_vqa"));
    assert!(std::fs::read_to_string(&by_name).unwrap().contains("template: openflamingo_vqa\n"));
    let prompts = |b: &Path| {
        let o = fe(&["prompts", "--benchmark", b.to_str().unwrap()], &[(env.0, env.1.as_str())]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).replace("by_name", "X").replace("by_path", "X")
    };
    assert_eq!(prompts(&by_name), prompts(&by_path));
    // The library resolves the same file.
    let t = flamingo_eval::benchmark::template::resolve_template("openflamingo_vqa", tmp.path()).unwrap();
    assert_eq!(std::fs::canonicalize(t).unwrap(), std::fs::canonicalize(repo().join("prompts/openflamingo_vqa.yaml")).unwrap());
    // A name that is not a bundled template: the error lists the known names.
    let e = flamingo_eval::benchmark::template::resolve_template("openflamingo_vqq", tmp.path()).unwrap_err().to_string();
    assert!(e.contains("openflamingo_vqq") && e.contains("openflamingo_vqa") && e.contains("flamingo_caption"), "{e}");
}
