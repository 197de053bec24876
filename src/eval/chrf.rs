//! chrF (Popović, 2015) and chrF++ (Popović, 2017) as sacreBLEU 2.6.0 computes them
//! (`sacrebleu/metrics/chrf.py`, Apache-2.0), ported for bit-for-bit equal scores.

use std::collections::HashMap;
use std::hash::Hash;

use super::metric::{fmt_fixed, Metric, VERSION};
use super::tokenize::{py_lower, py_split};

/// sacreBLEU's `CHRF` metric with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Chrf {
    /// Character n-gram order (default 6).
    pub char_order: usize,
    /// Word n-gram order: 0 for chrF, 2 for chrF++.
    pub word_order: usize,
    /// Weight of recall against precision (default 2).
    pub beta: u32,
    /// Lowercase hypotheses and references first.
    pub lowercase: bool,
    /// Keep whitespace in character n-grams (default false).
    pub whitespace: bool,
    /// chrF++.py-style epsilon smoothing; false (sacreBLEU's default, the signature's
    /// `eff:yes`) averages precision and recall over the orders that have n-grams on both
    /// sides, as sacreBLEU < 2.0 did.
    pub eps_smoothing: bool,
}

impl Default for Chrf {
    fn default() -> Self {
        Chrf::chrf2()
    }
}

/// Python's `string.punctuation`, what chrF++ splits off word ends (`CHRF._PUNCTS`).
fn is_ascii_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// Counts the n-grams of one order, a slice being the key (sacreBLEU `extract_char_ngrams`
/// and `extract_word_ngrams`: the words' `' '.join` is the same key since words hold no
/// spaces).
fn count<T: Hash + Eq>(items: &[T], n: usize) -> HashMap<&[T], u64> {
    let mut counts = HashMap::new();
    if n > 0 {
        for gram in items.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// The n-grams of one segment: character orders 1..=char_order, then word orders.
struct Ngrams<'a> {
    chars: Vec<HashMap<&'a [char], u64>>,
    words: Vec<HashMap<&'a [&'a str], u64>>,
}

/// sacreBLEU `CHRF._get_match_statistics`: `[hyp count, ref count, matches]` of one order,
/// the hypothesis count zeroed when the reference has no n-gram of that order.
fn match_stats<K: Hash + Eq>(
    hyp: &HashMap<K, u64>,
    reference: &HashMap<K, u64>,
    row: &mut Vec<f64>,
) {
    let mut hyp_count = 0u64;
    let mut matches = 0u64;
    for (gram, &count) in hyp {
        hyp_count += count;
        if let Some(&ref_count) = reference.get(gram) {
            matches += count.min(ref_count);
        }
    }
    let ref_count: u64 = reference.values().sum();
    row.push(if reference.is_empty() {
        0.0
    } else {
        hyp_count as f64
    });
    row.push(ref_count as f64);
    row.push(matches as f64);
}

impl Chrf {
    /// chrF2 (`word_order` 0) or chrF2++ (`word_order` 2) with a case option, the other
    /// options at sacreBLEU's defaults.
    pub fn new(word_order: usize, lowercase: bool) -> Self {
        Chrf {
            word_order,
            lowercase,
            ..Chrf::chrf2()
        }
    }

    /// chrF2: character 6-grams, no word n-grams, beta 2 (sacreBLEU's defaults).
    pub fn chrf2() -> Self {
        Chrf {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }

    /// chrF2++: chrF2 plus word unigrams and bigrams (`--chrf-word-order 2`).
    pub fn chrf_plus_plus() -> Self {
        Chrf {
            word_order: 2,
            ..Chrf::chrf2()
        }
    }

    /// The characters whose n-grams count (sacreBLEU `extract_all_char_ngrams`: whitespace
    /// removed unless `whitespace`).
    fn chars(&self, line: &str) -> Vec<char> {
        if self.whitespace {
            line.chars().collect()
        } else {
            py_split(line).flat_map(str::chars).collect()
        }
    }

    /// sacreBLEU `CHRF._remove_punctuation`: words, with one ASCII punctuation mark split off
    /// the end of a word, or else off its start ("(hi)" gives "(hi" and ")", sacreBLEU #124).
    fn words<'a>(&self, line: &'a str) -> Vec<&'a str> {
        let mut words = Vec::new();
        for w in py_split(line) {
            let mut chars = w.chars();
            let first = chars.next();
            let last = chars.next_back();
            match (first, last) {
                // one character: kept as it is
                (_, None) => words.push(w),
                (_, Some(l)) if is_ascii_punct(l) => {
                    let cut = w.len() - l.len_utf8();
                    words.push(&w[..cut]);
                    words.push(&w[cut..]);
                }
                (Some(f), _) if is_ascii_punct(f) => {
                    let cut = f.len_utf8();
                    words.push(&w[..cut]);
                    words.push(&w[cut..]);
                }
                _ => words.push(w),
            }
        }
        words
    }

    fn ngrams<'a>(&self, chars: &'a [char], words: &'a [&'a str]) -> Ngrams<'a> {
        Ngrams {
            chars: (1..=self.char_order).map(|n| count(chars, n)).collect(),
            words: (1..=self.word_order).map(|n| count(words, n)).collect(),
        }
    }

    /// sacreBLEU `CHRF._preprocess_segment`: optional lowercasing (no stripping).
    fn preprocess(&self, line: &str) -> String {
        if self.lowercase {
            py_lower(line)
        } else {
            line.to_string()
        }
    }

    /// The statistics row of one segment (sacreBLEU `_compute_segment_statistics`):
    /// `[hyp, ref, match]` for each character order then each word order, against the
    /// reference with the highest sentence-level F-score (the first one on ties). No
    /// reference at all counts as one empty reference.
    pub fn stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64> {
        let hyp = self.preprocess(hyp);
        let hyp_chars = self.chars(&hyp);
        let hyp_words = if self.word_order > 0 {
            self.words(&hyp)
        } else {
            Vec::new()
        };
        let hyp_ngrams = self.ngrams(&hyp_chars, &hyp_words);

        let refs: Vec<String> = if refs.is_empty() {
            vec![String::new()]
        } else {
            refs.iter().map(|r| self.preprocess(r)).collect()
        };
        let mut best_stats = Vec::new();
        let mut best_f_score = -1.0;
        for reference in &refs {
            let ref_chars = self.chars(reference);
            let ref_words = if self.word_order > 0 {
                self.words(reference)
            } else {
                Vec::new()
            };
            let ref_ngrams = self.ngrams(&ref_chars, &ref_words);
            let mut row = Vec::with_capacity(3 * (self.char_order + self.word_order));
            for (h, r) in hyp_ngrams.chars.iter().zip(&ref_ngrams.chars) {
                match_stats(h, r, &mut row);
            }
            for (h, r) in hyp_ngrams.words.iter().zip(&ref_ngrams.words) {
                match_stats(h, r, &mut row);
            }
            let f_score = self.f_score(&row);
            if f_score > best_f_score {
                best_f_score = f_score;
                best_stats = row;
            }
        }
        best_stats
    }

    /// sacreBLEU `CHRF._compute_f_score`: the F-beta score (0 to 100) of statistics rows,
    /// single or summed. Missing columns count as zeros.
    pub fn f_score(&self, stats: &[f64]) -> f64 {
        let eps = 1e-16;
        let factor = f64::from(self.beta) * f64::from(self.beta);
        let order = self.char_order + self.word_order;
        let mut score = 0.0;
        let mut effective_order = 0usize;
        let mut avg_prec = 0.0;
        let mut avg_rec = 0.0;

        for i in 0..order {
            let n_hyp = super::metric::stat(stats, 3 * i);
            let n_ref = super::metric::stat(stats, 3 * i + 1);
            let n_match = super::metric::stat(stats, 3 * i + 2);

            let prec = if n_hyp > 0.0 { n_match / n_hyp } else { eps };
            let rec = if n_ref > 0.0 { n_match / n_ref } else { eps };
            let denom = factor * prec + rec;
            score += if denom > 0.0 {
                (1.0 + factor) * prec * rec / denom
            } else {
                eps
            };

            if n_hyp > 0.0 && n_ref > 0.0 {
                avg_prec += prec;
                avg_rec += rec;
                effective_order += 1;
            }
        }

        if self.eps_smoothing {
            // Python: 100 * score / self.order (an int order: a ZeroDivisionError for 0).
            return if order == 0 {
                0.0
            } else {
                100.0 * score / order as f64
            };
        }
        if effective_order == 0 {
            avg_prec = 0.0;
            avg_rec = 0.0;
        } else {
            avg_prec /= effective_order as f64;
            avg_rec /= effective_order as f64;
        }
        if avg_prec + avg_rec != 0.0 {
            let mut score = (1.0 + factor) * avg_prec * avg_rec;
            score /= factor * avg_prec + avg_rec;
            100.0 * score
        } else {
            0.0
        }
    }
}

impl Metric for Chrf {
    /// `chrF2`, `chrF2++` (sacreBLEU `CHRFScore`: one `+` per word order).
    fn name(&self) -> String {
        format!("chrF{}{}", self.beta, "+".repeat(self.word_order))
    }

    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64> {
        self.stats(hyp, refs)
    }

    fn score_from_stats(&self, stats: &[f64]) -> f64 {
        self.f_score(stats)
    }

    /// `chrF2 = 45.67`.
    fn format_from_stats(&self, stats: &[f64]) -> String {
        format!("{} = {}", self.name(), fmt_fixed(self.f_score(stats), 2))
    }

    /// `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0` (`CHRFSignature`).
    fn signature(&self, nrefs: usize) -> String {
        format!(
            "nrefs:{nrefs}|case:{}|eff:{}|nc:{}|nw:{}|space:{}|version:{VERSION}",
            if self.lowercase { "lc" } else { "mixed" },
            if self.eps_smoothing { "no" } else { "yes" },
            self.char_order,
            self.word_order,
            if self.whitespace { "yes" } else { "no" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_signatures() {
        assert_eq!(Chrf::chrf2().name(), "chrF2");
        assert_eq!(Chrf::chrf_plus_plus().name(), "chrF2++");
        assert_eq!(
            Chrf::chrf2().signature(1),
            "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
        );
        assert_eq!(
            Chrf::chrf_plus_plus().signature(3),
            "nrefs:3|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"
        );
    }

    #[test]
    fn punctuation_split_as_sacrebleu() {
        let chrf = Chrf::chrf_plus_plus();
        assert_eq!(
            chrf.words("(hi) \"a, .b c ! é."),
            ["(hi", ")", "\"a", ",", ".", "b", "c", "!", "é", "."]
        );
    }

    #[test]
    fn identical_is_100_and_rows_have_three_columns_per_order() {
        for chrf in [Chrf::chrf2(), Chrf::chrf_plus_plus()] {
            let row = chrf.stats("Le café.", &["Le café."]);
            assert_eq!(row.len(), 3 * (chrf.char_order + chrf.word_order));
            assert_eq!(chrf.score_from_stats(&row), 100.0);
        }
    }

    #[test]
    fn best_reference_wins() {
        let chrf = Chrf::chrf2();
        let row = chrf.stats("abc", &["xyz", "abc", "abc"]);
        assert_eq!(chrf.score_from_stats(&row), 100.0);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        for chrf in [Chrf::chrf2(), Chrf::chrf_plus_plus()] {
            for (h, r) in [
                ("", ""),
                ("a", ""),
                ("", "a"),
                ("\u{0}", "\u{1c}\u{85}"),
                ("!", "!!"),
            ] {
                let row = chrf.stats(h, &[r]);
                let _ = chrf.format_from_stats(&row);
            }
            let _ = chrf.format_from_stats(&[]);
            let _ = chrf.stats("a", &[]);
        }
    }
}
