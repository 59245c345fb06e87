//! Fuzz benchmark YAML and the dataset annotation files (the same entry points as the suite's seeded
//! mutation test, tests/fuzz_inputs.rs): any bytes must give Ok or an error, never a panic. The first byte
//! picks what the rest replaces: a benchmark file, or one of the demo dataset files. Run from the
//! repository root: `fuzz/seed_corpus.sh`, then
//! `cargo +nightly fuzz run benchmark_inputs -s none fuzz/corpus/benchmark_inputs -- -max_total_time=60`.
#![no_main]
use flamingo_eval::fuzzing::{self, Workspace};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A private copy of the checkout's demo data (the fuzz crate sits in `<checkout>/fuzz`).
fn workspace() -> &'static Workspace {
    static WS: OnceLock<Workspace> = OnceLock::new();
    WS.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("flamingo-eval-fuzz-{}", std::process::id()));
        std::env::set_var("FLAMINGO_EVAL_CACHE", dir.join("cache"));
        Workspace::create(&repo, &dir).expect("workspace")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let ws = workspace();
    match pick % 2 {
        0 => {
            fuzzing::benchmark_yaml(ws, rest);
        }
        _ => {
            fuzzing::dataset_file(ws, (pick / 2) as usize, rest);
        }
    }
});
