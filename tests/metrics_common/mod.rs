// Shared helpers for the metrics integration tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics").join(rel)
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The shared real-data folder, if present (FLAMINGO_SHARED_DATA, ../shared/data/real, ../../shared/data/real).
pub fn shared_data() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FLAMINGO_SHARED_DATA") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in ["../shared/data/real", "../../shared/data/real"] {
        let p = root.join(rel);
        if p.join("SOURCES.md").exists() {
            return Some(p);
        }
    }
    eprintln!("skipping full-set check: shared data folder not found (set FLAMINGO_SHARED_DATA)");
    None
}

pub fn assert_close(ours: f64, expected: f64, rel: f64, what: &str) {
    let tol = rel * expected.abs().max(1e-300);
    assert!(
        (ours - expected).abs() <= tol || ours == expected,
        "{what}: ours {ours:e} vs reference {expected:e} (diff {:e})",
        (ours - expected).abs()
    );
}
