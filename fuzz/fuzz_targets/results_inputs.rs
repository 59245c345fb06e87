//! Fuzz the files of a results folder (samples.jsonl, run.json, summary.json, summary.csv) under the
//! readers, `report`, `compare` and `merge` (the entry points of tests/fuzz_inputs.rs). The first byte picks
//! the folder (tests/fixtures/results/tiny-gptneox-demo/*) and the file. Run from the repository root: `fuzz/seed_corpus.sh`, then
//! `cargo +nightly fuzz run results_inputs -s none fuzz/corpus/results_inputs -- -max_total_time=60`.
#![no_main]
use flamingo_eval::fuzzing::{self, Workspace};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn workspace() -> &'static Workspace {
    static WS: OnceLock<Workspace> = OnceLock::new();
    WS.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("flamingo-eval-fuzz-results-{}", std::process::id()));
        Workspace::create(&repo, &dir).expect("workspace")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let runs = ["demo_vqa", "demo_coco", "demo_hateful"];
    fuzzing::results_file(workspace(), runs[pick as usize % runs.len()], (pick as usize / runs.len()) % 4, rest);
});
