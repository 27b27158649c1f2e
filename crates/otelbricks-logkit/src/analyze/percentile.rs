//! Percentiles: exact values selected in place (also across the parts of merged aggregates),
//! or a DDSketch once there are too many.

use super::SKETCH_RELATIVE_ERROR;
use sketches_ddsketch::{Config as SketchConfig, DDSketch};

/// Durations of one endpoint: exact values, or a sketch once there are too many.
#[derive(Clone)]
pub(crate) enum Dist {
    Exact(Vec<f64>),
    /// Exact values of several merged aggregates, kept apart: concatenating them would only
    /// copy every value into new memory (page faults) before the percentile selection.
    Parts(Vec<Vec<f64>>),
    Sketch(Box<DDSketch>),
}

pub(crate) fn new_sketch() -> DDSketch {
    DDSketch::new(SketchConfig::new(SKETCH_RELATIVE_ERROR, 8192, 1e-9))
}

impl Dist {
    pub(super) fn make_sketch(&mut self) {
        let parts = match std::mem::replace(self, Dist::Parts(Vec::new())) {
            Dist::Exact(v) => vec![v],
            Dist::Parts(p) => p,
            sketch @ Dist::Sketch(_) => {
                *self = sketch;
                return;
            }
        };
        let mut s = new_sketch();
        for &x in parts.iter().flatten() {
            s.add(x);
        }
        *self = Dist::Sketch(Box::new(s));
    }
    /// The exact values' count (`None` for a sketch).
    fn exact_len(&self) -> Option<usize> {
        match self {
            Dist::Exact(v) => Some(v.len()),
            Dist::Parts(p) => Some(p.iter().map(Vec::len).sum()),
            Dist::Sketch(_) => None,
        }
    }
    fn into_parts(self) -> Vec<Vec<f64>> {
        match self {
            Dist::Exact(v) => vec![v],
            Dist::Parts(p) => p,
            Dist::Sketch(_) => Vec::new(),
        }
    }
    pub(super) fn merge(&mut self, o: Dist, exact_limit: usize) {
        match (self.exact_len(), o.exact_len()) {
            (Some(a), Some(b)) if a + b <= exact_limit => {
                let mut parts = std::mem::replace(self, Dist::Parts(Vec::new())).into_parts();
                parts.extend(o.into_parts().into_iter().filter(|v| !v.is_empty()));
                *self = Dist::Parts(parts);
            }
            _ => {
                let mut o = o;
                self.make_sketch();
                o.make_sketch();
                if let (Dist::Sketch(a), Dist::Sketch(b)) = (self, o) {
                    // Same configuration on both sides: merge cannot fail.
                    let _ = a.merge(&b);
                }
            }
        }
    }
    /// The Python design's percentile: `sorted(v)[min(int(n * p / 100), n - 1)]`.
    pub fn percentiles(&mut self, ps: &[u64]) -> Vec<f64> {
        let parts: Vec<&mut [f64]> = match self {
            Dist::Exact(v) => vec![&mut v[..]],
            Dist::Parts(p) => p.iter_mut().map(|v| &mut v[..]).collect(),
            Dist::Sketch(s) => {
                let n = s.count();
                return ps
                    .iter()
                    .map(|&p| {
                        if n == 0 {
                            return 0.0;
                        }
                        let idx = ((n as u64 * p / 100) as usize).min(n - 1);
                        let q = if idx + 1 >= n {
                            1.0
                        } else {
                            ((idx as f64 + 0.5) / (n as f64 - 1.0)).min(1.0)
                        };
                        s.quantile(q).ok().flatten().unwrap_or(0.0)
                    })
                    .collect();
            }
        };
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n == 0 {
            return vec![0.0; ps.len()];
        }
        let mut ranks: Vec<(usize, usize)> = ps
            .iter()
            .enumerate()
            .map(|(j, &p)| (((n as u64 * p / 100) as usize).min(n - 1), j))
            .collect();
        ranks.sort_unstable();
        let mut out = vec![0.0; ps.len()];
        select_ranks(parts, &ranks, &mut out);
        out
    }
    pub fn is_exact(&self) -> bool {
        !matches!(self, Dist::Sketch(_))
    }
}

/// `f64::total_cmp`'s order as integers.
#[inline]
fn total_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// The exact selection of every rank of `ranks` in `v` (ascending `(rank, slot)` pairs).
fn select_in(v: &mut [f64], ranks: &[(usize, usize)], out: &mut [f64]) {
    // In ascending rank order, each selection only searches the part above the previous
    // one (everything there is >= the previous value).
    let mut lo = 0;
    for &(idx, j) in ranks {
        out[j] = *v[lo..].select_nth_unstable_by(idx - lo, f64::total_cmp).1;
        lo = idx;
    }
}

/// Fewer values than this are selected the plain way.
const SAMPLED_SELECT_FROM: usize = 1 << 15;
/// Values sampled to find each rank's neighbourhood.
const SELECT_SAMPLE: usize = 8192;

/// For each `(rank, slot)` of `ranks` (ascending ranks in the `total_cmp` order of all of
/// `parts`' values taken together), `out[slot]` = the value of that rank: what sorting the
/// concatenation would put there, without concatenating (copying every value into new
/// memory) and without reordering all of them. A sample of the values gives each rank a key
/// interval that very likely holds it; one read-only pass counts the values below each
/// interval and collects those inside, and the rank is selected among those few. Should a
/// rank fall outside its interval after all, the values are joined and selected in full,
/// so the result is always exact.
fn select_ranks(parts: Vec<&mut [f64]>, ranks: &[(usize, usize)], out: &mut [f64]) {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    if n < SAMPLED_SELECT_FROM || ranks.is_empty() {
        select_joined(parts, n, ranks, out);
        return;
    }
    // An evenly spaced sample, sorted by key.
    let step = n / SELECT_SAMPLE;
    let mut sample: Vec<i64> = parts
        .iter()
        .flat_map(|p| p.iter().step_by(step))
        .map(|&x| total_key(x))
        .collect();
    sample.sort_unstable();
    let m = sample.len();
    // Each rank's interval: its position in the sample +- 4 standard deviations.
    let bounds: Vec<(i64, i64)> = ranks
        .iter()
        .map(|&(r, _)| {
            let q = r as f64 / n as f64;
            let sd = (m as f64 * q * (1.0 - q)).sqrt();
            let d = (4.0 * sd) as usize + 8;
            let at = (q * m as f64) as usize;
            let lo = at.saturating_sub(d);
            let hi = (at + d).min(m - 1);
            (
                if lo == 0 { i64::MIN } else { sample[lo] },
                if hi == m - 1 { i64::MAX } else { sample[hi] },
            )
        })
        .collect();
    let mut below = vec![0usize; ranks.len()];
    let mut inside: Vec<Vec<f64>> = vec![Vec::new(); ranks.len()];
    // Up to three ranks per pass (the report asks for three), counts in registers.
    for ((bounds, below), inside) in bounds
        .chunks(3)
        .zip(below.chunks_mut(3))
        .zip(inside.chunks_mut(3))
    {
        // A missing slot repeats the first interval; its results are not used.
        let at = |i: usize| bounds.get(i).unwrap_or(&bounds[0]);
        let lo = [at(0).0, at(1).0, at(2).0];
        // lo <= k <= hi as one unsigned comparison: a branch that is rarely taken (few
        // values are inside), while `k < lo` (for half the values, at random) is counted.
        let width = [0, 1, 2].map(|i| at(i).1.wrapping_sub(at(i).0) as u64);
        let mut count = [0usize; 3];
        let mut spare = [Vec::new(), Vec::new()];
        for p in &parts {
            for &x in p.iter() {
                let k = total_key(x);
                for i in 0..3 {
                    count[i] += usize::from(k < lo[i]);
                    if (k.wrapping_sub(lo[i]) as u64) <= width[i] {
                        match inside.get_mut(i) {
                            Some(v) => v.push(x),
                            None => spare[i - 1].push(x),
                        }
                    }
                }
            }
        }
        for (b, c) in below.iter_mut().zip(count) {
            *b = c;
        }
    }
    let found = ranks
        .iter()
        .enumerate()
        .all(|(i, &(r, _))| r >= below[i] && r - below[i] < inside[i].len());
    if !found {
        select_joined(parts, n, ranks, out);
        return;
    }
    for (i, &(r, j)) in ranks.iter().enumerate() {
        let v = &mut inside[i];
        out[j] = *v.select_nth_unstable_by(r - below[i], f64::total_cmp).1;
    }
}

/// Selection on the values joined into one slice (no copy for a single part).
fn select_joined(mut parts: Vec<&mut [f64]>, n: usize, ranks: &[(usize, usize)], out: &mut [f64]) {
    parts.retain(|p| !p.is_empty());
    if parts.len() == 1 {
        select_in(parts[0], ranks, out);
    } else {
        let mut joined = Vec::with_capacity(n);
        for p in &parts {
            joined.extend_from_slice(p);
        }
        select_in(&mut joined, ranks, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_rank(parts: &[Vec<f64>], rank: usize) -> f64 {
        let mut all: Vec<f64> = parts.iter().flatten().copied().collect();
        all.sort_by(f64::total_cmp);
        all[rank]
    }

    #[test]
    fn percentiles_of_separate_parts_equal_those_of_the_sorted_concatenation() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let n = SELECT_SAMPLE * 8;
        let mut cases: Vec<Vec<Vec<f64>>> = Vec::new();
        // Random durations in two and four parts of unequal size (the sampled path).
        let random: Vec<f64> = (0..3 * n)
            .map(|_| (next() % 10_000_000) as f64 / 1e6)
            .collect();
        cases.push(vec![random[..n].to_vec(), random[n..].to_vec()]);
        cases.push(random.chunks(n * 3 / 4 + 1).map(<[f64]>::to_vec).collect());
        // Few distinct values (intervals full of equal keys), with -0.0 and 0.0 apart.
        let few: Vec<f64> = (0..2 * n)
            .map(|_| [0.0, -0.0, 0.25, 1.5, 7.0][(next() % 5) as usize])
            .collect();
        cases.push(vec![few[..n / 3].to_vec(), few[n / 3..].to_vec()]);
        // Sorted and reversed parts.
        let mut asc = random[..2 * n].to_vec();
        asc.sort_by(f64::total_cmp);
        let desc: Vec<f64> = asc.iter().rev().copied().collect();
        cases.push(vec![asc, desc]);
        // Every sampled position holds a huge value: the sample is misleading, the
        // fallback selection must give the same answers.
        let biased: Vec<f64> = (0..n)
            .map(|i| {
                if i % 8 == 0 {
                    1e9 + i as f64
                } else {
                    (next() % 1000) as f64
                }
            })
            .collect();
        cases.push(vec![biased.clone(), biased]);
        // Below the sampling size, and single parts.
        cases.push(vec![random[..100].to_vec(), random[100..150].to_vec()]);
        cases.push(vec![random.clone()]);
        for (c, parts) in cases.into_iter().enumerate() {
            let total: usize = parts.iter().map(Vec::len).sum();
            let ps = [0, 1, 50, 95, 99, 100];
            let want: Vec<f64> = ps
                .iter()
                .map(|&p| sorted_rank(&parts, ((total as u64 * p / 100) as usize).min(total - 1)))
                .collect();
            let mut d = Dist::Parts(parts);
            let got = d.percentiles(&ps);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "case {c}");
        }
    }

    #[test]
    fn merging_exact_parts_keeps_every_value_and_switches_to_a_sketch_past_the_limit() {
        let mut a = Dist::Exact(vec![1.0, 2.0]);
        a.merge(Dist::Exact(vec![3.0]), 10);
        a.merge(Dist::Parts(vec![vec![4.0, 5.0], vec![]]), 10);
        assert_eq!(a.exact_len(), Some(5));
        assert_eq!(a.percentiles(&[0, 50, 99]), vec![1.0, 3.0, 5.0]);
        a.merge(Dist::Exact(vec![6.0; 6]), 10);
        assert!(!a.is_exact());
    }
}
