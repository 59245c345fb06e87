//! Progress of a sweep (benchmarks × shot counts × trials): one overall count of the samples to evaluate in
//! this invocation, with a rate and an ETA, beside the count of the current (benchmark, shot, trial) stage.
//!
//! - On a terminal: two bars (overall above, stage below).
//! - Otherwise (CI logs, `nohup`, Slurm output files): a plain line every `interval`, from a background
//!   thread so that a long batch does not silence it, a line when a stage finishes and one at the end.
//!   An interval of 0 prints a line after every batch.
//! - Off (`--quiet`): only the line of each finished stage.
//!
//! The overall total is the sum of each benchmark's samples to evaluate; a benchmark's count is exact once
//! it is loaded (resumed and skipped samples are taken out as each stage is planned) and an estimate given
//! beforehand by the caller until then. Rates are printed as samples/s, or s/sample below one sample per
//! second.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, else plain lines.
    Auto,
    Bars,
    Lines,
    /// Only a line per finished stage.
    Off,
}

/// A rate, readable: `12.3 samples/s`, or `4.2 s/sample` below one sample per second.
pub fn fmt_rate(samples_per_sec: f64) -> String {
    if !samples_per_sec.is_finite() || samples_per_sec <= 0.0 {
        return "- samples/s".into();
    }
    if samples_per_sec >= 1.0 {
        if samples_per_sec >= 100.0 { format!("{samples_per_sec:.0} samples/s") } else { format!("{samples_per_sec:.1} samples/s") }
    } else {
        let s = 1.0 / samples_per_sec;
        if s >= 100.0 { format!("{s:.0} s/sample") } else { format!("{s:.1} s/sample") }
    }
}

/// A duration as `1h02m`, `3m05s` or `12s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[derive(Debug)]
struct State {
    /// Per benchmark: samples to evaluate in this invocation (estimate until the benchmark is loaded).
    totals: Vec<u64>,
    done: u64,
    /// Samples done before the current stage's first batch started, and when it started (for the rate).
    first: Option<Instant>,
    stage: Option<(String, u64, u64)>,
    benchmark: usize,
    last_line: Instant,
    started: Instant,
}

impl State {
    fn total(&self) -> u64 {
        self.totals.iter().sum()
    }
    fn rate(&self) -> f64 {
        match self.first {
            Some(t) if self.done > 0 => self.done as f64 / t.elapsed().as_secs_f64().max(1e-9),
            _ => 0.0,
        }
    }
    fn line(&self) -> String {
        let total = self.total().max(self.done);
        let pct = if total > 0 { 100.0 * self.done as f64 / total as f64 } else { 100.0 };
        let rate = self.rate();
        let eta = if rate > 0.0 { fmt_duration(Duration::from_secs_f64((total - self.done) as f64 / rate)) } else { "-".into() };
        let mut s = format!(
            "progress: sweep {}/{} samples ({pct:.1}%), benchmark {}/{}, {}, eta {eta}",
            self.done,
            total,
            self.benchmark + 1,
            self.totals.len(),
            fmt_rate(rate)
        );
        if let Some((label, d, n)) = &self.stage {
            s.push_str(&format!(" | {label}: {d}/{n}"));
        }
        s
    }
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

/// The progress display of one sweep; shared by the runs of its benchmarks (see [`ProgressSlot`]).
pub struct SweepProgress {
    mode: ProgressMode,
    interval: Duration,
    shared: Arc<Shared>,
    bars: Option<(MultiProgress, ProgressBar)>,
    stage_bar: Mutex<Option<ProgressBar>>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for SweepProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepProgress").field("mode", &self.mode).field("interval", &self.interval).finish()
    }
}

/// Where one benchmark's run reports: the sweep and the benchmark's position in it.
#[derive(Debug, Clone)]
pub struct ProgressSlot {
    pub sweep: Arc<SweepProgress>,
    pub index: usize,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&fmt_rate(s.per_sec()));
        })
        .progress_chars("=> ")
}

impl SweepProgress {
    /// A sweep over `estimates.len()` benchmarks (their sample counts as far as known; 0 when unknown).
    pub fn new(mode: ProgressMode, interval: Duration, estimates: Vec<u64>) -> Arc<SweepProgress> {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
            ProgressMode::Auto => ProgressMode::Lines,
            m => m,
        };
        let now = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State { totals: estimates, done: 0, first: None, stage: None, benchmark: 0, last_line: now, started: now }),
            stop: AtomicBool::new(false),
        });
        let bars = (mode == ProgressMode::Bars).then(|| {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total: u64 = shared.state.lock().map(|s| s.total()).unwrap_or(0);
            let pb = mp.add(ProgressBar::new(total));
            pb.set_style(style("{prefix} [{bar:30}] {pos}/{len} {rate} eta {eta}"));
            pb.set_prefix("sweep");
            (mp, pb)
        });
        let sp = SweepProgress { mode, interval, shared, bars, stage_bar: Mutex::new(None), ticker: Mutex::new(None) };
        if mode == ProgressMode::Lines && !interval.is_zero() {
            let shared = sp.shared.clone();
            let step = interval.min(Duration::from_millis(200));
            let handle = std::thread::spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    let mut s = match shared.state.lock() {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                    if s.first.is_some() && s.last_line.elapsed() >= interval {
                        eprintln!("{}", s.line());
                        s.last_line = Instant::now();
                    }
                }
            });
            *sp.ticker.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
        Arc::new(sp)
    }

    /// A sweep of one benchmark whose count is not known yet.
    pub fn single(mode: ProgressMode, interval: Duration) -> Arc<SweepProgress> {
        SweepProgress::new(mode, interval, vec![0])
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    fn sync_overall(&self) {
        if let Some((_, pb)) = &self.bars {
            let (total, done, b, n) = self.with_state(|s| (s.total().max(s.done), s.done, s.benchmark, s.totals.len()));
            pb.set_length(total);
            pb.set_position(done);
            pb.set_prefix(if n > 1 { format!("sweep (benchmark {}/{n})", b + 1) } else { "sweep".to_string() });
        }
    }

    /// Benchmark `index` starts; `total` is its exact count of samples to evaluate (before resume).
    pub fn begin_benchmark(&self, index: usize, total: u64) {
        self.with_state(|s| {
            if index >= s.totals.len() {
                s.totals.resize(index + 1, 0);
            }
            s.totals[index] = total;
            s.benchmark = index;
        });
        self.sync_overall();
    }

    /// Benchmark `index` will evaluate about `n` samples (known before it starts).
    pub fn estimate(&self, index: usize, n: u64) {
        self.with_state(|s| {
            if index >= s.totals.len() {
                s.totals.resize(index + 1, 0);
            }
            s.totals[index] = n;
        });
        self.sync_overall();
    }

    /// A message on stderr that does not tear the bars.
    pub fn println(&self, msg: &str) {
        match &self.bars {
            Some((mp, _)) => {
                let _ = mp.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    /// Takes `n` samples of benchmark `index` out of the count (resumed from an earlier run, or skipped).
    pub fn not_evaluated(&self, index: usize, n: u64) {
        self.with_state(|s| {
            if let Some(t) = s.totals.get_mut(index) {
                *t = t.saturating_sub(n);
            }
        });
        self.sync_overall();
    }

    /// Benchmark `index` will not run (it failed): its count leaves the sweep.
    pub fn drop_benchmark(&self, index: usize) {
        self.with_state(|s| {
            if let Some(t) = s.totals.get_mut(index) {
                *t = 0;
            }
        });
        self.sync_overall();
    }

    /// A (benchmark, shot, trial) stage of `n` samples starts.
    pub fn begin_stage(&self, label: &str, n: u64) {
        self.with_state(|s| {
            s.stage = Some((label.to_string(), 0, n));
            if s.first.is_none() {
                s.first = Some(Instant::now());
                s.last_line = Instant::now();
            }
        });
        if let Some((mp, _)) = &self.bars {
            let pb = mp.add(ProgressBar::new(n));
            pb.set_style(style("{prefix} [{bar:30}] {pos}/{len} {rate} eta {eta}"));
            pb.set_prefix(label.to_string());
            *self.stage_bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(pb);
        }
    }

    /// `n` more samples of the current stage are done.
    pub fn advance(&self, n: u64) {
        let line = self.with_state(|s| {
            s.done += n;
            if let Some(st) = &mut s.stage {
                st.1 += n;
            }
            if self.mode == ProgressMode::Lines && self.interval.is_zero() {
                s.last_line = Instant::now();
                return Some(s.line());
            }
            None
        });
        if let Some(l) = line {
            eprintln!("{l}");
        }
        if let Some(pb) = self.stage_bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            pb.inc(n);
        }
        self.sync_overall();
    }

    /// The current stage is over (`done` samples evaluated in it).
    pub fn end_stage(&self, done: usize) {
        let label = self.with_state(|s| s.stage.take().map(|st| st.0));
        if let Some(pb) = self.stage_bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pb.finish_and_clear();
            if let Some((mp, _)) = &self.bars {
                mp.remove(&pb);
            }
        }
        if self.mode != ProgressMode::Bars {
            if let Some(l) = label {
                eprintln!("{l}: {done} sample(s) done");
            }
        }
    }

    /// The sweep is over: the bars go, the line mode prints a last line.
    pub fn finish(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
        if let Some((_, pb)) = &self.bars {
            pb.finish_and_clear();
        }
        if self.mode == ProgressMode::Lines {
            let line = self.with_state(|s| {
                format!(
                    "progress: sweep finished: {} sample(s) evaluated in {}, {}",
                    s.done,
                    fmt_duration(s.started.elapsed()),
                    fmt_rate(s.rate())
                )
            });
            eprintln!("{line}");
        }
    }

    /// Samples evaluated so far and the current overall total.
    pub fn counts(&self) -> (u64, u64) {
        self.with_state(|s| (s.done, s.total()))
    }

    pub fn mode(&self) -> ProgressMode {
        self.mode
    }
}

impl Drop for SweepProgress {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_well() {
        assert_eq!(fmt_rate(12.34), "12.3 samples/s");
        assert_eq!(fmt_rate(250.0), "250 samples/s");
        assert_eq!(fmt_rate(0.25), "4.0 s/sample");
        assert_eq!(fmt_rate(0.005), "200 s/sample");
        assert_eq!(fmt_rate(0.0), "- samples/s");
        assert_eq!(fmt_duration(Duration::from_secs(12)), "12s");
        assert_eq!(fmt_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(fmt_duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn overall_count_follows_benchmarks_and_resumes() {
        let p = SweepProgress::new(ProgressMode::Off, Duration::from_secs(30), vec![10, 20]);
        assert_eq!(p.counts(), (0, 30));
        p.begin_benchmark(0, 12);
        p.not_evaluated(0, 2);
        assert_eq!(p.counts(), (0, 30));
        p.begin_stage("a shot 0 trial 0", 10);
        p.advance(4);
        p.advance(6);
        p.end_stage(10);
        p.drop_benchmark(1);
        assert_eq!(p.counts(), (10, 10));
        p.finish();
    }
}
