//! Video frames for video-QA benchmarks, extracted with the `ffmpeg`/`ffprobe` programs and cached on disk.
//!
//! Sampling: `uniform` takes `frames` frames at the centres of `frames` equal time slices of the whole
//! video; `fps` takes one frame every 1/fps seconds from the start (Flamingo: 3 fps), at most `frames`.
//! Frames are written as JPEG under `<cache>/frames/<key>/frame_NNNN.jpg`, where `<key>` hashes the video's
//! absolute path, size and modification time and the sampling parameters, so a changed video or setting
//! never reuses stale frames. A directory is published atomically (extracted into a temporary directory,
//! then renamed), so an interrupted run leaves no half-filled cache entry.
//!
//! Not for: decoding pixels (the model layer reads the JPEGs) or choosing which videos to load.

use super::spec::{FrameSampling, VideoSpec};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Frames of one video, extracting them unless the cache already has them.
pub fn frames_for(video: &Path, spec: &VideoSpec, cache_dir: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(video).with_context(|| format!("cannot read video {}", video.display()))?;
    let abs = std::fs::canonicalize(video).unwrap_or_else(|_| video.to_path_buf());
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
    let mut h = Sha256::new();
    h.update(format!(
        "frames-v1\n{}\n{}\n{}\n{:?}\n{}\n{:?}\n",
        abs.display(),
        meta.len(),
        mtime,
        spec.sampling,
        spec.frames,
        spec.fps
    ));
    let key = hex::encode(&h.finalize()[..16]);
    let dir = cache_dir.join("frames").join(&key);
    if let Some(frames) = list_frames(&dir)? {
        return Ok(frames);
    }
    std::fs::create_dir_all(cache_dir.join("frames")).with_context(|| format!("cannot create frame cache {}", cache_dir.display()))?;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cache_dir.join("frames").join(format!("{key}.tmp{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let result = extract(video, spec, &tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::write(tmp.join("COMPLETE"), b"")?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process published the same entry first: use theirs.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    list_frames(&dir)?.ok_or_else(|| anyhow!("frame cache entry {} vanished", dir.display()))
}

fn list_frames(dir: &Path) -> Result<Option<Vec<PathBuf>>> {
    if !dir.join("COMPLETE").exists() {
        return Ok(None);
    }
    let mut frames: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    frames.sort();
    Ok(Some(frames))
}

/// Duration in seconds, from ffprobe.
pub fn duration_seconds(video: &Path) -> Result<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(video)
        .output()
        .context("could not run `ffprobe` (install ffmpeg: apt-get install ffmpeg)")?;
    if !out.status.success() {
        bail!("cannot read video {}: {}", video.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let d: f64 = s.trim().parse().map_err(|_| anyhow!("cannot read video {}: ffprobe reported no duration ({:?})", video.display(), s.trim()))?;
    if !(d > 0.0) {
        bail!("cannot read video {}: duration is {d}", video.display());
    }
    Ok(d)
}

fn extract(video: &Path, spec: &VideoSpec, out: &Path) -> Result<()> {
    let duration = duration_seconds(video)?;
    let n = spec.frames;
    let filter = match spec.sampling {
        // Rate n/duration after seeking half a slice in: frame i ≈ (i + 0.5) · duration / n.
        FrameSampling::Uniform => format!("fps={:.6}", n as f64 / duration),
        FrameSampling::Fps => format!("fps={}", spec.fps.unwrap_or(1.0)),
    };
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-nostdin", "-y"]);
    if spec.sampling == FrameSampling::Uniform {
        // Seek half a slice in so frames sit at slice centres.
        cmd.args(["-ss", &format!("{:.6}", duration / n as f64 / 2.0)]);
    }
    cmd.arg("-i").arg(video).args(["-vf", &filter, "-frames:v", &n.to_string(), "-q:v", "2"]).arg(out.join("frame_%04d.jpg"));
    let o = cmd.output().context("could not run `ffmpeg` (install ffmpeg: apt-get install ffmpeg)")?;
    if !o.status.success() {
        bail!("cannot read video {}: ffmpeg failed: {}", video.display(), String::from_utf8_lossy(&o.stderr).trim());
    }
    let mut got: Vec<PathBuf> = std::fs::read_dir(out)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    got.sort();
    if got.is_empty() {
        bail!("cannot read video {}: ffmpeg produced no frames", video.display());
    }
    // Uniform sampling promises exactly n frames: pad short videos by repeating the last frame.
    if spec.sampling == FrameSampling::Uniform {
        let last = got.last().unwrap().clone();
        for i in got.len()..n {
            std::fs::copy(&last, out.join(format!("frame_{:04}.jpg", i + 1)))?;
        }
    }
    Ok(())
}
