//! The command line's consistency: every flag of every subcommand has help text, the bootstrap options and
//! results folders are spelled the same everywhere, and the old spellings still work (hidden, with a
//! deprecation warning).

use clap::CommandFactory;
use flamingo_eval::cli::Cli;
use std::process::Command;

fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
    for a in cmd.get_arguments() {
        out.push((path.to_string(), a.clone()));
    }
    for s in cmd.get_subcommands() {
        walk(s, &format!("{path} {}", s.get_name()), out);
    }
}

fn all_args() -> Vec<(String, clap::Arg)> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, "flamingo-eval", &mut out);
    out
}

#[test]
fn every_flag_and_argument_has_help_text() {
    let mut missing = Vec::new();
    for (cmd, a) in all_args() {
        let id = a.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        if help.trim().is_empty() {
            missing.push(format!("{cmd}: {}", a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| id.to_string())));
        }
    }
    assert!(missing.is_empty(), "flags without help text:\n{}", missing.join("\n"));
}

#[test]
fn one_spelling_for_bootstrap_options_results_folders_and_trials() {
    let args = all_args();
    let visible = |cmd: &str| -> Vec<String> {
        args.iter().filter(|(c, a)| c == cmd && !a.is_hide_set()).filter_map(|(_, a)| a.get_long().map(str::to_string)).collect()
    };
    // Bootstrap options: the same three flags wherever intervals are computed.
    for cmd in ["flamingo-eval run", "flamingo-eval compare", "flamingo-eval score caption", "flamingo-eval score vqa"] {
        let v = visible(cmd);
        for want in ["bootstrap-resamples", "bootstrap-seed", "bootstrap-confidence"] {
            assert!(v.iter().any(|f| f == want), "{cmd} lacks --{want}: {v:?}");
        }
        for old in ["resamples", "bootstrap", "confidence"] {
            assert!(!v.iter().any(|f| f == old), "{cmd} still shows --{old}");
        }
    }
    // `--seed` is a trial seed where it is visible (run, prompts), never the bootstrap seed.
    for cmd in ["flamingo-eval compare", "flamingo-eval score caption"] {
        assert!(!visible(cmd).iter().any(|f| f == "seed"), "{cmd} shows --seed");
    }
    // Results folders are read with --results.
    for cmd in ["flamingo-eval report", "flamingo-eval merge", "flamingo-eval export"] {
        assert!(visible(cmd).iter().any(|f| f == "results"), "{cmd} lacks --results");
    }
    // --num-trials is a count, --trial an index; no visible --trials anywhere.
    for (cmd, a) in &args {
        if a.is_hide_set() {
            continue;
        }
        assert_ne!(a.get_long(), Some("trials"), "{cmd} shows the ambiguous --trials");
        if a.get_long() == Some("trial") {
            assert!(a.get_help().unwrap().to_string().contains("index"), "{cmd} --trial help must say it is an index");
        }
        if a.get_long() == Some("num-trials") {
            assert!(a.get_help().unwrap().to_string().contains("Number of trials"), "{cmd} --num-trials help");
        }
    }
    assert!(visible("flamingo-eval run").iter().any(|f| f == "num-trials"));
    assert!(visible("flamingo-eval slurm").iter().any(|f| f == "num-trials"));
}

#[test]
fn old_spellings_still_work_with_a_deprecation_warning() {
    let exe = env!("CARGO_BIN_EXE_flamingo-eval");
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let results = repo.join("tests/fixtures/results/tiny-gptneox-demo");
    let dirs: Vec<_> = std::fs::read_dir(&results).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("summary.json").exists()).collect();
    let one = dirs.first().unwrap_or_else(|| panic!("no results folder under {}", results.display()));
    // compare --resamples/--seed (old) against --bootstrap-resamples/--bootstrap-seed (new): same output.
    let run = |flags: &[&str]| Command::new(exe).arg("compare").arg(one).arg(one).args(flags).output().unwrap();
    let new = run(&["--bootstrap-resamples", "50", "--bootstrap-seed", "3"]);
    let old = run(&["--resamples", "50", "--seed", "3"]);
    assert_eq!(new.status.code(), Some(0), "{}", String::from_utf8_lossy(&new.stderr));
    assert_eq!(old.status.code(), new.status.code());
    assert_eq!(old.stdout, new.stdout);
    let warn = String::from_utf8_lossy(&old.stderr);
    assert!(warn.contains("--resamples is deprecated") && warn.contains("--bootstrap-resamples"), "{warn}");
    assert!(!String::from_utf8_lossy(&new.stderr).contains("deprecated"));
    // Giving both spellings is a usage error.
    let both = run(&["--resamples", "50", "--bootstrap-resamples", "50"]);
    assert_eq!(both.status.code(), Some(2));
    // report DIR (positional, old) still works, with a warning; --results DIR is the spelling.
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(exe).args(["report"]).arg(one).arg("--out").arg(tmp.path().join("a")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("deprecated"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(exe).args(["report", "--results"]).arg(one).arg("--out").arg(tmp.path().join("b")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("deprecated"));
    assert_eq!(std::fs::read(tmp.path().join("a/report.md")).unwrap(), std::fs::read(tmp.path().join("b/report.md")).unwrap());
}

#[test]
fn run_gen_help_names_every_generation_key_of_the_parser() {
    let args = all_args();
    let gen = args.iter().find(|(c, a)| c == "flamingo-eval run" && a.get_long() == Some("gen")).expect("run --gen");
    let help = gen.1.get_help().unwrap().to_string();
    let keys: Vec<String> = flamingo_eval::benchmark::schema::benchmark_keys()
        .into_iter()
        .filter_map(|k| k.path.strip_prefix("generation.").map(str::to_string))
        .collect();
    assert!(keys.len() >= 4, "{keys:?}");
    for k in keys {
        assert!(help.contains(&k), "run --gen help lacks {k}: {help}");
    }
}
