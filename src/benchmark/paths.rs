//! Paths stay inside the data: the media files a dataset record names must lie below the split's declared
//! media root (`images:` / the ImageNet `root:`), unless the benchmark says `allow_paths_outside_root: true`.
//!
//! Two checks: lexically, when a split is loaded — a record whose file name (VQA `image_id` through the
//! pattern, Karpathy `filename` / `filepath`, HatefulMemes `img`, video-QA `video` / `video_id`) makes an
//! absolute path or climbs out with `..` is a bad record, named with its id (`on_bad_record` applies); and
//! on the file system, when a request uses the file — a symlink that resolves outside the root fails that
//! sample, named with its id. Also here: what a media path that is not a usable file actually is (missing,
//! a directory, a dangling symlink, a symlink loop), and the rule that a benchmark or model name is a name,
//! not a path.

use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The fix named in every refusal.
pub const ALLOW_KEY: &str = "allow_paths_outside_root: true";

/// Whether `path` is `root` followed only by plain names (no `..`, no `.`-tricks, not absolute elsewhere).
pub fn lexically_inside(path: &Path, root: &Path) -> bool {
    match path.strip_prefix(root) {
        Ok(rest) => rest.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) && rest.components().any(|c| matches!(c, Component::Normal(_))),
        Err(_) => false,
    }
}

/// Why a media file cannot be used, in words (None: it is a regular file, or a symlink to one).
pub fn describe_unusable(path: &Path, kind: &str) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some(format!("{kind} {} is a directory, not a file", path.display())),
        Ok(_) => Some(format!("{kind} {} is not a regular file (a device, socket or pipe)", path.display())),
        Err(e) => {
            let link = std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false);
            Some(if link && e.kind() == std::io::ErrorKind::NotFound {
                let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
                format!("{kind} {} is a dangling symlink (to {to}, which does not exist)", path.display())
            } else if link {
                // ELOOP: "Too many levels of symbolic links".
                format!("{kind} {} is a symlink that cannot be followed (a symlink loop?): {e}", path.display())
            } else if e.kind() == std::io::ErrorKind::NotFound {
                format!("{kind} {} does not exist", path.display())
            } else {
                format!("{kind} {} cannot be read: {e}", path.display())
            })
        }
    }
}

/// [`describe_unusable`] as an error.
pub fn check_media_file(path: &Path, kind: &str) -> Result<()> {
    match describe_unusable(path, kind) {
        None => Ok(()),
        Some(why) => bail!("{why}"),
    }
}

/// Canonical roots and per-file verdicts, so a file shown by many prompts is resolved once. Verdicts are
/// kept per root (`slot`: 0 the query split's, 1 the demonstration split's), looked up without allocating.
#[derive(Default)]
pub struct RootCache {
    roots: Mutex<HashMap<PathBuf, Option<PathBuf>>>,
    files: [Mutex<HashMap<PathBuf, Option<String>>>; 2],
}

impl RootCache {
    /// Errors when `path` (an existing file) resolves, through symlinks, to somewhere outside `root`.
    pub fn check_inside(&self, slot: usize, path: &Path, root: &Path, kind: &str) -> Result<()> {
        let files = &self.files[slot.min(1)];
        let cached = files.lock().unwrap_or_else(|e| e.into_inner()).get(path).cloned();
        let verdict = match cached {
            Some(v) => v,
            None => {
                let canon_root = self
                    .roots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(root.to_path_buf())
                    .or_insert_with(|| std::fs::canonicalize(root).ok())
                    .clone();
                let v = match (canon_root, std::fs::canonicalize(path)) {
                    (Some(r), Ok(p)) if p.starts_with(&r) => None,
                    (Some(r), Ok(p)) => Some(format!(
                        "{kind} {} resolves to {}, outside the declared media root {} (a symlink out of the data); \
                         set `{ALLOW_KEY}` in the benchmark to accept it",
                        path.display(),
                        p.display(),
                        r.display()
                    )),
                    (None, _) => Some(format!("the media root {} of {kind} {} cannot be resolved", root.display(), path.display())),
                    (_, Err(e)) => Some(format!("{kind} {} cannot be resolved: {e}", path.display())),
                };
                files.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), v.clone());
                v
            }
        };
        match verdict {
            None => Ok(()),
            Some(e) => bail!("{e}"),
        }
    }
}

/// A benchmark or model name becomes a folder name under `results/`: it must be a plain name.
pub fn check_plain_name(name: &str, what: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if !ok {
        bail!(
            "{what} {name:?} is not a plain name: it names the results folder, so it may use only letters, digits, \
             `-`, `_`, `.` and `+`, must not start with `.` and must not contain `/` or `..`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_containment() {
        let root = Path::new("/data/images");
        assert!(lexically_inside(&root.join("a.jpg"), root));
        assert!(lexically_inside(&root.join("train2014/a.jpg"), root));
        assert!(!lexically_inside(&root.join("../secret.jpg"), root));
        assert!(!lexically_inside(&root.join("x/../../secret.jpg"), root));
        assert!(!lexically_inside(&root.join("/etc/passwd"), root));
        assert!(!lexically_inside(root, root));
    }

    #[test]
    fn plain_names() {
        for ok in ["vqav2", "demo_vqa", "coco-2014", "of-3b+x", "v1.2"] {
            check_plain_name(ok, "name").unwrap();
        }
        for bad in ["", "../x", "a/b", ".hidden", "..", "/abs", "a\\b", "sp ace"] {
            assert!(check_plain_name(bad, "name").is_err(), "{bad:?}");
        }
    }
}
