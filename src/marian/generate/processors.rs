//! transformers' logits processors on one row of logits, as the searches need them: the
//! log-softmax, banned tokens (bad words, EOS before `min_new_tokens`), the forced EOS at the
//! last step, the optional renormalisation, and the candidates a row offers to the top-k.
//!
//! Nothing is materialised per token: a row's processed log-probabilities are
//! `logits[t] - offset` for allowed tokens and -inf for banned ones, and the scans over the
//! vocabulary skip blocks whose maximum cannot matter.

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

/// Turns rows of logits into processed log-probabilities.
pub(crate) struct Processor<'a> {
    pub(crate) options: &'a DecodeOptions,
    pub(crate) eos: u32,
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
}

impl Processor<'_> {
    /// The rules at step `generated` (tokens generated so far) for a source allowed `limit`.
    pub(crate) fn rules(&self, generated: usize, limit: usize) -> StepRules {
        StepRules {
            ban_eos: generated < self.options.min_new_tokens,
            force_eos: self.options.forced_eos_token_id.is_some() && generated + 1 == limit,
        }
    }

    /// The processed log-probabilities of one row: `log_softmax`, then the processors (bad
    /// words, min length, forced EOS), then an optional renormalisation. A row whose maximum
    /// is not finite (NaN or infinite logits: an overflow) is an error.
    pub(crate) fn row<'a>(
        &'a self,
        logits: &'a [f32],
        rules: StepRules,
    ) -> Result<RowLogProbs<'a>> {
        let mut row = RowLogProbs {
            isa: self.isa,
            logits,
            offset: 0.0,
            max: 0.0,
            forced: None,
            banned: &self.options.bad_words_ids,
            banned_eos: rules.ban_eos.then_some(self.eos),
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
        let sum_all = vector::sum_exp(self.isa, logits, max);
        let mut sum = sum_all;
        if self.options.renormalize_logits {
            // log_softmax, then -inf for banned tokens, then log_softmax again: the same as
            // one log_softmax over the allowed tokens.
            let mut banned: Vec<usize> = row
                .banned
                .iter()
                .chain(row.banned_eos.iter())
                .map(|&t| t as usize)
                .filter(|&t| t < logits.len())
                .collect();
            banned.sort_unstable();
            banned.dedup();
            let banned_logits: Vec<f32> = banned.iter().map(|&t| logits[t]).collect();
            let sum_banned = vector::sum_exp(self.isa, &banned_logits, max);
            sum = if sum_banned <= 0.5 * sum_all {
                sum_all - sum_banned
            } else {
                // Most of the mass is banned: subtracting would lose precision. Sum the
                // allowed stretches between banned tokens instead.
                let mut allowed = 0f32;
                let mut start = 0;
                for &t in banned.iter().chain(std::iter::once(&logits.len())) {
                    allowed += vector::sum_exp(self.isa, &logits[start..t], max);
                    start = t + 1;
                }
                allowed
            };
            if sum <= 0.0 {
                sum = sum_all;
            }
        }
        row.offset = max + vector::ln(f64::from(sum)) as f32;
        Ok(row)
    }
}

impl RowLogProbs<'_> {
    fn is_banned(&self, token: usize) -> bool {
        self.banned.iter().any(|&b| b as usize == token)
            || self.banned_eos.is_some_and(|e| e as usize == token)
    }

    /// The best token and its log-probability; the first maximum wins, like torch.argmax.
    pub(crate) fn argmax(&self) -> (u32, f32) {
        if let Some(forced) = self.forced {
            return (forced, 0.0);
        }
        if let Some(token) = self.logits.iter().position(|&x| x == self.max) {
            if !self.is_banned(token) {
                return (token as u32, self.max - self.offset);
            }
        }
        // The maximum is banned (rare): scan for the best allowed token.
        let mut best = (0u32, f32::NEG_INFINITY);
        let mut best_logit = f32::NEG_INFINITY;
        for (token, &x) in self.logits.iter().enumerate() {
            if x > best_logit && !self.is_banned(token) {
                best_logit = x;
                best = (token as u32, x - self.offset);
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
                if top.accepts(score) && !self.is_banned(token) {
                    top.push(score, beam, token as u32);
                }
            }
        }
        // Banned tokens are -inf candidates: they only matter when fewer than k are finite.
        for &token in self.banned.iter().chain(self.banned_eos.iter()) {
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
            isa: Isa::Portable,
        };
        let beams = [vec![3.0f32, 2.0, 9.0], vec![3.5, 3.9, 0.0]];
        let mut top = TopK::new(3);
        for (beam, (logits, score)) in beams.iter().zip([0.0, -1.0]).enumerate() {
            processor
                .row(logits, FREE)
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
            isa: Isa::available()[0],
        };
        let logits: Vec<f32> = (0..2000)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
            .collect();
        let row = processor.row(&logits, FREE).unwrap();
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
            isa: Isa::Portable,
        };
        let rules = StepRules {
            ban_eos: true,
            force_eos: false,
        };
        let logits = [5.0f32, 9.0, 1.0, 2.0];
        let (token, lp) = processor.row(&logits, rules).unwrap().argmax();
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
            isa: Isa::Portable,
        };
        assert_eq!(processor.row(&logits, forced).unwrap().argmax(), (0, 0.0));
    }

    #[test]
    fn nan_and_infinite_rows_are_errors() {
        let options = test_options();
        let processor = Processor {
            options: &options,
            eos: 0,
            isa: Isa::Portable,
        };
        for logits in [
            [f32::NAN; 4],
            [1.0, f32::NAN, 0.0, 2.0],
            [f32::NEG_INFINITY; 4],
            [0.0, f32::INFINITY, 1.0, 1.0],
        ] {
            assert!(matches!(
                processor.row(&logits, FREE),
                Err(MarianError::NotFinite(_))
            ));
        }
    }
}
