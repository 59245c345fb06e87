//! One writer per results folder: an advisory lock (`flock`, through `std::fs::File::try_lock`) on
//! `<out>/.flamingo-eval.lock`, held for the whole run. A second run into the same folder stops at once,
//! naming the holder's PID and host (written into the lock file). The kernel releases the lock when its
//! holder dies (even by `kill -9`), so a lock left by a dead process is simply taken over; the file is never
//! deleted (deleting a lock file races with a process that has just opened it).

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".flamingo-eval.lock";

/// Another process holds the folder's lock (the CLI exits with status 3).
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is in use by another flamingo-eval run ({holder}); wait for it to finish, or use another --out folder \
     (two runs writing one folder would corrupt it)",
    dir.display()
)]
pub struct FolderInUse {
    pub dir: PathBuf,
    /// "PID 1234 on host h, since 2026-…" as the holder wrote it (or "holder unknown").
    pub holder: String,
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct ResultsLock {
    file: File,
    path: PathBuf,
    /// What the previous, dead holder had written, when the lock was taken over.
    pub took_over: Option<String>,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

fn read_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut s);
    let s = s.trim().to_string();
    if s.is_empty() {
        "holder unknown".into()
    } else {
        s
    }
}

impl ResultsLock {
    /// Takes the lock of `dir` (which must exist) or fails at once with [`FolderInUse`].
    pub fn acquire(dir: &Path) -> Result<ResultsLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("could not open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(FolderInUse { dir: dir.to_path_buf(), holder: read_holder(&mut file) }.into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("could not lock {} (does the file system support flock?)", path.display()))
            }
        }
        let previous = read_holder(&mut file);
        let took_over = (previous != "holder unknown").then_some(previous);
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let me = format!("PID {} on host {}, since unix time {since}", std::process::id(), host());
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(me.as_bytes())?;
        file.sync_data()?;
        Ok(ResultsLock { file, path, took_over })
    }

    /// Fails with [`FolderInUse`] if some process holds `dir`'s lock now; takes nothing (for a refusal before
    /// the expensive model load, when the folder may not exist yet).
    pub fn probe(dir: &Path) -> Result<()> {
        let path = dir.join(LOCK_FILE);
        let Ok(mut file) = OpenOptions::new().read(true).open(&path) else { return Ok(()) };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(FolderInUse { dir: dir.to_path_buf(), holder: read_holder(&mut file) }.into()),
            Err(TryLockError::Error(_)) => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ResultsLock {
    fn drop(&mut self) {
        // An empty lock file means "released cleanly"; the lock itself goes with the descriptor.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_released_lock_is_free() {
        let tmp = tempfile::tempdir().unwrap();
        let a = ResultsLock::acquire(tmp.path()).unwrap();
        assert!(a.took_over.is_none());
        // flock locks belong to the open file description: a second open in this process conflicts too.
        let err = ResultsLock::acquire(tmp.path()).unwrap_err();
        let e = err.downcast_ref::<FolderInUse>().expect("FolderInUse");
        assert!(e.holder.contains(&format!("PID {}", std::process::id())), "{}", e.holder);
        assert!(ResultsLock::probe(tmp.path()).is_err());
        drop(a);
        ResultsLock::probe(tmp.path()).unwrap();
        let b = ResultsLock::acquire(tmp.path()).unwrap();
        assert!(b.took_over.is_none(), "a cleanly released lock is not a take-over");
    }
}
