//! `samples.jsonl`: one JSON line per evaluated (sample, shot, trial), appended durably as results are
//! produced, and read back on resume.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Score of one ranking candidate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CandidateRecord {
    pub candidate: String,
    /// Per-token log-probabilities of the candidate after the prompt (the first demonstration order under
    /// prompt ensembling).
    pub token_logprobs: Vec<f32>,
    /// The score the benchmark ranks by (sum, per-token mean or per-character, see `normalization`); under
    /// prompt ensembling the mean of `permutation_scores`.
    pub score: f64,
    /// Prompt ensembling: the normalised score under each demonstration order, in order. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_scores: Option<Vec<f64>>,
}

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SampleRecord {
    pub sample_id: String,
    pub shot: usize,
    pub trial: usize,
    pub trial_seed: u64,
    pub prompt: String,
    /// Demonstration ids in prompt order (shots > 0).
    pub demo_ids: Vec<String>,
    /// Text-only demonstration ids (zero-shot policy), in prompt order.
    pub text_only_demo_ids: Vec<String>,
    /// Media files in `<image>` order (a video is its list of frames).
    pub media: Vec<Vec<String>>,
    /// SHA-256 of each media item's dataset file (the image, or the video the frames come from), in `media`
    /// order; null for a file that could not be read. A resumed run reuses a record only while these match
    /// (see `engine::reuse`). Absent in records of older versions (which are then recomputed).
    #[serde(default)]
    pub media_sha256: Vec<Option<String>>,
    /// What the metric compares against (answers, references, label).
    pub target: serde_json::Value,
    /// Generated text (generation tasks).
    pub raw_output: Option<String>,
    /// The prediction the metric sees: post-processed text, or the chosen class name.
    pub prediction: Option<String>,
    /// Generated token ids (generation tasks).
    pub tokens: Option<Vec<u32>>,
    /// Beam / greedy score of the generation (sum of log-probabilities / length^penalty).
    pub sequence_score: Option<f32>,
    /// Ranking tasks: every candidate's score in class-index order.
    pub candidate_scores: Option<Vec<CandidateRecord>>,
    /// The per-sample metric where the metric decomposes (VQA accuracy, exact match, top-1 hit, P(positive)
    /// for ROC-AUC); null for CIDEr, which is defined on the whole set (see summary.json).
    pub metric: Option<f64>,
    /// Why this sample could not be evaluated (then every output field is null).
    pub error: Option<String>,
    /// Prompt ensembling: the demonstration ids of the further orders, in prompt order (the first order is
    /// `demo_ids`, or `text_only_demo_ids` at shot 0). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble_demo_ids: Option<Vec<Vec<String>>>,
}

impl SampleRecord {
    pub fn key(&self) -> (usize, usize, String) {
        (self.shot, self.trial, self.sample_id.clone())
    }
}

/// Appends records, one fsync'd write per batch, so a killed run loses at most the batch in flight.
pub struct RecordWriter {
    file: File,
    path: PathBuf,
}

impl RecordWriter {
    pub fn append(path: &Path) -> Result<RecordWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open {} for appending", path.display()))?;
        Ok(RecordWriter { file, path: path.to_path_buf() })
    }

    pub fn write_batch(&mut self, records: &[SampleRecord]) -> Result<()> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).with_context(|| format!("could not write {}", self.path.display()))?;
        self.file.sync_data().with_context(|| format!("could not sync {}", self.path.display()))?;
        Ok(())
    }
}

/// Reads every complete record of a `samples.jsonl`. A trailing partial line (a run killed mid-write) is cut
/// off the file so appending continues cleanly; a malformed complete line is an error naming the line.
pub fn read_records(path: &Path, repair_tail: bool) -> Result<Vec<SampleRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if complete < bytes.len() {
        if repair_tail {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(complete as u64)?;
            let mut f = f;
            f.seek(SeekFrom::End(0))?;
            eprintln!(
                "note: {}: dropped an incomplete last line ({} bytes) left by an interrupted run",
                path.display(),
                bytes.len() - complete
            );
        } else {
            bail!("{}: the last line is incomplete (an interrupted run?)", path.display());
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in BufReader::new(&bytes[..complete]).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: SampleRecord = serde_json::from_str(&line)
            .map_err(|e| anyhow!("{}: line {}: not a sample record: {e}", path.display(), i + 1))?;
        if !seen.insert(rec.key()) {
            bail!(
                "{}: line {}: duplicate record for sample {} (shot {}, trial {})",
                path.display(),
                i + 1,
                rec.sample_id,
                rec.shot,
                rec.trial
            );
        }
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// ROC-AUC is recomputed from the per-sample P(positive) read back from samples.jsonl (resume, merge,
    /// report, compare): every double must come back bit for bit, or 1-ulp near-ties flip.
    #[test]
    fn metric_values_read_back_bit_exact() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let mut values = Vec::new();
        for _ in 0..3000 {
            let x: f64 = rng.random();
            values.extend([x, f64::from_bits(x.to_bits() + 1), x * 1e-7, 1.0 - x * 1e-9]);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.jsonl");
        let recs: Vec<SampleRecord> = values
            .iter()
            .enumerate()
            .map(|(i, &m)| SampleRecord {
                sample_id: i.to_string(),
                shot: 0,
                trial: 0,
                trial_seed: 0,
                prompt: String::new(),
                demo_ids: vec![],
                text_only_demo_ids: vec![],
                media: vec![],
                media_sha256: vec![],
                target: serde_json::json!({"label": 1}),
                raw_output: None,
                prediction: None,
                tokens: None,
                sequence_score: None,
                candidate_scores: None,
                metric: Some(m),
                error: None,
                ensemble_demo_ids: None,
            })
            .collect();
        let mut w = RecordWriter::append(&path).unwrap();
        w.write_batch(&recs).unwrap();
        drop(w);
        let back = read_records(&path, false).unwrap();
        let off: Vec<(f64, f64)> =
            values.iter().zip(&back).map(|(&a, r)| (a, r.metric.unwrap())).filter(|(a, b)| a.to_bits() != b.to_bits()).collect();
        assert!(off.is_empty(), "{} of {} values changed, e.g. {:?}", off.len(), values.len(), &off[..off.len().min(3)]);
    }
}
