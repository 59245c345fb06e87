//! Which prompts of one `generate` call share decoder calls.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// How the prompts of a batch of generation requests are grouped into decoder calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Batching {
    /// Only prompts of the same token length share a call, so no row is ever padded: outputs are
    /// byte-identical whatever the batch size (the default).
    #[default]
    EqualLength,
    /// Every prompt of the batch shares the calls, left-padded to the longest (masked; positions and media
    /// indices per row): fewer, larger decoder calls. The padded rows run other matrix shapes, so outputs may
    /// differ in the last bits from `EqualLength` and between batch sizes; runs record the mode (run.json,
    /// summary.json) and are never resumed or merged across modes.
    Padded,
}

impl Batching {
    pub fn as_str(&self) -> &'static str {
        match self {
            Batching::EqualLength => "equal-length",
            Batching::Padded => "padded",
        }
    }
}

impl fmt::Display for Batching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Batching {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "equal-length" => Ok(Batching::EqualLength),
            "padded" => Ok(Batching::Padded),
            _ => Err(format!("unknown batching {s:?}: equal-length (default) or padded")),
        }
    }
}

/// Groups of prompt indices (each group one prefill and one decode loop), in a deterministic order: by
/// length (ascending) for `EqualLength`, a single group in input order for `Padded`.
pub fn groups(lens: &[usize], batching: Batching) -> Vec<Vec<usize>> {
    match batching {
        Batching::EqualLength => {
            let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (i, &l) in lens.iter().enumerate() {
                by_len.entry(l).or_default().push(i);
            }
            by_len.into_values().collect()
        }
        Batching::Padded if lens.is_empty() => Vec::new(),
        Batching::Padded => vec![(0..lens.len()).collect()],
    }
}

/// [`groups`] within each class of `keys` (prompts of different keys never share a group): the
/// `cross_attention.no_media: uniform_all_media` compatibility mode keys prompts by media count, since a row's
/// zero-padded media slots would be averaged too.
pub fn groups_within(lens: &[usize], keys: &[usize], batching: Batching) -> Vec<Vec<usize>> {
    let mut by_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &k) in keys.iter().enumerate() {
        by_key.entry(k).or_default().push(i);
    }
    let mut out = Vec::new();
    for members in by_key.into_values() {
        let sub: Vec<usize> = members.iter().map(|&i| lens[i]).collect();
        for g in groups(&sub, batching) {
            out.push(g.into_iter().map(|j| members[j]).collect());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_length_groups_by_length_padded_keeps_one_group() {
        assert_eq!(groups(&[5, 3, 5, 4], Batching::EqualLength), vec![vec![1], vec![3], vec![0, 2]]);
        assert_eq!(groups(&[5, 3, 5, 4], Batching::Padded), vec![vec![0, 1, 2, 3]]);
        assert!(groups(&[], Batching::Padded).is_empty());
        assert_eq!("padded".parse::<Batching>().unwrap(), Batching::Padded);
        assert!("bucketed".parse::<Batching>().unwrap_err().contains("equal-length (default) or padded"));
    }

    #[test]
    fn groups_within_never_mixes_keys() {
        assert_eq!(groups_within(&[5, 3, 5, 4], &[0, 0, 0, 0], Batching::EqualLength), groups(&[5, 3, 5, 4], Batching::EqualLength));
        assert_eq!(groups_within(&[5, 3, 5, 4], &[1, 0, 2, 0], Batching::EqualLength), vec![vec![1], vec![3], vec![0], vec![2]]);
        assert_eq!(groups_within(&[5, 3, 5, 4], &[1, 0, 1, 0], Batching::Padded), vec![vec![1, 3], vec![0, 2]]);
    }
}
