//! transformers' logits processors on one row of logits, as the searches need them: the
//! log-softmax, the repetition guards (`repetition_penalty`, `no_repeat_ngram_size`), banned
//! tokens (bad words, EOS before `min_new_tokens`), the forced EOS at the last step, the
//! optional renormalisation, and the candidates a row offers to the top-k.
//!
//! Nothing is materialised per token: a row's processed log-probabilities are
//! `logits[t] - offset` for most tokens, -inf for banned ones, and an explicit value for the
//! few tokens the repetition penalty changed; the scans over the vocabulary skip blocks whose
//! maximum cannot matter.

use super::options::DecodeOptions;
use crate::marian::error::{MarianError, Result};
use crate::marian::kernels::{vector, Isa};

/// Tokens scanned as one block by the candidate search.
const BLOCK: usize = 256;

/// What the processors allow at one step of one source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepRules {
    /// EOS is banned (min_new_tokens not reached).
    pub(crate) ban_eos: bool,
    /// Only the forced token is allowed (the last step, with a forced EOS).
    pub(crate) force_eos: bool,
}

/// What transformers' processors act on: greedy search (`_sample`) hands them the raw logits,
/// beam search (`_beam_search`) the log-softmax of the logits. It matters only for the
/// repetition penalty, which scales values rather than shifting them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Space {
    /// Raw logits (greedy search).
    Logits,
    /// Log-probabilities (beam search).
    LogProbs,
}

/// Turns rows of logits into processed log-probabilities.
pub(crate) struct Processor<'a> {
    pub(crate) options: &'a DecodeOptions,
    pub(crate) eos: u32,
    /// The decoder start token: the first token of every sequence the guards look at.
    pub(crate) start: u32,
    pub(crate) space: Space,
    pub(crate) isa: Isa,
}

/// The processed log-probabilities of one row of logits, computed on the fly.
pub(crate) struct RowLogProbs<'a> {
    isa: Isa,
    logits: &'a [f32],
    offset: f32,
    max: f32,
    forced: Option<u32>,
    banned: &'a [u32],
    banned_eos: Option<u32>,
    /// Tokens the no-repeat n-gram rule bans at this step (sorted).
    banned_ngrams: Vec<u32>,
    /// Tokens the repetition penalty changed, with their processed log-probability (sorted
    /// by token).
    adjusted: Vec<(u32, f32)>,
}

/// The tokens that would repeat an n-gram of `sequence` (transformers'
/// `NoRepeatNGramLogitsProcessor`): for each earlier occurrence of the last `n - 1` tokens,
/// the token that followed it. Sorted, without duplicates.
pub(crate) fn repeated_ngram_tokens(sequence: &[u32], n: usize) -> Vec<u32> {
    // transformers bans nothing while `cur_len + 1 < n`.
    if n == 0 || sequence.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &sequence[sequence.len() + 1 - n..];
    let mut banned: Vec<u32> = sequence
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect();
    banned.sort_unstable();
    banned.dedup();
    banned
}

/// transformers' `RepetitionPenaltyLogitsProcessor` on one value.
fn penalise(value: f32, penalty: f32) -> f32 {
    if value < 0.0 {
        value * penalty
    } else {
        value / penalty
    }
}

impl Processor<'_> {
    /// The rules at step `generated` (tokens generated so far) for a source allowed `limit`.
    pub(crate) fn rules(&self, generated: usize, limit: usize) -> StepRules {
        StepRules {
            ban_eos: generated < self.options.min_new_tokens,
            force_eos: self.options.forced_eos_token_id.is_some() && generated + 1 == limit,
        }
    }

    /// The processed log-probabilities of one row, whose hypothesis has generated `history`
    /// so far: `log_softmax`, then the processors in transformers' order (repetition
    /// penalty, no-repeat n-grams, bad words, min length, forced EOS), then an optional
    /// renormalisation. A row whose maximum is not finite (NaN or infinite logits: an
    /// overflow) is an error.
    pub(crate) fn row<'a>(
        &'a self,
        logits: &'a [f32],
        rules: StepRules,
        history: &[u32],
    ) -> Result<RowLogProbs<'a>> {
        let mut row = RowLogProbs {
            isa: self.isa,
            logits,
            offset: 0.0,
            max: 0.0,
            forced: None,
            banned: &self.options.bad_words_ids,
            banned_eos: rules.ban_eos.then_some(self.eos),
            banned_ngrams: Vec::new(),
            adjusted: Vec::new(),
        };
        let max = vector::max(self.isa, logits);
        if !max.is_finite() {
            return Err(MarianError::NotFinite(String::new()));
        }
        row.max = max;
        if rules.force_eos {
            row.forced = Some(self.options.forced_eos_token_id.unwrap_or(self.eos));
            return Ok(row);
        }
        let guarded =
            self.options.no_repeat_ngram_size > 0 || self.options.repetition_penalty != 1.0;
        let sequence: Vec<u32> = if guarded {
            std::iter::once(self.start)
                .chain(history.iter().copied())
                .collect()
        } else {
            Vec::new()
        };
        if self.options.no_repeat_ngram_size > 0 {
            row.banned_ngrams = repeated_ngram_tokens(&sequence, self.options.no_repeat_ngram_size)
                .into_iter()
                .filter(|&t| (t as usize) < logits.len())
                .collect();
        }
        let sum_all = vector::sum_exp(self.isa, logits, max);
        let log_sum_all = max + vector::ln(f64::from(sum_all)) as f32;
        if self.options.repetition_penalty != 1.0 {
            // The penalty sees the values of its processing space; tokens banned by a later
            // processor stay -inf whatever it did.
            let base = match self.space {
                Space::Logits => 0.0,
                Space::LogProbs => log_sum_all,
            };
            let mut seen = sequence.clone();
            seen.sort_unstable();
            seen.dedup();
            row.adjusted = seen
                .into_iter()
                .filter(|&t| (t as usize) < logits.len() && !row.is_banned(t as usize))
                .map(|t| {
                    (
                        t,
                        penalise(logits[t as usize] - base, self.options.repetition_penalty),
                    )
                })
                .collect();
        }
        if row.adjusted.is_empty() {
            row.offset = if self.options.renormalize_logits {
                max + vector::ln(f64::from(self.allowed_sum(&row, sum_all))) as f32
            } else {
                log_sum_all
            };
            return Ok(row);
        }
        // Penalised tokens: their processed value is explicit; the others keep `z - offset`.
        let base = match self.space {
            Space::Logits => 0.0,
            Space::LogProbs => log_sum_all,
        };
        if self.options.renormalize_logits {
            // log_softmax over the processed values: the unchanged allowed tokens (z - base)
            // and the penalised ones, summed around the largest of them.
            let unchanged = self.allowed_sum(&row, sum_all);
            let adjusted_max = row
                .adjusted
                .iter()
                .map(|&(_, v)| v)
                .fold(f32::NEG_INFINITY, f32::max);
            let reference = (max - base).max(adjusted_max);
            let mut total = f64::from(unchanged) * f64::from(max - base - reference).exp();
            for &(_, v) in &row.adjusted {
                total += f64::from(v - reference).exp();
            }
            let shift = reference + vector::ln(total) as f32;
            row.offset = base + shift;
            for entry in &mut row.adjusted {
                entry.1 -= shift;
            }
        } else {
            // Unnormalised: the processed values as they are, in log-probability terms.
            row.offset = log_sum_all;
            if self.space == Space::Logits {
                for entry in &mut row.adjusted {
                    entry.1 -= log_sum_all;
                }
            }
        }
        Ok(row)
    }

    /// The sum of `exp(z - max)` over the tokens that keep their value: all but the banned and
    /// penalised ones (`sum_all` is the sum over every token).
    fn allowed_sum(&self, row: &RowLogProbs<'_>, sum_all: f32) -> f32 {
        let logits = row.logits;
        let max = row.max;
        let mut excluded: Vec<usize> = row
            .banned
            .iter()
            .chain(row.banned_eos.iter())
            .chain(row.banned_ngrams.iter())
            .chain(row.adjusted.iter().map(|(t, _)| t))
            .map(|&t| t as usize)
            .filter(|&t| t < logits.len())
            .collect();
        if excluded.is_empty() {
            return sum_all;
        }
        excluded.sort_unstable();
        excluded.dedup();
        let excluded_logits: Vec<f32> = excluded.iter().map(|&t| logits[t]).collect();
        let sum_excluded = vector::sum_exp(self.isa, &excluded_logits, max);
        let sum = if sum_excluded <= 0.5 * sum_all {
            sum_all - sum_excluded
        } else {
            // Most of the mass is excluded: subtracting would lose precision. Sum the
            // stretches between excluded tokens instead.
            let mut allowed = 0f32;
            let mut start = 0;
            for &t in excluded.iter().chain(std::iter::once(&logits.len())) {
                allowed += vector::sum_exp(self.isa, &logits[start..t], max);
                start = t + 1;
            }
            allowed
        };
        // Everything excluded (the penalised tokens then carry all the mass, or none does).
        if sum <= 0.0 && row.adjusted.is_empty() {
            sum_all
        } else {
            sum
        }
    }
}

impl RowLogProbs<'_> {
    /// Whether `token` is -inf (bad word, early EOS or a repeated n-gram).
    fn is_banned(&self, token: usize) -> bool {
        self.banned.iter().any(|&b| b as usize == token)
            || self.banned_eos.is_some_and(|e| e as usize == token)
            || self.banned_ngrams.binary_search(&(token as u32)).is_ok()
    }

    /// Whether `token` does not have the plain value `logits[token] - offset`.
    fn is_special(&self, token: usize) -> bool {
        self.is_banned(token)
            || (!self.adjusted.is_empty()
                && self
                    .adjusted
                    .binary_search_by_key(&(token as u32), |&(t, _)| t)
                    .is_ok())
    }

    /// The best token and its log-probability; the first maximum wins, like torch.argmax.
    pub(crate) fn argmax(&self) -> (u32, f32) {
        if let Some(forced) = self.forced {
            return (forced, 0.0);
        }
        let mut best = (0u32, f32::NEG_INFINITY);
        match self.logits.iter().position(|&x| x == self.max) {
            Some(token) if !self.is_special(token) => {
                best = (token as u32, self.max - self.offset);
            }
            _ => {
                // The maximum is banned or penalised: scan for the best plain token.
                let mut best_logit = f32::NEG_INFINITY;
                for (token, &x) in self.logits.iter().enumerate() {
                    if x > best_logit && !self.is_special(token) {
                        best_logit = x;
                        best = (token as u32, x - self.offset);
                    }
                }
            }
        }
        for &(token, value) in &self.adjusted {
            if value > best.1 || (value == best.1 && token < best.0) {
                best = (token, value);
            }
        }
        best
    }

    /// Adds this row's continuations (`beam`, accumulated `beam_score`) to the running top-k.
    pub(crate) fn push_candidates(&self, beam: usize, beam_score: f32, top: &mut TopK) {
        if let Some(forced) = self.forced {
            top.push(0.0 + beam_score, beam, forced);
            // Every other token is -inf: still candidates, as torch.topk would return them.
            for token in 0..self.logits.len().min(top.k) as u32 {
                if token != forced {
                    top.push(f32::NEG_INFINITY, beam, token);
                }
            }
            return;
        }
        for (b, block) in self.logits.chunks(BLOCK).enumerate() {
            // (x - offset) + beam_score rounds monotonically in x, so the block's best score
            // is that of its maximum: a block that cannot enter the top-k is skipped whole.
            if top.is_full() {
                let best = (vector::max(self.isa, block) - self.offset) + beam_score;
                if !top.accepts(best) {
                    continue;
                }
            }
            for (i, &x) in block.iter().enumerate() {
                let score = (x - self.offset) + beam_score;
                let token = b * BLOCK + i;
                if top.accepts(score) && !self.is_special(token) {
                    top.push(score, beam, token as u32);
                }
            }
        }
        for &(token, value) in &self.adjusted {
            top.push(value + beam_score, beam, token);
        }
        // Banned tokens are -inf candidates: they only matter when fewer than k are finite.
        for &token in self
            .banned
            .iter()
            .chain(self.banned_eos.iter())
            .chain(self.banned_ngrams.iter())
        {
            top.push(f32::NEG_INFINITY, beam, token);
        }
    }
}

/// A candidate continuation: accumulated score, source beam and token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) score: f32,
    pub(crate) beam: usize,
    pub(crate) token: u32,
}

/// The `k` best candidates seen so far, sorted descending; ties keep the first seen first.
pub(crate) struct TopK {
    pub(crate) k: usize,
    pub(crate) best: Vec<Candidate>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    fn is_full(&self) -> bool {
        self.best.len() >= self.k
    }

    pub(crate) fn accepts(&self, score: f32) -> bool {
        !score.is_nan() && (self.best.len() < self.k || score > self.best[self.k - 1].score)
    }

    pub(crate) fn push(&mut self, score: f32, beam: usize, token: u32) {
        if !self.accepts(score) {
            return;
        }
        let at = self.best.partition_point(|c| c.score >= score);
        self.best.insert(at, Candidate { score, beam, token });
        self.best.truncate(self.k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marian::config::EarlyStopping;

    fn test_options() -> DecodeOptions {
        DecodeOptions {
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            max_new_tokens: 100,
            max_length_ratio: None,
            min_new_tokens: 0,
            num_return_sequences: 1,
            bad_words_ids: vec![],
            forced_eos_token_id: None,
            renormalize_logits: true,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
        }
    }

    const FREE: StepRules = StepRules {
        ban_eos: false,
        force_eos: false,
    };

    #[test]
    fn candidates_combine_beam_scores_and_skip_banned_tokens() {
        let options = DecodeOptions {
            bad_words_ids: vec![2],
            renormalize_logits: false,
            ..test_options()
        };
        let processor = Processor {
            options: &options,
            eos: 0,
            start: 99,
            space: Space::LogProbs,
            isa: Isa::Portable,
        };
        let beams = [vec![3.0f32, 2.0, 9.0], vec![3.5, 3.9, 0.0]];
        let mut top = TopK::new(3);
        for (beam, (logits, score)) in beams.iter().zip([0.0, -1.0]).enumerate() {
            processor
                .row(logits, FREE, &[])
                .unwrap()
                .push_candidates(beam, score, &mut top);
        }
        let got: Vec<(usize, u32)> = top.best.iter().map(|c| (c.beam, c.token)).collect();
        // Token 2 is banned; log-softmax offsets are per row.
        let lse0 = (3f32.exp() + 2f32.exp() + 9f32.exp()).ln();
        let lse1 = (3.5f32.exp() + 3.9f32.exp() + 1.0).ln();
        let mut want = [
            (3.0 - lse0, (0usize, 0u32)),
            (2.0 - lse0, (0, 1)),
            (3.5 - lse1 - 1.0, (1, 0)),
            (3.9 - lse1 - 1.0, (1, 1)),
        ];
        want.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<(usize, u32)> = want.iter().take(3).map(|w| w.1).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn block_skipping_finds_the_same_candidates_as_a_full_scan() {
        let options = DecodeOptions {
            bad_words_ids: vec![700],
            ..test_options()
        };
        let processor = Processor {
            options: &options,
            eos: 0,
            start: 99,
            space: Space::LogProbs,
            isa: Isa::available()[0],
        };
        let logits: Vec<f32> = (0..2000)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
            .collect();
        let row = processor.row(&logits, FREE, &[]).unwrap();
        let mut top = TopK::new(8);
        row.push_candidates(0, -1.5, &mut top);
        // Reference: every allowed token scored, sorted, ties by token order.
        let mut all: Vec<(f32, u32)> = logits
            .iter()
            .enumerate()
            .filter(|&(t, _)| t != 700)
            .map(|(t, &x)| ((x - row.offset) + -1.5, t as u32))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let want: Vec<u32> = all.iter().take(8).map(|c| c.1).collect();
        let got: Vec<u32> = top.best.iter().map(|c| c.token).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn renormalised_argmax_skips_banned_tokens() {
        let options = DecodeOptions {
            bad_words_ids: vec![1],
            ..test_options()
        };
        let processor = Processor {
            options: &options,
            eos: 0,
            start: 99,
            space: Space::LogProbs,
            isa: Isa::Portable,
        };
        let rules = StepRules {
            ban_eos: true,
            force_eos: false,
        };
        let logits = [5.0f32, 9.0, 1.0, 2.0];
        let (token, lp) = processor.row(&logits, rules, &[]).unwrap().argmax();
        assert_eq!(token, 3);
        // Renormalised over the allowed tokens 2 and 3 only.
        let want = 2.0 - (1f32.exp() + 2f32.exp()).ln();
        assert!((lp - want).abs() < 1e-6);
        let forced = StepRules {
            ban_eos: false,
            force_eos: true,
        };
        let options = DecodeOptions {
            forced_eos_token_id: Some(0),
            ..options
        };
        let processor = Processor {
            options: &options,
            eos: 0,
            start: 99,
            space: Space::LogProbs,
            isa: Isa::Portable,
        };
        assert_eq!(
            processor.row(&logits, forced, &[]).unwrap().argmax(),
            (0, 0.0)
        );
    }

    #[test]
    fn repeated_ngrams_are_found_as_transformers_does() {
        // Sequences start with the decoder start token (9 here).
        assert_eq!(repeated_ngram_tokens(&[9, 1, 2, 3, 1, 2], 3), vec![3]);
        assert_eq!(repeated_ngram_tokens(&[9, 1, 2, 1], 2), vec![2]);
        assert_eq!(repeated_ngram_tokens(&[9, 1, 2, 1, 4, 1], 2), vec![2, 4]);
        assert_eq!(repeated_ngram_tokens(&[9, 1, 1, 1], 2), vec![1]);
        assert!(repeated_ngram_tokens(&[9, 1, 2, 3], 2).is_empty());
        // Nothing while cur_len + 1 < n.
        assert!(repeated_ngram_tokens(&[9, 1], 4).is_empty());
        assert!(repeated_ngram_tokens(&[9, 1, 9], 3).is_empty());
        // Unigrams: every token seen so far.
        assert_eq!(repeated_ngram_tokens(&[9, 5, 5], 1), vec![5, 9]);
        assert!(repeated_ngram_tokens(&[9, 5, 5], 0).is_empty());
    }

    impl RowLogProbs<'_> {
        /// The processed log-probability of `token`.
        fn value(&self, token: usize) -> f32 {
            if let Some(forced) = self.forced {
                return if forced as usize == token {
                    0.0
                } else {
                    f32::NEG_INFINITY
                };
            }
            if self.is_banned(token) {
                return f32::NEG_INFINITY;
            }
            match self
                .adjusted
                .binary_search_by_key(&(token as u32), |&(t, _)| t)
            {
                Ok(i) => self.adjusted[i].1,
                Err(_) => self.logits[token] - self.offset,
            }
        }
    }

    fn log_softmax(v: &[f64]) -> Vec<f64> {
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        v.iter().map(|x| x - lse).collect()
    }

    /// transformers' processors written out naively, in f64.
    fn naive(logits: &[f32], space: Space, sequence: &[u32], options: &DecodeOptions) -> Vec<f64> {
        let raw: Vec<f64> = logits.iter().map(|&x| f64::from(x)).collect();
        let mut v = match space {
            Space::Logits => raw.clone(),
            Space::LogProbs => log_softmax(&raw),
        };
        let p = f64::from(options.repetition_penalty);
        let mut seen = sequence.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            let x = v[t as usize];
            v[t as usize] = if x < 0.0 { x * p } else { x / p };
        }
        let bans = repeated_ngram_tokens(sequence, options.no_repeat_ngram_size);
        for &t in bans.iter().chain(&options.bad_words_ids) {
            v[t as usize] = f64::NEG_INFINITY;
        }
        if options.renormalize_logits {
            log_softmax(&v)
        } else {
            let shift = match space {
                Space::Logits => log_softmax(&raw)[0] - raw[0],
                Space::LogProbs => 0.0,
            };
            v.iter().map(|x| x + shift).collect()
        }
    }

    #[test]
    fn repetition_guards_match_a_naive_reference() {
        let logits: Vec<f32> = (0..700)
            .map(|i| ((i * 7919 % 1013) as f32 / 101.0) - 4.0)
            .collect();
        // The best token (argmax of the raw logits) is in the history, so the penalty moves it.
        let best = (0..700)
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap() as u32;
        let history = [best, 17, 3, best, 17, 650, 3];
        for (space, beams) in [(Space::Logits, 1), (Space::LogProbs, 4)] {
            for (penalty, ngram, renormalize) in [
                (1.3f32, 0usize, true),
                (0.7, 0, true),
                (1.3, 2, true),
                (1.0, 3, true),
                (2.5, 2, false),
                (1.2, 0, false),
            ] {
                let options = DecodeOptions {
                    num_beams: beams,
                    bad_words_ids: vec![5],
                    renormalize_logits: renormalize,
                    no_repeat_ngram_size: ngram,
                    repetition_penalty: penalty,
                    ..test_options()
                };
                let processor = Processor {
                    options: &options,
                    eos: 0,
                    start: 99,
                    space,
                    isa: Isa::Portable,
                };
                let row = processor.row(&logits, FREE, &history).unwrap();
                let mut sequence = vec![99];
                sequence.extend_from_slice(&history);
                let want = naive(&logits, space, &sequence, &options);
                let what =
                    format!("{space:?} penalty {penalty} ngram {ngram} renormalize {renormalize}");
                for (t, &w) in want.iter().enumerate() {
                    let got = row.value(t);
                    if w == f64::NEG_INFINITY {
                        assert_eq!(got, f32::NEG_INFINITY, "{what}: token {t}");
                    } else {
                        assert!(
                            (f64::from(got) - w).abs() < 1e-5,
                            "{what}: token {t}: {got} vs {w}"
                        );
                    }
                }
                // The argmax and the top-k are those of the reference values.
                let mut order: Vec<usize> = (0..want.len()).collect();
                order.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
                assert_eq!(row.argmax().0 as usize, order[0], "{what}");
                let mut top = TopK::new(6);
                row.push_candidates(0, -2.0, &mut top);
                let got: Vec<usize> = top.best.iter().map(|c| c.token as usize).collect();
                assert_eq!(got, order[..6], "{what}");
            }
        }
    }

    #[test]
    fn nan_and_infinite_rows_are_errors() {
        let options = test_options();
        let processor = Processor {
            options: &options,
            eos: 0,
            start: 99,
            space: Space::LogProbs,
            isa: Isa::Portable,
        };
        for logits in [
            [f32::NAN; 4],
            [1.0, f32::NAN, 0.0, 2.0],
            [f32::NEG_INFINITY; 4],
            [0.0, f32::INFINITY, 1.0, 1.0],
        ] {
            assert!(matches!(
                processor.row(&logits, FREE, &[]),
                Err(MarianError::NotFinite(_))
            ));
        }
    }
}
