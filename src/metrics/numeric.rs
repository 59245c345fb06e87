//! Floating-point helpers that reproduce the reference tools' arithmetic order, so that results agree to
//! the last bit where possible (numpy's pairwise summation, Python's `round`).

/// Sum in the order numpy's `np.add.reduce` uses for a contiguous float64 array (pairwise summation with
/// an 8-way unrolled block of at most 128 elements).
pub fn numpy_sum(a: &[f64]) -> f64 {
    pairwise(a)
}

fn pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = -0.0_f64;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0_f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// `np.mean` of a 1-D float64 array.
pub fn numpy_mean(a: &[f64]) -> f64 {
    numpy_sum(a) / a.len() as f64
}

/// Python's built-in `sum` over floats (left to right, as Python ≤ 3.11 and Python 2 do).
pub fn python_sum(a: &[f64]) -> f64 {
    let mut s = 0.0;
    for &x in a {
        s += x;
    }
    s
}

/// Python's `round(x, ndigits)`: the correctly rounded decimal (ties to even on the exact binary value).
pub fn python_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{:.*}", ndigits, x).parse().unwrap_or(x)
}

/// Python's `str.isspace` (Unicode White_Space plus the ASCII information separators U+001C..U+001F).
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` without arguments.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_isspace).filter(|w| !w.is_empty())
}

/// Python's `str.strip()` without arguments.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_matches_python() {
        assert_eq!(python_round(2.675, 2), 2.67); // binary value is below the tie
        assert_eq!(python_round(0.125, 2), 0.12); // exact tie: to even
        assert_eq!(python_round(33.333333, 2), 33.33);
    }
    #[test]
    fn pairwise_small_and_large() {
        let v: Vec<f64> = (0..1000).map(|i| (i as f64).sqrt()).collect();
        let s = numpy_sum(&v);
        assert!((s - v.iter().sum::<f64>()).abs() < 1e-9);
    }
}
