//! sacreBLEU's paired bootstrap resampling test (`sacrebleu --paired-bs`), reproduced so that
//! `traduire` reports the same p-values, means and 95% confidence intervals as sacreBLEU 2.6.0
//! (`_paired_bs_test`, `_bootstrap_resample`, `estimate_ci` and `_compute_p_value` in
//! sacrebleu/significance.py).
//!
//! Equal numbers need more than the same algorithm; this module mirrors numpy's arithmetic:
//! - the resamples come from numpy's generator ([`NumpyRng`]), seeded afresh for every system,
//!   so every system (and the baseline's own interval) sees the same resamples;
//! - the per-segment statistics become float32 and each resample's rows are summed in float32,
//!   row after row, as numpy's `.sum(0)` does (one column alone is summed pairwise);
//! - sacreBLEU then evaluates its metric formula on that float32 row, where numpy's promotion
//!   rules (NEP 50) keep some steps in float32: BLEU's n-gram precisions are float32 but its
//!   score a Python float, while chrF and TER scores come out float32. The formulas of these
//!   three metrics are therefore ported here with those types (see [`Formula`]), chosen by the
//!   metric's name and signature; any other metric is scored with its own
//!   [`Metric::score_from_stats`] as a float64;
//! - means, differences and comparisons run in the dtype of the score arrays (float32 for
//!   chrF and TER), means with numpy's pairwise summation.
//!
//! The real (not resampled) scores use [`Metric::score_from_stats`] on float64 sums, as
//! sacreBLEU scores the Python-int statistics.

use std::cmp::Ordering;
use std::ops::{Add, Div, Mul};

use super::metric::Metric;
use super::rng::NumpyRng;

/// The paired bootstrap test with sacreBLEU's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairedBootstrap {
    /// Number of bootstrap resamples (`--paired-bs-n`, 1000 by default).
    pub n_samples: usize,
    /// Seed of numpy's generator (`SACREBLEU_SEED`, 12345 by default). sacreBLEU treats 0 as
    /// "no seed" for the systems (fresh OS entropy) but seeds the baseline's interval with 0;
    /// here 0 is an ordinary seed everywhere.
    pub seed: u64,
}

impl Default for PairedBootstrap {
    /// sacreBLEU's defaults: 1000 resamples, seed 12345.
    fn default() -> Self {
        PairedBootstrap {
            n_samples: 1000,
            seed: 12345,
        }
    }
}

/// One system's result against the baseline, the fields of sacreBLEU's `Result`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedResult {
    /// The system's real corpus score.
    pub score: f64,
    /// The p-value of the absolute score difference to the baseline.
    pub p_value: f64,
    /// The mean of the system's resampled scores (a float32 value for chrF and TER, as in
    /// sacreBLEU).
    pub mean: f64,
    /// Half the width of the 95% interval of the system's resampled scores.
    pub ci: f64,
}

impl PairedBootstrap {
    /// Compares one system with the baseline as sacreBLEU's `_paired_bs_test` does for one
    /// metric: both are scored on the same `n_samples` resamples of their segments (drawn
    /// afresh from `seed`, so every system compared in one run sees the same resamples); the
    /// p-value is `(c + 1) / (n_samples + 1)`, where `c` counts resamples whose absolute score
    /// difference, minus the mean of those differences, exceeds (strictly) the real absolute
    /// difference; the mean and CI are those of the system's resampled scores.
    ///
    /// `baseline_stats` and `system_stats` hold one [`Metric::segment_stats`] row per segment.
    /// Errors when they are empty, differ in length or row width, or `n_samples` is 0.
    pub fn test(
        &self,
        metric: &dyn Metric,
        baseline_stats: &[Vec<f64>],
        system_stats: &[Vec<f64>],
    ) -> Result<PairedResult, String> {
        let width = check_stats(baseline_stats)?;
        if check_stats(system_stats)? != width || system_stats.len() != baseline_stats.len() {
            return Err(format!(
                "the system has {} segments of {} statistics, the baseline {} of {width}",
                system_stats.len(),
                system_stats[0].len(),
                baseline_stats.len()
            ));
        }
        if self.n_samples == 0 {
            return Err("the paired bootstrap test needs at least one resample".to_string());
        }
        let formula = Formula::of(metric);
        let baseline32 = to_float32(baseline_stats);
        let system32 = to_float32(system_stats);
        let mut rng = NumpyRng::new(self.seed);
        let mut baseline_scores = Vec::with_capacity(self.n_samples);
        let mut system_scores = Vec::with_capacity(self.n_samples);
        for _ in 0..self.n_samples {
            // Row by row is the same stream as numpy's (n_samples, n_segments) matrix.
            let row = rng.choice(baseline_stats.len(), baseline_stats.len());
            let baseline_sum = resampled_sum(&baseline32, &row, width);
            baseline_scores.push(formula.score(metric, &baseline_sum));
            let system_sum = resampled_sum(&system32, &row, width);
            system_scores.push(formula.score(metric, &system_sum));
        }
        let baseline_scores = ScoreArray::new(&baseline_scores);
        let system_scores = ScoreArray::new(&system_scores);
        let (mean, ci) = estimate_ci(&system_scores);

        let score = corpus_score(metric, system_stats);
        let real_difference = (corpus_score(metric, baseline_stats) - score).abs();
        let sample_diffs = system_scores.abs_diff(&baseline_scores);
        let centered = sample_diffs.minus(sample_diffs.mean());
        let above = centered.count_above(real_difference);
        let p_value = (above + 1) as f64 / (self.n_samples + 1) as f64;
        Ok(PairedResult {
            score,
            p_value,
            mean,
            ci,
        })
    }

    /// The mean and 95% CI half-width of one system's resampled scores, as sacreBLEU's
    /// `_bootstrap_resample` and `estimate_ci` compute them for the baseline row of
    /// `sacrebleu --paired-bs` (printed as `score (mean ± ci)`). Same resamples as
    /// [`PairedBootstrap::test`]. NaNs when `stats` is empty or ragged or `n_samples` is 0.
    pub fn bootstrap_ci(&self, metric: &dyn Metric, stats: &[Vec<f64>]) -> (f64, f64) {
        let width = match check_stats(stats) {
            Ok(width) if self.n_samples > 0 => width,
            _ => return (f64::NAN, f64::NAN),
        };
        let formula = Formula::of(metric);
        let stats32 = to_float32(stats);
        let mut rng = NumpyRng::new(self.seed);
        let scores: Vec<Num> = (0..self.n_samples)
            .map(|_| {
                let row = rng.choice(stats.len(), stats.len());
                formula.score(metric, &resampled_sum(&stats32, &row, width))
            })
            .collect();
        estimate_ci(&ScoreArray::new(&scores))
    }
}

/// The common row width of `stats`, or why they cannot be resampled.
fn check_stats(stats: &[Vec<f64>]) -> Result<usize, String> {
    let first = stats
        .first()
        .ok_or_else(|| "no segments to resample".to_string())?;
    if stats.iter().any(|row| row.len() != first.len()) {
        return Err("segments have different numbers of statistics".to_string());
    }
    Ok(first.len())
}

/// `np.array(stats, dtype='float32')`.
fn to_float32(stats: &[Vec<f64>]) -> Vec<Vec<f32>> {
    stats
        .iter()
        .map(|row| row.iter().map(|&v| v as f32).collect())
        .collect()
}

/// `stats[row].sum(0)` on the float32 matrix. numpy's reduction over the first axis adds whole
/// rows one after another; only a single column is one contiguous run, which numpy sums
/// pairwise.
fn resampled_sum(stats: &[Vec<f32>], row: &[usize], width: usize) -> Vec<f32> {
    if width == 1 {
        let column: Vec<f32> = row.iter().map(|&i| stats[i][0]).collect();
        return vec![pairwise_sum(&column, -0.0)];
    }
    let mut sum = vec![0.0f32; width];
    for &i in row {
        for (total, &value) in sum.iter_mut().zip(&stats[i]) {
            *total += value;
        }
    }
    sum
}

/// The real corpus score: sacreBLEU sums the Python statistics in order (`sum_of_lists`) and
/// scores the sums.
fn corpus_score(metric: &dyn Metric, stats: &[Vec<f64>]) -> f64 {
    let mut sums = vec![0.0; stats[0].len()];
    for row in stats {
        for (total, &value) in sums.iter_mut().zip(row) {
            *total += value;
        }
    }
    metric.score_from_stats(&sums)
}

/// numpy's pairwise summation (`@TYPE@_pairwise_sum` in loops_utils.h.src), which `sum` and
/// `mean` use on a contiguous run: eight interleaved accumulators per block of at most 128
/// values, blocks combined by halving. `neg_zero` is the type's -0.0, numpy's start value.
fn pairwise_sum<T: Copy + Add<Output = T>>(values: &[T], neg_zero: T) -> T {
    const BLOCK: usize = 128;
    let n = values.len();
    if n < 8 {
        return values.iter().fold(neg_zero, |acc, &v| acc + v);
    }
    if n <= BLOCK {
        let mut r = [neg_zero; 8];
        r.copy_from_slice(&values[..8]);
        let unrolled = n - n % 8;
        for chunk in values[8..unrolled].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc = *acc + v;
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        return values[unrolled..].iter().fold(res, |acc, &v| acc + v);
    }
    // Halve, keeping the first half a multiple of the unroll factor.
    let half = n / 2 - (n / 2) % 8;
    pairwise_sum(&values[..half], neg_zero) + pairwise_sum(&values[half..], neg_zero)
}

/// A number in sacreBLEU's formulas: a Python float (or numpy float64) or a numpy float32.
/// Arithmetic follows numpy 2's promotion (NEP 50): a Python float meeting a float32 is first
/// rounded to float32 and the operation runs in float32. Python ints in the formulas are
/// small and exact either way, so they are `Py` values too.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Py(f64),
    F32(f32),
}

impl Num {
    /// The value as a float64 (exact for float32).
    fn value(self) -> f64 {
        match self {
            Num::Py(v) => v,
            Num::F32(v) => f64::from(v),
        }
    }

    fn combine(self, other: Num, op64: fn(f64, f64) -> f64, op32: fn(f32, f32) -> f32) -> Num {
        match (self, other) {
            (Num::Py(a), Num::Py(b)) => Num::Py(op64(a, b)),
            (Num::F32(a), Num::F32(b)) => Num::F32(op32(a, b)),
            (Num::F32(a), Num::Py(b)) => Num::F32(op32(a, b as f32)),
            (Num::Py(a), Num::F32(b)) => Num::F32(op32(a as f32, b)),
        }
    }
}

impl Add for Num {
    type Output = Num;
    fn add(self, other: Num) -> Num {
        self.combine(other, |a, b| a + b, |a, b| a + b)
    }
}

impl Mul for Num {
    type Output = Num;
    fn mul(self, other: Num) -> Num {
        self.combine(other, |a, b| a * b, |a, b| a * b)
    }
}

impl Div for Num {
    type Output = Num;
    fn div(self, other: Num) -> Num {
        self.combine(other, |a, b| a / b, |a, b| a / b)
    }
}

/// sacreBLEU's `_compute_score_from_stats`, as it evaluates on a float32 numpy row, for the
/// metrics `--paired-bs` offers. Their parameters come from the metric's name and signature
/// (sacreBLEU's formats: `BLEU`, `chrF2`/`chrF2++`, `TER`; `smooth:exp`, `eff:yes`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Formula {
    /// BLEU (`compute_bleu`): float32 precisions, Python-float score.
    Bleu {
        smooth: Smooth,
        effective_order: bool,
    },
    /// chrF/chrF++ (`_compute_f_score`): float32 score.
    Chrf { beta: u32, eps_smoothing: bool },
    /// TER: float32 score.
    Ter,
    /// Any other metric: its own `score_from_stats`, as a float64.
    Other,
}

/// BLEU's smoothing methods with their values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Smooth {
    None,
    Floor(f64),
    AddK(f64),
    Exp,
}

impl Formula {
    /// The formula sacreBLEU would use for `metric`.
    fn of(metric: &dyn Metric) -> Formula {
        let name = metric.name();
        let signature = metric.signature(1);
        // Signature fields look like `key:value`, separated by `|`.
        let field = |key: &str| {
            signature.split('|').find_map(|part| {
                let (k, v) = part.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        if name == "BLEU" {
            let smooth = field("smooth").unwrap_or_else(|| "exp".to_string());
            // Methods with a value print it in brackets: `floor[0.10]`, `add-k[1.00]`.
            let (method, value) = match smooth.split_once('[') {
                Some((method, rest)) => (method, rest.trim_end_matches(']').parse().ok()),
                None => (smooth.as_str(), None),
            };
            let smooth = match method {
                "none" => Smooth::None,
                "floor" => Smooth::Floor(value.unwrap_or(0.1)),
                "add-k" => Smooth::AddK(value.unwrap_or(1.0)),
                _ => Smooth::Exp,
            };
            let effective_order = field("eff").is_some_and(|v| v == "yes");
            return Formula::Bleu {
                smooth,
                effective_order,
            };
        }
        if let Some(rest) = name.strip_prefix("chrF") {
            let beta = rest.trim_end_matches('+').parse().unwrap_or(2);
            // chrF's `eff:no` means eps smoothing instead of effective-order averaging.
            let eps_smoothing = field("eff").is_some_and(|v| v == "no");
            return Formula::Chrf {
                beta,
                eps_smoothing,
            };
        }
        if name == "TER" {
            return Formula::Ter;
        }
        Formula::Other
    }

    /// The score sacreBLEU computes from one resample's float32 sums. A row whose length does
    /// not fit the formula is left to the metric.
    fn score(self, metric: &dyn Metric, stats: &[f32]) -> Num {
        let n = stats.len();
        match self {
            Formula::Bleu {
                smooth,
                effective_order,
            } if n >= 4 && n.is_multiple_of(2) => bleu_float32(stats, smooth, effective_order),
            Formula::Chrf {
                beta,
                eps_smoothing,
            } if n > 0 && n.is_multiple_of(3) => chrf_float32(stats, beta, eps_smoothing),
            Formula::Ter if n == 2 => ter_float32(stats),
            _ => {
                let stats: Vec<f64> = stats.iter().map(|&v| f64::from(v)).collect();
                Num::Py(metric.score_from_stats(&stats))
            }
        }
    }
}

/// sacreBLEU's `BLEU.compute_bleu` on `[sys_len, ref_len, correct.., total..]` float32 sums.
fn bleu_float32(stats: &[f32], smooth: Smooth, effective_order: bool) -> Num {
    let order = (stats.len() - 2) / 2;
    let mut correct: Vec<Num> = stats[2..2 + order].iter().map(|&v| Num::F32(v)).collect();
    let mut total: Vec<Num> = stats[2 + order..].iter().map(|&v| Num::F32(v)).collect();
    // `int(stats[0])` truncates; the lengths then divide as Python ints.
    let sys_len = stats[0].trunc() as f64;
    let ref_len = stats[1].trunc() as f64;
    let mut bp = 1.0;
    if sys_len < ref_len {
        bp = if sys_len > 0.0 {
            (1.0 - ref_len / sys_len).exp()
        } else {
            0.0
        };
    }
    if correct.iter().all(|c| c.value() == 0.0) {
        return Num::Py(0.0);
    }
    let mut precisions = vec![Num::Py(0.0); order];
    let mut smooth_mteval = Num::Py(1.0);
    let mut eff_order = order;
    for n in 0..order {
        if let Smooth::AddK(k) = smooth {
            if n > 0 {
                correct[n] = correct[n] + Num::Py(k);
                total[n] = total[n] + Num::Py(k);
            }
        }
        if total[n].value() == 0.0 {
            break;
        }
        if effective_order {
            eff_order = n + 1;
        }
        if correct[n].value() == 0.0 {
            match smooth {
                Smooth::Exp => {
                    smooth_mteval = smooth_mteval * Num::Py(2.0);
                    precisions[n] = Num::Py(100.0) / (smooth_mteval * total[n]);
                }
                Smooth::Floor(value) => precisions[n] = Num::Py(100.0 * value) / total[n],
                Smooth::None | Smooth::AddK(_) => {}
            }
        } else {
            precisions[n] = Num::Py(100.0) * correct[n] / total[n];
        }
    }
    // `my_log` floors log(0) to -9999999999; Python's sum adds in order.
    let log_sum = precisions[..eff_order]
        .iter()
        .map(|p| match p.value() {
            0.0 => -9_999_999_999.0,
            v => v.ln(),
        })
        .fold(0.0, |acc, v| acc + v);
    Num::Py(bp * (log_sum / eff_order as f64).exp())
}

/// sacreBLEU's `CHRF._compute_f_score` on `[hyp, ref, match]` float32 sums per n-gram order.
fn chrf_float32(stats: &[f32], beta: u32, eps_smoothing: bool) -> Num {
    let eps = Num::Py(1e-16);
    let factor = Num::Py(f64::from(beta * beta));
    let one_plus_factor = Num::Py(f64::from(beta * beta + 1));
    let order = stats.len() / 3;
    let mut score = Num::Py(0.0);
    let mut avg_prec = Num::Py(0.0);
    let mut avg_rec = Num::Py(0.0);
    let mut effective_order = 0u32;
    for triple in stats.chunks_exact(3) {
        let (n_hyp, n_ref, n_match) = (
            Num::F32(triple[0]),
            Num::F32(triple[1]),
            Num::F32(triple[2]),
        );
        let prec = if triple[0] > 0.0 {
            n_match / n_hyp
        } else {
            eps
        };
        let rec = if triple[1] > 0.0 {
            n_match / n_ref
        } else {
            eps
        };
        let denom = factor * prec + rec;
        score = score
            + if denom.value() > 0.0 {
                one_plus_factor * prec * rec / denom
            } else {
                eps
            };
        if triple[0] > 0.0 && triple[1] > 0.0 {
            avg_prec = avg_prec + prec;
            avg_rec = avg_rec + rec;
            effective_order += 1;
        }
    }
    if eps_smoothing {
        return Num::Py(100.0) * score / Num::Py(order as f64);
    }
    if effective_order == 0 {
        avg_prec = Num::Py(0.0);
        avg_rec = Num::Py(0.0);
    } else {
        avg_prec = avg_prec / Num::Py(f64::from(effective_order));
        avg_rec = avg_rec / Num::Py(f64::from(effective_order));
    }
    if (avg_prec + avg_rec).value() == 0.0 {
        return Num::Py(0.0);
    }
    let score = one_plus_factor * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
    Num::Py(100.0) * score
}

/// sacreBLEU's `TER._compute_score_from_stats` on `[edits, ref_length]` float32 sums.
fn ter_float32(stats: &[f32]) -> Num {
    let score = if stats[1] > 0.0 {
        Num::F32(stats[0]) / Num::F32(stats[1])
    } else if stats[0] > 0.0 {
        Num::Py(1.0)
    } else {
        Num::Py(0.0)
    };
    Num::Py(100.0) * score
}

/// A 1-D numpy array of scores: `np.array(scores)` is float32 when every score is a float32,
/// float64 otherwise. Values are kept as float64 (exact for float32).
#[derive(Debug, Clone, PartialEq)]
struct ScoreArray {
    values: Vec<f64>,
    float32: bool,
}

impl ScoreArray {
    fn new(scores: &[Num]) -> ScoreArray {
        ScoreArray {
            values: scores.iter().map(|s| s.value()).collect(),
            float32: scores.iter().all(|s| matches!(s, Num::F32(_))),
        }
    }

    /// `array.mean()`: a pairwise sum in the array's dtype; numpy divides a float32 sum by the
    /// count as float64 and rounds the quotient back to float32.
    fn mean(&self) -> f64 {
        let n = self.values.len() as f64;
        if self.float32 {
            let values: Vec<f32> = self.values.iter().map(|&v| v as f32).collect();
            (f64::from(pairwise_sum(&values, -0.0f32)) / n) as f32 as f64
        } else {
            pairwise_sum(&self.values, -0.0) / n
        }
    }

    /// `np.abs(self - other)`, float32 only when both are.
    fn abs_diff(&self, other: &ScoreArray) -> ScoreArray {
        let float32 = self.float32 && other.float32;
        let values = self
            .values
            .iter()
            .zip(&other.values)
            .map(|(&a, &b)| {
                if float32 {
                    f64::from((a as f32 - b as f32).abs())
                } else {
                    (a - b).abs()
                }
            })
            .collect();
        ScoreArray { values, float32 }
    }

    /// `self - scalar`, with the scalar of the array's own dtype (its mean).
    fn minus(&self, scalar: f64) -> ScoreArray {
        let values = self
            .values
            .iter()
            .map(|&v| {
                if self.float32 {
                    f64::from(v as f32 - scalar as f32)
                } else {
                    v - scalar
                }
            })
            .collect();
        ScoreArray {
            values,
            float32: self.float32,
        }
    }

    /// `np.sum(self > threshold)`: a Python-float threshold is rounded to float32 first when
    /// the array is float32.
    fn count_above(&self, threshold: f64) -> usize {
        if self.float32 {
            let threshold = threshold as f32;
            self.values
                .iter()
                .filter(|&&v| v as f32 > threshold)
                .count()
        } else {
            self.values.iter().filter(|&&v| v > threshold).count()
        }
    }
}

/// sacreBLEU's `estimate_ci`: the mean of the sorted scores and half the distance between the
/// scores at `n / 40` and `n - n / 40 - 1` (a 95% interval), in the array's dtype.
fn estimate_ci(scores: &ScoreArray) -> (f64, f64) {
    let mut sorted = scores.clone();
    // np.sort puts NaNs last.
    sorted.values.sort_by(|a, b| {
        a.is_nan()
            .cmp(&b.is_nan())
            .then(a.partial_cmp(b).unwrap_or(Ordering::Equal))
    });
    let n = sorted.values.len();
    let lower = sorted.values[n / 40];
    let upper = sorted.values[n - n / 40 - 1];
    let ci = if sorted.float32 {
        f64::from(0.5f32 * (upper as f32 - lower as f32))
    } else {
        0.5 * (upper - lower)
    };
    // The mean is taken over the sorted array, which fixes the pairwise summation's order.
    (sorted.mean(), ci)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    use crate::eval::rng::tests::fixture;

    /// A float the fixture writes as its Python repr, which parses back exactly.
    fn exact(value: &Value) -> f64 {
        value
            .as_str()
            .expect("a float string")
            .parse()
            .expect("a float")
    }

    fn exacts(value: &Value) -> Vec<f64> {
        value.as_array().unwrap().iter().map(exact).collect()
    }

    fn stats(value: &Value) -> Vec<Vec<f64>> {
        let rows = value.as_array().unwrap();
        rows.iter()
            .map(|row| {
                let row = row.as_array().unwrap();
                row.iter().map(|v| v.as_f64().unwrap()).collect()
            })
            .collect()
    }

    /// A stand-in for the real metrics: sacreBLEU's BLEU (exp smoothing), chrF (effective
    /// order) and TER formulas on Python numbers (float64), as sacreBLEU scores the real corpus
    /// statistics. The resampled scores come from the float32 ports in [`Formula`], chosen
    /// through `name` and `signature`.
    struct SacreMetric {
        name: String,
        signature: String,
    }

    impl Metric for SacreMetric {
        fn name(&self) -> String {
            self.name.clone()
        }

        fn segment_stats(&self, _hyp: &str, _refs: &[&str]) -> Vec<f64> {
            Vec::new()
        }

        fn score_from_stats(&self, stats: &[f64]) -> f64 {
            if self.name == "BLEU" {
                python_bleu(stats)
            } else if self.name == "TER" {
                100.0 * (stats[0] / stats[1])
            } else {
                python_chrf(stats, 2.0)
            }
        }

        fn format_from_stats(&self, stats: &[f64]) -> String {
            format!("{} = {:.2}", self.name, self.score_from_stats(stats))
        }

        fn signature(&self, _nrefs: usize) -> String {
            self.signature.clone()
        }
    }

    /// `compute_bleu` with exp smoothing on Python ints.
    fn python_bleu(stats: &[f64]) -> f64 {
        let order = (stats.len() - 2) / 2;
        let (sys_len, ref_len) = (stats[0], stats[1]);
        let (correct, total) = (&stats[2..2 + order], &stats[2 + order..]);
        let bp = if sys_len < ref_len {
            (1.0 - ref_len / sys_len).exp()
        } else {
            1.0
        };
        if correct.iter().all(|&c| c == 0.0) {
            return 0.0;
        }
        let mut smooth_mteval = 1.0;
        let mut log_sum = 0.0;
        for n in 0..order {
            let precision = if correct[n] == 0.0 {
                smooth_mteval *= 2.0;
                100.0 / (smooth_mteval * total[n])
            } else {
                100.0 * correct[n] / total[n]
            };
            log_sum += precision.ln();
        }
        bp * (log_sum / order as f64).exp()
    }

    /// `_compute_f_score` (effective-order averaging) on Python ints.
    fn python_chrf(stats: &[f64], beta: f64) -> f64 {
        let factor = beta * beta;
        let (mut avg_prec, mut avg_rec, mut effective_order) = (0.0, 0.0, 0.0);
        for triple in stats.chunks_exact(3) {
            let (n_hyp, n_ref, n_match) = (triple[0], triple[1], triple[2]);
            if n_hyp > 0.0 && n_ref > 0.0 {
                avg_prec += n_match / n_hyp;
                avg_rec += n_match / n_ref;
                effective_order += 1.0;
            }
        }
        if effective_order == 0.0 {
            return 0.0;
        }
        avg_prec /= effective_order;
        avg_rec /= effective_order;
        if avg_prec + avg_rec == 0.0 {
            return 0.0;
        }
        let score = (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
        100.0 * score
    }

    #[test]
    fn paired_results_match_sacrebleu() {
        let fixture = fixture();
        let mut checked = 0;
        for case in fixture["paired"].as_array().unwrap() {
            let bootstrap = PairedBootstrap {
                n_samples: case["n_samples"].as_u64().unwrap() as usize,
                seed: case["seed"].as_u64().unwrap(),
            };
            for entry in case["metrics"].as_array().unwrap() {
                let metric = SacreMetric {
                    name: entry["name"].as_str().unwrap().to_string(),
                    signature: entry["signature"].as_str().unwrap().to_string(),
                };
                let what = format!("{} {}", case["name"], metric.name);
                let baseline = &entry["baseline"];
                let baseline_stats = stats(&baseline["stats"]);
                let (mean, ci) = bootstrap.bootstrap_ci(&metric, &baseline_stats);
                assert_eq!(mean, exact(&baseline["mean"]), "{what} baseline mean");
                assert_eq!(ci, exact(&baseline["ci"]), "{what} baseline ci");
                for system in entry["systems"].as_array().unwrap() {
                    let what = format!("{what} {}", system["name"]);
                    let result = bootstrap
                        .test(&metric, &baseline_stats, &stats(&system["stats"]))
                        .unwrap();
                    assert_eq!(result.p_value, exact(&system["p_value"]), "{what} p");
                    assert_eq!(result.mean, exact(&system["mean"]), "{what} mean");
                    assert_eq!(result.ci, exact(&system["ci"]), "{what} ci");
                    let score = exact(&system["score"]);
                    assert!(
                        (result.score - score).abs() <= 1e-12 * score.abs(),
                        "{what} score {} vs {score}",
                        result.score
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 18, "only {checked} comparisons");
    }

    #[test]
    fn means_match_numpy() {
        for case in fixture()["mean"].as_array().unwrap() {
            let values = exacts(&case["values"]);
            let float32 = case["dtype"] == "float32";
            let scores: Vec<Num> = values
                .iter()
                .map(|&v| {
                    if float32 {
                        Num::F32(v as f32)
                    } else {
                        Num::Py(v)
                    }
                })
                .collect();
            let mean = ScoreArray::new(&scores).mean();
            assert_eq!(
                mean,
                exact(&case["mean"]),
                "{} x{}",
                case["dtype"],
                values.len()
            );
        }
    }

    #[test]
    fn resampled_sums_match_numpy() {
        for case in fixture()["sum0"].as_array().unwrap() {
            let rows: Vec<Vec<f32>> = case["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| exacts(row).into_iter().map(|v| v as f32).collect())
                .collect();
            let order: Vec<usize> = (0..rows.len()).collect();
            let sum = resampled_sum(&rows, &order, rows[0].len());
            let expected: Vec<f32> = exacts(&case["sum"]).into_iter().map(|v| v as f32).collect();
            assert_eq!(sum, expected, "{}x{}", rows.len(), rows[0].len());
        }
    }

    /// A metric sacreBLEU does not know: the mean of the first statistic.
    struct MeanMetric;

    impl Metric for MeanMetric {
        fn name(&self) -> String {
            "Mean".to_string()
        }
        fn segment_stats(&self, _hyp: &str, _refs: &[&str]) -> Vec<f64> {
            Vec::new()
        }
        fn score_from_stats(&self, stats: &[f64]) -> f64 {
            stats[0] / stats[1]
        }
        fn format_from_stats(&self, stats: &[f64]) -> String {
            format!("{:.2}", self.score_from_stats(stats))
        }
        fn signature(&self, nrefs: usize) -> String {
            format!("nrefs:{nrefs}")
        }
    }

    #[test]
    fn other_metrics_use_their_own_formula() {
        let bootstrap = PairedBootstrap {
            n_samples: 200,
            seed: 1,
        };
        let baseline: Vec<Vec<f64>> = (0..50).map(|i| vec![f64::from(i % 7), 1.0]).collect();
        let system: Vec<Vec<f64>> = (0..50).map(|i| vec![f64::from(i % 5), 1.0]).collect();
        let result = bootstrap.test(&MeanMetric, &baseline, &system).unwrap();
        assert_eq!(result.score, 2.0);
        assert!(result.p_value > 0.0 && result.p_value <= 1.0);
        assert!((result.mean - 2.0).abs() < 0.3, "{result:?}");
        // Same seed, same resamples: the same answer twice.
        assert_eq!(bootstrap.test(&MeanMetric, &baseline, &system), Ok(result));
        // Against itself every centred difference is 0, none strictly above the real 0: the
        // smallest p-value, as sacreBLEU reports too.
        let same = bootstrap.test(&MeanMetric, &system, &system).unwrap();
        assert_eq!(same.p_value, 1.0 / 201.0);
        let (mean, ci) = bootstrap.bootstrap_ci(&MeanMetric, &system);
        assert_eq!((mean, ci), (result.mean, result.ci));
    }

    #[test]
    fn invalid_input_is_an_error() {
        let bootstrap = PairedBootstrap::default();
        let one = vec![vec![1.0, 2.0]];
        let two = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        assert!(bootstrap.test(&MeanMetric, &[], &[]).is_err());
        assert!(bootstrap.test(&MeanMetric, &one, &two).is_err());
        assert!(bootstrap.test(&MeanMetric, &one, &[vec![1.0]]).is_err());
        let none = PairedBootstrap {
            n_samples: 0,
            seed: 1,
        };
        assert!(none.test(&MeanMetric, &one, &one).is_err());
        assert!(bootstrap.bootstrap_ci(&MeanMetric, &[]).0.is_nan());
    }

    #[test]
    fn formulas_follow_name_and_signature() {
        let metric = |name: &str, signature: &str| SacreMetric {
            name: name.to_string(),
            signature: signature.to_string(),
        };
        let bleu = metric(
            "BLEU",
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]",
        );
        assert_eq!(
            Formula::of(&bleu),
            Formula::Bleu {
                smooth: Smooth::Floor(0.1),
                effective_order: false
            }
        );
        let chrf = metric("chrF3++", "nrefs:1|case:mixed|eff:no|nc:6|nw:2");
        assert_eq!(
            Formula::of(&chrf),
            Formula::Chrf {
                beta: 3,
                eps_smoothing: true
            }
        );
        assert_eq!(Formula::of(&metric("TER", "")), Formula::Ter);
        assert_eq!(Formula::of(&MeanMetric), Formula::Other);
    }
}
