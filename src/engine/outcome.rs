//! Whether a finished run succeeded, for the exit status scripts rely on.
//!
//! A run fails (exit 1) when some (shot, trial) of the sweep has no scored sample because its samples failed
//! (or none was left to evaluate), or when a (shot, trial)'s share of failed samples is above
//! `--max-error-rate`. Without `--max-error-rate`, failed samples do not fail the run but are reported in
//! the summary line. A (shot, trial) of an unannotated split (every sample predicted, none has references)
//! is not a failure: its predictions are for an evaluation server.

use crate::engine::run::Summary;

/// `--fail-fast` stopped the run at a failed sample (the CLI exits with status 1).
#[derive(Debug, thiserror::Error)]
#[error("{0} (stopped by --fail-fast)")]
pub struct FailFast(pub String);

/// The verdict on a run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Why the run failed (empty: it did not).
    pub failures: Vec<String>,
    /// Failed samples that did not fail the run, one line.
    pub warning: Option<String>,
    /// The first sample errors (sample id, shot, trial, message), to show with a failure.
    pub first_errors: Vec<String>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

/// Judges `summary` against `max_error_rate` (a fraction in [0, 1]; None: report errors, fail only when a
/// (shot, trial) has nothing scored).
pub fn assess(summary: &Summary, max_error_rate: Option<f64>) -> Outcome {
    let mut out = Outcome { first_errors: summary.first_errors.clone(), ..Default::default() };
    let mut total = (0usize, 0usize);
    let mut worst: Option<(f64, usize, usize, usize, usize)> = None;
    for r in &summary.results {
        for t in &r.trials {
            let all = t.n + t.errors;
            total.0 += t.errors;
            total.1 += all;
            if all == 0 || (t.n == 0 && t.errors > 0) {
                out.failures.push(format!(
                    "shot {} trial {}: no scored sample ({} of {} failed)",
                    r.shot, t.trial, t.errors, all
                ));
                continue;
            }
            let rate = t.errors as f64 / all as f64;
            if worst.is_none_or(|w| rate > w.0) {
                worst = Some((rate, r.shot, t.trial, t.errors, all));
            }
            if let Some(max) = max_error_rate {
                if rate > max {
                    out.failures.push(format!(
                        "shot {} trial {}: {} of {} sample(s) failed ({:.1}%), above --max-error-rate {}",
                        r.shot,
                        t.trial,
                        t.errors,
                        all,
                        100.0 * rate,
                        max
                    ));
                }
            }
        }
    }
    // A (shot, trial) the sweep asked for but that has no record at all (every sample skipped). A shard may
    // own no sample of a short run: that is not a failure of the shard.
    let shard = summary.provenance.identity.shard.is_some();
    for &shot in summary.provenance.identity.shots.iter().filter(|_| !shard) {
        for trial in 0..summary.provenance.identity.trial_seeds.len() {
            let present = summary.results.iter().any(|r| r.shot == shot && r.trials.iter().any(|t| t.trial == trial));
            if !present {
                out.failures.push(format!("shot {shot} trial {trial}: no sample was evaluated (all skipped or none selected)"));
            }
        }
    }
    if total.0 > 0 && !out.failed() {
        let (rate, shot, trial, e, n) = worst.unwrap_or((0.0, 0, 0, 0, 0));
        out.warning = Some(format!(
            "{} of {} sample(s) failed and are excluded from the metric (worst: shot {shot} trial {trial}, {e} of {n}, {:.1}%); \
             see the `error` fields of samples.jsonl; --max-error-rate R makes this fail the run",
            total.0,
            total.1,
            100.0 * rate
        ));
    }
    out
}
