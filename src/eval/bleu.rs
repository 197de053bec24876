//! BLEU (Papineni et al., 2002) as sacreBLEU 2.6.0 computes it (`sacrebleu/metrics/bleu.py`,
//! Apache-2.0), ported for bit-for-bit equal scores: same statistics, same float operations in
//! the same order.

use std::collections::HashMap;

use super::metric::{fmt_fixed, stat, Metric, VERSION};
use super::tokenize::{py_lower, py_rstrip, py_split, BleuTokenizer};

/// BLEU's smoothing of zero n-gram precisions (sacreBLEU `smooth_method` / `smooth_value`,
/// after Chen and Cherry, 2014).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Smooth {
    /// `exp`, sacreBLEU's default (NIST's mteval-v13a): the k-th zero precision is
    /// `100 / (2^k * total)`.
    #[default]
    Exp,
    /// `floor`: a zero precision is `100 * value / total` (sacreBLEU's default value 0.1).
    Floor(f64),
    /// `add-k`: adds `value` to the matches and totals of every order above 1 (default 1).
    AddK(f64),
    /// `none`: no smoothing.
    None,
}

impl Smooth {
    /// `floor` with sacreBLEU's default value, 0.1.
    pub const FLOOR_DEFAULT: Smooth = Smooth::Floor(0.1);
    /// `add-k` with sacreBLEU's default value, 1.
    pub const ADD_K_DEFAULT: Smooth = Smooth::AddK(1.0);

    /// The smoothing of sacreBLEU's `smooth_method` name, with its default value.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "exp" => Ok(Smooth::Exp),
            "floor" => Ok(Smooth::FLOOR_DEFAULT),
            "add-k" => Ok(Smooth::ADD_K_DEFAULT),
            "none" => Ok(Smooth::None),
            _ => Err(format!(
                "unknown BLEU smoothing {name:?}; supported: exp, floor, add-k, none"
            )),
        }
    }

    /// sacreBLEU's method name (`exp`, `floor`, `add-k`, `none`).
    pub fn name(&self) -> &'static str {
        match self {
            Smooth::Exp => "exp",
            Smooth::Floor(_) => "floor",
            Smooth::AddK(_) => "add-k",
            Smooth::None => "none",
        }
    }

    /// The signature's `smooth:` value: the name, and for `floor` and `add-k` the value as
    /// `[0.10]` (sacreBLEU `BLEUSignature`).
    pub fn signature(&self) -> String {
        match self {
            Smooth::Floor(v) | Smooth::AddK(v) => format!("{}[{}]", self.name(), fmt_fixed(*v, 2)),
            Smooth::Exp | Smooth::None => self.name().to_string(),
        }
    }
}

/// sacreBLEU's `BLEU` metric with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// The tokenizer applied to hypotheses and references (default `13a`).
    pub tokenizer: BleuTokenizer,
    /// Lowercase hypotheses and references first (`--lowercase`).
    pub lowercase: bool,
    /// Smoothing of zero precisions (default `exp`).
    pub smooth: Smooth,
    /// Stop at the highest n-gram order with a non-zero total (sentence-level BLEU); false for
    /// corpus BLEU, sacreBLEU's default.
    pub effective_order: bool,
    /// The highest n-gram order (default 4).
    pub max_ngram_order: usize,
}

impl Default for Bleu {
    fn default() -> Self {
        Bleu {
            tokenizer: BleuTokenizer::Thirteen,
            lowercase: false,
            smooth: Smooth::Exp,
            effective_order: false,
            max_ngram_order: 4,
        }
    }
}

/// A corpus BLEU result (sacreBLEU `BLEUScore`).
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    /// The score, 0 to 100.
    pub score: f64,
    /// Matching n-grams per order (after `add-k` smoothing, as sacreBLEU reports them).
    pub counts: Vec<f64>,
    /// Hypothesis n-grams per order (after `add-k` smoothing).
    pub totals: Vec<f64>,
    /// The n-gram precisions, 0 to 100.
    pub precisions: Vec<f64>,
    /// The brevity penalty.
    pub bp: f64,
    /// Total hypothesis length in tokens.
    pub sys_len: u64,
    /// Total (closest) reference length in tokens.
    pub ref_len: u64,
}

impl BleuScore {
    /// `sys_len / ref_len`, 0 when there is no reference token.
    pub fn ratio(&self) -> f64 {
        if self.ref_len > 0 {
            self.sys_len as f64 / self.ref_len as f64
        } else {
            0.0
        }
    }

    /// What `str(BLEUScore)` prints, e.g.
    /// `BLEU = 23.45 60.0/30.0/20.0/10.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)`.
    pub fn format(&self) -> String {
        let precisions: Vec<String> = self.precisions.iter().map(|&p| fmt_fixed(p, 1)).collect();
        format!(
            "BLEU = {} {} (BP = {} ratio = {} hyp_len = {} ref_len = {})",
            fmt_fixed(self.score, 2),
            precisions.join("/"),
            fmt_fixed(self.bp, 3),
            fmt_fixed(self.ratio(), 3),
            self.sys_len,
            self.ref_len
        )
    }
}

/// sacreBLEU `my_log`: the natural log, with log(0) floored to -9999999999.
fn my_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// Counts every n-gram of `tokens` with `1 <= n <= max_order` (sacreBLEU
/// `extract_all_word_ngrams`; a slice of tokens is the tuple key).
fn count_ngrams<'a>(tokens: &'a [&'a str], max_order: usize) -> HashMap<&'a [&'a str], u64> {
    let mut counts = HashMap::new();
    for n in 1..=max_order {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

impl Bleu {
    /// Corpus BLEU with a tokenizer and case option, the other options at sacreBLEU's
    /// defaults (`exp` smoothing, no effective order, 4-grams).
    pub fn new(tokenizer: BleuTokenizer, lowercase: bool) -> Self {
        Bleu {
            tokenizer,
            lowercase,
            ..Bleu::default()
        }
    }

    /// sacreBLEU `BLEU._preprocess_segment`: optional lowercasing, then the tokenizer on the
    /// right-stripped line.
    pub fn preprocess(&self, line: &str) -> String {
        if self.lowercase {
            self.tokenizer.tokenize(py_rstrip(&py_lower(line)))
        } else {
            self.tokenizer.tokenize(py_rstrip(line))
        }
    }

    /// sacreBLEU `BLEU._get_closest_ref_len`: the reference length closest to the hypothesis
    /// length, the shorter one on ties.
    fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
        let mut closest: Option<(usize, usize)> = None; // (diff, len)
        for &ref_len in ref_lens {
            let diff = hyp_len.abs_diff(ref_len);
            closest = match closest {
                None => Some((diff, ref_len)),
                Some((d, _)) if diff < d => Some((diff, ref_len)),
                Some((d, l)) if diff == d && ref_len < l => Some((d, ref_len)),
                keep => keep,
            };
        }
        closest.map_or(0, |(_, len)| len)
    }

    /// The statistics row of one segment (sacreBLEU `_extract_reference_info` then
    /// `_compute_segment_statistics`): `[hyp_len, ref_len, correct_1..N, total_1..N]`, with the
    /// closest reference length and n-gram counts clipped by their maximum over references.
    /// No reference at all counts as one empty reference.
    pub fn stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64> {
        let order = self.max_ngram_order;
        let refs: Vec<String> = if refs.is_empty() {
            vec![String::new()]
        } else {
            refs.iter().map(|r| self.preprocess(r)).collect()
        };
        let ref_tokens: Vec<Vec<&str>> = refs.iter().map(|r| py_split(r).collect()).collect();
        let mut ref_ngrams: HashMap<&[&str], u64> = HashMap::new();
        let mut ref_lens = Vec::with_capacity(ref_tokens.len());
        for tokens in &ref_tokens {
            ref_lens.push(tokens.len());
            for (gram, count) in count_ngrams(tokens, order) {
                let max = ref_ngrams.entry(gram).or_insert(0);
                *max = (*max).max(count);
            }
        }

        let hyp = self.preprocess(hyp);
        let hyp_tokens: Vec<&str> = py_split(&hyp).collect();
        let ref_len = Self::closest_ref_len(hyp_tokens.len(), &ref_lens);
        let mut correct = vec![0u64; order];
        let mut total = vec![0u64; order];
        for (gram, count) in count_ngrams(&hyp_tokens, order) {
            let n = gram.len() - 1;
            total[n] += count;
            if let Some(&ref_count) = ref_ngrams.get(gram) {
                correct[n] += count.min(ref_count);
            }
        }

        let mut row = Vec::with_capacity(2 + 2 * order);
        row.push(hyp_tokens.len() as f64);
        row.push(ref_len as f64);
        row.extend(correct.iter().map(|&c| c as f64));
        row.extend(total.iter().map(|&t| t as f64));
        row
    }

    /// The corpus result from statistics summed over segments (sacreBLEU
    /// `_compute_score_from_stats` and `compute_bleu`). Missing columns count as zeros.
    pub fn score_stats(&self, stats: &[f64]) -> BleuScore {
        let order = self.max_ngram_order;
        // int(stats[0]), int(stats[1]): the sums are whole numbers.
        let sys_len = stat(stats, 0).max(0.0) as u64;
        let ref_len = stat(stats, 1).max(0.0) as u64;
        let mut correct: Vec<f64> = (0..order).map(|n| stat(stats, 2 + n)).collect();
        let mut total: Vec<f64> = (0..order).map(|n| stat(stats, 2 + order + n)).collect();

        let mut bp = 1.0;
        if sys_len < ref_len {
            bp = if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            };
        }

        let mut precisions = vec![0.0; order];
        // Early stop when nothing matches (sacreBLEU #141): the score is 0 whatever smoothing.
        if !correct.iter().any(|&c| c != 0.0) {
            return BleuScore {
                score: 0.0,
                counts: correct,
                totals: total,
                precisions,
                bp,
                sys_len,
                ref_len,
            };
        }

        let mut smooth_mteval = 1.0;
        let mut eff_order = order;
        for n in 1..=order {
            if let Smooth::AddK(k) = self.smooth {
                if n > 1 {
                    correct[n - 1] += k;
                    total[n - 1] += k;
                }
            }
            if total[n - 1] == 0.0 {
                break;
            }
            if self.effective_order {
                eff_order = n;
            }
            if correct[n - 1] == 0.0 {
                match self.smooth {
                    Smooth::Exp => {
                        smooth_mteval *= 2.0;
                        precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1]);
                    }
                    Smooth::Floor(v) => precisions[n - 1] = 100.0 * v / total[n - 1],
                    Smooth::AddK(_) | Smooth::None => {}
                }
            } else {
                precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
            }
        }

        // Python's sum() of floats: plain left-to-right additions from 0.
        let log_sum = precisions[..eff_order]
            .iter()
            .fold(0.0, |acc, &p| acc + my_log(p));
        let score = bp * (log_sum / eff_order as f64).exp();
        BleuScore {
            score,
            counts: correct,
            totals: total,
            precisions,
            bp,
            sys_len,
            ref_len,
        }
    }
}

impl Metric for Bleu {
    fn name(&self) -> String {
        "BLEU".to_string()
    }

    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64> {
        self.stats(hyp, refs)
    }

    fn score_from_stats(&self, stats: &[f64]) -> f64 {
        self.score_stats(stats).score
    }

    fn format_from_stats(&self, stats: &[f64]) -> String {
        self.score_stats(stats).format()
    }

    /// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0` (sacreBLEU
    /// `BLEUSignature`, long form).
    fn signature(&self, nrefs: usize) -> String {
        format!(
            "nrefs:{nrefs}|case:{}|eff:{}|tok:{}|smooth:{}|version:{VERSION}",
            if self.lowercase { "lc" } else { "mixed" },
            if self.effective_order { "yes" } else { "no" },
            self.tokenizer.name(),
            self.smooth.signature()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(bleu: &Bleu, pairs: &[(&str, &str)]) -> Vec<f64> {
        let rows: Vec<Vec<f64>> = pairs.iter().map(|(h, r)| bleu.stats(h, &[r])).collect();
        super::super::metric::sum_stats(&rows)
    }

    #[test]
    fn identical_is_100() {
        let bleu = Bleu::default();
        let stats = corpus(
            &bleu,
            &[("The cat sat on the mat.", "The cat sat on the mat.")],
        );
        // exp(ln 100) in f64, as sacreBLEU 2.6.0 computes it (it prints 100.00).
        assert_eq!(bleu.score_from_stats(&stats), 100.00000000000004);
        assert_eq!(
            bleu.format_from_stats(&stats),
            "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)"
        );
    }

    #[test]
    fn statistics_row_layout() {
        let bleu = Bleu::default();
        // hyp: "the the the" (3 tokens); ref: "the cat" -> 1-grams clipped to 1 match.
        assert_eq!(
            bleu.stats("the the the", &["the cat"]),
            [3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 3.0, 2.0, 1.0, 0.0]
        );
    }

    #[test]
    fn closest_reference_length_prefers_shorter_on_ties() {
        assert_eq!(Bleu::closest_ref_len(5, &[6, 4]), 4);
        assert_eq!(Bleu::closest_ref_len(5, &[4, 6]), 4);
        assert_eq!(Bleu::closest_ref_len(5, &[9, 6, 5]), 5);
        assert_eq!(Bleu::closest_ref_len(5, &[]), 0);
    }

    #[test]
    fn signatures() {
        let mut bleu = Bleu::default();
        assert_eq!(
            bleu.signature(1),
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
        );
        bleu.smooth = Smooth::FLOOR_DEFAULT;
        bleu.lowercase = true;
        bleu.tokenizer = BleuTokenizer::Intl;
        assert_eq!(
            bleu.signature(2),
            "nrefs:2|case:lc|eff:no|tok:intl|smooth:floor[0.10]|version:2.6.0"
        );
        bleu.smooth = Smooth::ADD_K_DEFAULT;
        assert!(bleu.signature(1).contains("smooth:add-k[1.00]"));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let mut bleu = Bleu::default();
        for order in [0, 1, 4] {
            bleu.max_ngram_order = order;
            for (h, r) in [("", ""), ("a", ""), ("", "a"), ("\u{0}\u{1c}", "\u{85}")] {
                let stats = bleu.stats(h, &[r]);
                let _ = bleu.format_from_stats(&stats);
            }
            let _ = bleu.format_from_stats(&[]);
            let _ = bleu.stats("a b", &[]);
        }
    }
}
