//! Command-line overrides of a benchmark file's settings (`run --seeds`, `--gen`, `--limit FRACTION`).
//!
//! - Seeds replace `trials.seeds` (every use of a trial seed follows: the evaluated subset when
//!   `samples.count` has no `subset_seed`, the demonstration query set, random demonstrations, ensembles).
//! - Generation overrides (`max_new_tokens=10,num_beams=1`) are applied to the benchmark's `generation:`
//!   mapping and parsed again by the same strict parser, so the accepted keys and their types are exactly
//!   the YAML's (an unknown key is an error listing the known ones).
//! - A fractional limit (`0.1`, `10%`) is kept as an exact decimal fraction and resolved against the
//!   number of samples a trial evaluates: `ceil(fraction × n)` in integer arithmetic (0.3 of 10 is 3, never
//!   4 through a floating-point round-off), at least 1. The samples evaluated are then the first ones of
//!   the trial's evaluation order (query-split file order, or the ascending indices of the seeded
//!   `samples.count` subset), as for an integer `--limit`: deterministic, and a larger limit evaluates a
//!   superset.

use super::spec::{BenchmarkSpec, GenerationSpec, TaskKind};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

/// Overrides given on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecOverrides {
    /// Replacement trial seeds (`--seed` / `--seeds`).
    pub seeds: Option<Vec<u64>>,
    /// `key=value` generation overrides, in command-line order (`--gen`).
    pub generation: Vec<(String, String)>,
}

/// What the overrides changed, for run.json and summary.json.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppliedOverrides {
    /// The seeds that replaced `trials.seeds`, when given.
    pub seeds: Option<Vec<u64>>,
    /// Overridden generation keys with their effective (parsed) values.
    pub generation: BTreeMap<String, serde_json::Value>,
}

/// Parses `--gen` text: `key=value` items separated by commas (`max_new_tokens=10,num_beams=1`).
pub fn parse_gen_items(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("--gen {text}: `{item}` is not KEY=VALUE (e.g. --gen max_new_tokens=10,num_beams=1)"))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            bail!("--gen {text}: `{item}` needs both a key and a value (e.g. num_beams=1)");
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Applies the overrides to a parsed (and validated) benchmark spec, then validates it again.
pub fn apply(spec: &mut BenchmarkSpec, o: &SpecOverrides) -> Result<AppliedOverrides> {
    let mut applied = AppliedOverrides::default();
    if let Some(seeds) = &o.seeds {
        if seeds.is_empty() {
            bail!("--seeds: give at least one seed (e.g. --seeds 1,2,3)");
        }
        if let Some(d) = super::spec::first_repeat(seeds) {
            bail!("--seeds: {d} is listed twice; repeated seeds would make identical trials");
        }
        spec.trials.seeds = seeds.clone();
        applied.seeds = Some(seeds.clone());
    }
    if !o.generation.is_empty() {
        if spec.task != TaskKind::Generate {
            bail!("--gen: this benchmark has `task: {:?}`; generation settings only apply to `task: generate`", spec.task);
        }
        let g = spec.generation.as_ref().ok_or_else(|| anyhow!("--gen: the benchmark has no generation settings"))?;
        let mut map = match serde_yaml::to_value(g)? {
            serde_yaml::Value::Mapping(m) => m,
            _ => bail!("generation settings are not a mapping"),
        };
        for (k, v) in &o.generation {
            // The value is read as YAML, so `10`, `0.5` and `true` get the types the benchmark file gives them.
            let value: serde_yaml::Value = serde_yaml::from_str(v).map_err(|e| anyhow!("--gen {k}={v}: {e}"))?;
            map.insert(serde_yaml::Value::String(k.clone()), value);
        }
        let new: GenerationSpec = serde_yaml::from_value(serde_yaml::Value::Mapping(map))
            .map_err(|e| anyhow!("--gen: {} (keys are those of the benchmark's `generation:` mapping)", e))?;
        new.check().map_err(|e| anyhow!("--gen: {e}"))?;
        let effective = serde_json::to_value(&new)?;
        for (k, _) in &o.generation {
            applied.generation.insert(k.clone(), effective[k.as_str()].clone());
        }
        spec.generation = Some(new);
    }
    spec.validate()?;
    Ok(applied)
}

/// `--limit`: a sample count, or a fraction of the samples each trial evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    Count(usize),
    /// `num / den` exactly, 0 < num/den <= 1, with the text as given.
    Fraction { num: u64, den: u64, text: String },
}

impl std::str::FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Limit, String> {
        let t = s.trim();
        let bad = || format!("`{s}`: expected a sample count (500) or a fraction of the samples (0.1 or 10%)");
        if let Some(p) = t.strip_suffix('%') {
            let (num, den) = decimal(p.trim()).ok_or_else(bad)?;
            return fraction(num, den.checked_mul(100).ok_or_else(bad)?, t);
        }
        if t.contains('.') {
            let (num, den) = decimal(t).ok_or_else(bad)?;
            return fraction(num, den, t);
        }
        t.parse::<usize>().map(Limit::Count).map_err(|_| bad())
    }
}

fn fraction(num: u64, den: u64, text: &str) -> std::result::Result<Limit, String> {
    if num == 0 || num > den {
        return Err(format!("`{text}`: a fraction must be above 0 and at most 1 (100%)"));
    }
    Ok(Limit::Fraction { num, den, text: text.to_string() })
}

/// `"0.125"` → (125, 1000); digits with at most one point, at most 15 decimals.
fn decimal(t: &str) -> Option<(u64, u64)> {
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty()) || frac.len() > 15 || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let den = 10u64.checked_pow(frac.len() as u32)?;
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u64 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    Some((int.checked_mul(den)?.checked_add(frac)?, den))
}

impl Limit {
    /// The sample count for a trial evaluating `n` samples: the count itself, or `ceil(num × n / den)`
    /// (at least 1).
    pub fn resolve(&self, n: usize) -> usize {
        match self {
            Limit::Count(c) => *c,
            Limit::Fraction { num, den, .. } => {
                let v = (*num as u128 * n as u128).div_ceil(*den as u128);
                (v as usize).max(1)
            }
        }
    }

    pub fn is_fraction(&self) -> bool {
        matches!(self, Limit::Fraction { .. })
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Count(c) => write!(f, "{c}"),
            Limit::Fraction { text, .. } => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_round_up_exactly() {
        let l = |s: &str| s.parse::<Limit>().unwrap();
        assert_eq!(l("500"), Limit::Count(500));
        assert_eq!(l("0.3").resolve(10), 3, "0.3 of 10 is 3 (no floating-point round-off to 4)");
        assert_eq!(l("0.1").resolve(5000), 500);
        assert_eq!(l("0.1").resolve(5), 1, "ceil");
        assert_eq!(l("0.001").resolve(10), 1, "at least one sample");
        assert_eq!(l("10%").resolve(5000), 500);
        assert_eq!(l("12.5%").resolve(8), 1);
        assert_eq!(l("1.0").resolve(7), 7);
        assert_eq!(l(".5").resolve(3), 2);
        for bad in ["0.0", "1.5", "-0.1", "abc", "0%", "150%", "1e-3", "."] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn gen_items_parse() {
        assert_eq!(
            parse_gen_items("max_new_tokens=10, num_beams=1").unwrap(),
            vec![("max_new_tokens".into(), "10".into()), ("num_beams".into(), "1".into())]
        );
        assert!(parse_gen_items("num_beams").is_err());
        assert!(parse_gen_items("num_beams=").is_err());
    }
}
