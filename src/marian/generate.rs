//! Greedy and beam search over a batch of sources, reproducing transformers' `generate`.
//!
//! The search itself runs on plain `f32` vectors: the model returns one row of logits per beam,
//! and the selection (logits processors, log-softmax, top-k, finished hypotheses) follows
//! transformers 5's vectorised `_beam_search` and `_sample` step for step, including its
//! `-1e9` masking arithmetic, so that the same checkpoint yields the same ids and scores.

use anyhow::{bail, Result};
use rayon::prelude::*;

use super::config::{EarlyStopping, GenerationConfig};
use super::model::MarianModel;

/// transformers' "very negative" score for impossible beams.
const NEG: f32 = -1.0e9;

/// Decoding options, in the spirit of transformers' `generate` and CTranslate2's
/// `translate_batch`. Build them from the checkpoint with [`DecodeOptions::from_generation`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Beam width; 1 selects greedy search.
    pub num_beams: usize,
    /// Exponent of the length normalisation: score = sum of log-probs / length^penalty.
    pub length_penalty: f32,
    /// When a beam search row stops.
    pub early_stopping: EarlyStopping,
    /// Most tokens generated per source, EOS included.
    pub max_new_tokens: usize,
    /// Optional limit relative to the source: at most ceil(ratio x source tokens) + 10 new
    /// tokens per source (and never more than `max_new_tokens`).
    pub max_length_ratio: Option<f32>,
    /// Fewest tokens generated before EOS may be chosen.
    pub min_new_tokens: usize,
    /// Exact output length for benchmarks: every source generates exactly this many tokens
    /// (EOS is suppressed before, and forced at, the last step).
    pub forced_length: Option<usize>,
    /// Hypotheses returned per source (at most `num_beams`).
    pub num_return_sequences: usize,
    /// Tokens never generated (the padding token for opus-mt).
    pub bad_words_ids: Vec<u32>,
    /// Token forced at the last allowed step.
    pub forced_eos_token_id: Option<u32>,
    /// Whether log-probabilities are normalised again after the processors.
    pub renormalize_logits: bool,
}

impl DecodeOptions {
    /// The checkpoint's defaults (`generation_config.json`), as transformers would apply them.
    pub fn from_generation(g: &GenerationConfig) -> Self {
        Self {
            num_beams: g.num_beams,
            length_penalty: g.length_penalty,
            early_stopping: g.early_stopping,
            max_new_tokens: g.max_new_tokens.unwrap_or(g.max_length.saturating_sub(1)),
            max_length_ratio: None,
            min_new_tokens: g.min_new_tokens,
            forced_length: None,
            num_return_sequences: g.num_return_sequences.min(g.num_beams),
            bad_words_ids: g.bad_words_ids.clone(),
            forced_eos_token_id: g.forced_eos_token_id,
            renormalize_logits: g.renormalize_logits,
        }
    }

    /// The number of new tokens allowed for a source of `source_len` tokens.
    pub fn limit_for(&self, source_len: usize) -> usize {
        if let Some(n) = self.forced_length {
            return n;
        }
        let mut limit = self.max_new_tokens;
        if let Some(ratio) = self.max_length_ratio {
            let relative = (ratio as f64 * source_len as f64).ceil() as usize + 10;
            limit = limit.min(relative);
        }
        limit
    }

    fn min_new_for(&self, limit: usize) -> usize {
        match self.forced_length {
            Some(_) => limit,
            None => self.min_new_tokens,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.num_beams == 0 {
            bail!("num_beams must be at least 1");
        }
        if self.num_return_sequences == 0 || self.num_return_sequences > self.num_beams {
            bail!(
                "num_return_sequences = {} must be between 1 and num_beams = {}",
                self.num_return_sequences,
                self.num_beams
            );
        }
        if self.max_new_tokens == 0 || self.forced_length == Some(0) {
            bail!("max_new_tokens must be at least 1");
        }
        if !self.length_penalty.is_finite() {
            bail!("length_penalty must be a finite number");
        }
        Ok(())
    }
}

/// One output of the search: generated ids (without the decoder start token, with the final
/// EOS when one was generated) and score = sum of log-probs / len(ids)^length_penalty.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Generated token ids.
    pub ids: Vec<u32>,
    /// Length-normalised log-probability, as transformers' `sequences_scores`.
    pub score: f32,
}

/// Translates a batch of tokenised sources (each ending with EOS): returns, per source,
/// `num_return_sequences` hypotheses, best first.
pub fn generate(
    model: &MarianModel,
    sources: &[Vec<u32>],
    options: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    options.validate()?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let positions = model.config().max_position_embeddings;
    let limits: Vec<usize> = sources.iter().map(|s| options.limit_for(s.len())).collect();
    let capacity = limits.iter().copied().max().unwrap_or(1);
    if capacity > positions {
        bail!("cannot generate {capacity} tokens: the model has {positions} positions (lower --max-new-tokens)");
    }
    let (ids, mask) = model.pad_sources(sources)?;
    let encoded = model.encode(&ids, &mask)?;
    if options.num_beams == 1 {
        greedy(model, &encoded, &mask, &limits, options)
    } else {
        beam_search(model, &encoded, &mask, &limits, options)
    }
}

/// Per-row log-probabilities after transformers' logits processors.
struct Processor<'a> {
    options: &'a DecodeOptions,
    eos: u32,
}

/// What the processors allow at one step of one source.
#[derive(Clone, Copy)]
struct StepRules {
    /// EOS is banned (min_new_tokens not reached).
    ban_eos: bool,
    /// Only EOS is allowed (the last step, with a forced EOS).
    force_eos: bool,
}

/// The processed log-probabilities of one row of logits, computed on the fly rather than
/// stored: `logits[t] - offset` for allowed tokens, -inf for banned ones, and at a forced step
/// 0 for the forced token and -inf for every other.
struct RowLogProbs<'a> {
    logits: &'a [f32],
    offset: f32,
    forced: Option<u32>,
    banned: &'a [u32],
    banned_eos: Option<u32>,
}

impl RowLogProbs<'_> {
    fn is_banned(&self, token: usize) -> bool {
        self.banned.iter().any(|&b| b as usize == token)
            || self.banned_eos.is_some_and(|e| e as usize == token)
    }

    /// The best token and its log-probability; the first maximum wins, like torch.argmax.
    fn argmax(&self) -> (u32, f32) {
        if let Some(forced) = self.forced {
            return (forced, 0.0);
        }
        let mut best = (0u32, f32::NEG_INFINITY);
        let mut best_logit = f32::NEG_INFINITY;
        for (token, &x) in self.logits.iter().enumerate() {
            // The banned check only runs for a new maximum, which is rare.
            if x > best_logit && !self.is_banned(token) {
                best_logit = x;
                best = (token as u32, x - self.offset);
            }
        }
        best
    }

    /// Adds this row's continuations (`beam`, accumulated `beam_score`) to the running top-k.
    fn push_candidates(&self, beam: usize, beam_score: f32, top: &mut TopK) {
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
        for (token, &x) in self.logits.iter().enumerate() {
            let score = (x - self.offset) + beam_score;
            if top.accepts(score) && !self.is_banned(token) {
                top.push(score, beam, token as u32);
            }
        }
        // Banned tokens are -inf candidates: they only matter when fewer than k are finite.
        for &token in self.banned.iter().chain(self.banned_eos.iter()) {
            top.push(f32::NEG_INFINITY, beam, token);
        }
    }
}

impl Processor<'_> {
    fn rules(&self, generated: usize, limit: usize) -> StepRules {
        let forced =
            self.options.forced_eos_token_id.is_some() || self.options.forced_length.is_some();
        StepRules {
            ban_eos: generated < self.options.min_new_for(limit),
            force_eos: forced && generated + 1 == limit,
        }
    }

    /// The processed log-probabilities of one row of logits: `log_softmax`, then the
    /// processors (bad words, min length, forced EOS), then an optional renormalisation.
    fn row<'a>(&'a self, logits: &'a [f32], rules: StepRules) -> RowLogProbs<'a> {
        let mut row = RowLogProbs {
            logits,
            offset: 0.0,
            forced: None,
            banned: &self.options.bad_words_ids,
            banned_eos: rules.ban_eos.then_some(self.eos),
        };
        if rules.force_eos {
            row.forced = Some(self.options.forced_eos_token_id.unwrap_or(self.eos));
            return row;
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            row.offset = max;
            return row;
        }
        let sum_all: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
        let mut sum = sum_all;
        if self.options.renormalize_logits {
            // log_softmax, then -inf for banned tokens, then log_softmax again: the same as
            // one log_softmax over the allowed tokens.
            let sum_banned: f32 = row
                .banned
                .iter()
                .chain(row.banned_eos.iter())
                .filter_map(|&t| logits.get(t as usize))
                .map(|&x| (x - max).exp())
                .sum();
            sum = if sum_banned <= 0.5 * sum_all {
                sum_all - sum_banned
            } else {
                // Most of the mass is banned: subtracting would lose precision.
                logits
                    .iter()
                    .enumerate()
                    .filter(|&(t, _)| !row.is_banned(t))
                    .map(|(_, &x)| (x - max).exp())
                    .sum()
            };
            if sum <= 0.0 {
                sum = sum_all;
            }
        }
        row.offset = max + sum.ln();
        row
    }
}

/// The `k` best candidates seen so far, sorted descending; ties keep the first seen first.
struct TopK {
    k: usize,
    best: Vec<Candidate>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    fn accepts(&self, score: f32) -> bool {
        !score.is_nan() && (self.best.len() < self.k || score > self.best[self.k - 1].score)
    }

    fn push(&mut self, score: f32, beam: usize, token: u32) {
        if !self.accepts(score) {
            return;
        }
        let at = self.best.partition_point(|c| c.score >= score);
        self.best.insert(at, Candidate { score, beam, token });
        self.best.truncate(self.k);
    }
}

/// Runs `f` over the rows of a (rows, vocab) f32 logits tensor without copying it.
fn with_logit_rows<T>(
    logits: &candle_core::Tensor,
    f: impl FnOnce(&[f32], usize) -> Result<T>,
) -> Result<T> {
    let (_, vocab) = logits.dims2()?;
    if super::cpu::applies(logits) {
        return super::cpu::with_data(logits, |data| f(data, vocab));
    }
    // GPU logits: one copy to host memory per step.
    let data = logits.flatten_all()?.to_vec1::<f32>()?;
    f(&data, vocab)
}

fn greedy(
    model: &MarianModel,
    encoded: &candle_core::Tensor,
    mask: &candle_core::Tensor,
    limits: &[usize],
    options: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    let config = model.config();
    let capacity = limits.iter().copied().max().unwrap_or(1);
    let mut state = model.start_decoding(encoded, mask, 1, capacity)?;
    let processor = Processor {
        options,
        eos: config.eos_token_id,
    };
    let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); limits.len()];
    let mut sums = vec![0f32; limits.len()];
    let mut active: Vec<usize> = (0..limits.len()).collect();
    let mut tokens = vec![config.decoder_start_token_id; limits.len()];
    while !active.is_empty() {
        let logits = model.decode_step(&mut state, &tokens)?;
        let picks: Vec<(u32, f32)> = with_logit_rows(&logits, |data, vocab| {
            Ok(active
                .par_iter()
                .enumerate()
                .map(|(row, &source)| {
                    let rules = processor.rules(outputs[source].len(), limits[source]);
                    processor
                        .row(&data[row * vocab..(row + 1) * vocab], rules)
                        .argmax()
                })
                .collect())
        })?;
        let mut keep = Vec::with_capacity(active.len());
        for (row, (&source, (best, best_lp))) in active.iter().zip(picks).enumerate() {
            outputs[source].push(best);
            sums[source] += best_lp;
            let done = best == config.eos_token_id || outputs[source].len() >= limits[source];
            if !done {
                keep.push(row as u32);
            }
        }
        let next: Vec<usize> = keep.iter().map(|&r| active[r as usize]).collect();
        if next.len() != active.len() && !next.is_empty() {
            state.keep_sources(&keep)?;
        }
        active = next;
        tokens = active
            .iter()
            .map(|&s| *outputs[s].last().expect("every active row has a token"))
            .collect();
    }
    Ok(outputs
        .into_iter()
        .zip(sums)
        .map(|(ids, sum)| {
            let score = sum / (ids.len() as f32).powf(options.length_penalty);
            vec![Hypothesis { ids, score }]
        })
        .collect())
}

/// The beam search state of one source.
struct BeamRow {
    /// Running beams: generated tokens and accumulated log-probability, best first.
    running: Vec<(Vec<u32>, f32)>,
    /// Finished slots: tokens, normalised score, and whether the slot holds a real hypothesis.
    finished: Vec<(Vec<u32>, f32, bool)>,
    /// transformers' `is_early_stop_heuristic_unsatisfied`: false once the row can no longer
    /// improve, after which it is dropped from the batch.
    improvable: bool,
    /// Whether decoding of this row has ended.
    done: bool,
}

/// A candidate continuation: accumulated score, source beam and token.
#[derive(Clone, Copy)]
struct Candidate {
    score: f32,
    beam: usize,
    token: u32,
}

/// Indices of the `k` largest values, sorted descending; ties keep the lower index first.
fn top_k_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

fn beam_search(
    model: &MarianModel,
    encoded: &candle_core::Tensor,
    mask: &candle_core::Tensor,
    limits: &[usize],
    options: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    let config = model.config();
    let nb = options.num_beams;
    let eos = config.eos_token_id;
    let lp_exp = options.length_penalty;
    let capacity = limits.iter().copied().max().unwrap_or(1);
    let mut state = model.start_decoding(encoded, mask, nb, capacity)?;
    let processor = Processor { options, eos };
    let mut rows: Vec<BeamRow> = limits
        .iter()
        .map(|_| BeamRow {
            running: (0..nb)
                .map(|b| (Vec::new(), if b == 0 { 0.0 } else { NEG }))
                .collect(),
            finished: vec![(Vec::new(), NEG, false); nb],
            improvable: true,
            done: false,
        })
        .collect();
    let mut active: Vec<usize> = (0..limits.len()).collect();
    let mut tokens = vec![config.decoder_start_token_id; limits.len() * nb];
    let mut step = 0usize;
    while !active.is_empty() {
        let logits = model.decode_step(&mut state, &tokens)?;
        let all_candidates: Vec<Vec<Candidate>> = with_logit_rows(&logits, |data, vocab| {
            Ok(active
                .par_iter()
                .enumerate()
                .map(|(slot, &source)| {
                    let rules = processor.rules(step, limits[source]);
                    let mut top = TopK::new(2 * nb);
                    for (beam, (_, beam_score)) in rows[source].running.iter().enumerate() {
                        let r = slot * nb + beam;
                        processor
                            .row(&data[r * vocab..(r + 1) * vocab], rules)
                            .push_candidates(beam, *beam_score, &mut top);
                    }
                    top.best
                })
                .collect())
        })?;
        let mut reorder = Vec::with_capacity(active.len() * nb);
        let mut keep = Vec::with_capacity(active.len());
        for ((slot, &source), candidates) in active.iter().enumerate().zip(all_candidates) {
            let row = &mut rows[source];
            let limit = limits[source];
            // A candidate "hits the stopping criteria" when it ends with EOS or reaches the
            // length limit.
            let at_limit = step + 1 >= limit;
            let hits: Vec<bool> = candidates
                .iter()
                .map(|c| c.token == eos || at_limit)
                .collect();

            // Next running beams: the best candidates that did not stop.
            let running_scores: Vec<f32> = candidates
                .iter()
                .zip(&hits)
                .map(|(c, &hit)| c.score + if hit { NEG } else { 0.0 })
                .collect();
            let chosen = top_k_indices(&running_scores, nb);
            let next_running: Vec<(Vec<u32>, f32)> = chosen
                .iter()
                .map(|&i| {
                    let c = candidates[i];
                    let mut seq = row.running[c.beam].0.clone();
                    seq.push(c.token);
                    (seq, running_scores[i])
                })
                .collect();
            reorder.extend(
                chosen
                    .iter()
                    .map(|&i| (slot * nb + candidates[i].beam) as u32),
            );

            // Finished hypotheses: merge the top-`nb` candidates that stopped.
            let length_norm = ((step + 1) as f32).powf(lp_exp);
            let full =
                row.finished.iter().all(|f| f.2) && options.early_stopping == EarlyStopping::Always;
            let mut merged: Vec<(Vec<u32>, f32, bool)> = row.finished.clone();
            for (i, c) in candidates.iter().enumerate() {
                let just_finished = hits[i] && i < nb;
                let mut score = c.score / length_norm;
                if full {
                    score += NEG;
                }
                if !row.improvable {
                    score += NEG;
                }
                if !just_finished {
                    score += NEG;
                }
                let mut seq = row.running[c.beam].0.clone();
                seq.push(c.token);
                merged.push((seq, score, just_finished));
            }
            let merged_scores: Vec<f32> = merged.iter().map(|m| m.1).collect();
            row.finished = top_k_indices(&merged_scores, nb)
                .into_iter()
                .map(|i| merged[i].clone())
                .collect();
            row.running = next_running;

            // transformers' early-stop heuristic, evaluated at the new length.
            let best_length = if options.early_stopping == EarlyStopping::Never && lp_exp > 0.0 {
                limit
            } else {
                step + 1
            };
            let best_running = row.running[0].1 / (best_length as f32).powf(lp_exp);
            let min_finished = row
                .finished
                .iter()
                .map(|f| f.1)
                .fold(f32::INFINITY, f32::min);
            let can_improve = row
                .finished
                .iter()
                .any(|f| best_running > if f.2 { min_finished } else { NEG });
            row.improvable &= can_improve;
            let all_finished = row.finished.iter().all(|f| f.2);
            row.done = !row.improvable
                || (options.early_stopping == EarlyStopping::Always && all_finished)
                || at_limit;
            if !row.done {
                keep.push(slot as u32);
            }
        }
        state.reorder_rows(&reorder)?;
        let next: Vec<usize> = keep.iter().map(|&s| active[s as usize]).collect();
        if next.len() != active.len() && !next.is_empty() {
            state.keep_sources(&keep)?;
        }
        active = next;
        tokens = active
            .iter()
            .flat_map(|&s| {
                rows[s]
                    .running
                    .iter()
                    .map(|(seq, _)| *seq.last().expect("a token"))
            })
            .collect();
        step += 1;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            row.finished
                .into_iter()
                .take(options.num_return_sequences)
                .map(|(ids, score, _)| Hypothesis { ids, score })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_stable() {
        assert_eq!(top_k_indices(&[1.0, 3.0, 3.0, 2.0], 3), vec![1, 2, 3]);
    }

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
        };
        let rules = StepRules {
            ban_eos: false,
            force_eos: false,
        };
        let beams = [vec![3.0f32, 2.0, 9.0], vec![3.5, 3.9, 0.0]];
        let mut top = TopK::new(3);
        for (beam, (logits, score)) in beams.iter().zip([0.0, -1.0]).enumerate() {
            processor
                .row(logits, rules)
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
    fn renormalised_argmax_skips_banned_tokens() {
        let options = DecodeOptions {
            bad_words_ids: vec![1],
            ..test_options()
        };
        let processor = Processor {
            options: &options,
            eos: 0,
        };
        let rules = StepRules {
            ban_eos: true,
            force_eos: false,
        };
        let logits = [5.0f32, 9.0, 1.0, 2.0];
        let (token, lp) = processor.row(&logits, rules).argmax();
        assert_eq!(token, 3);
        // Renormalised over the allowed tokens 2 and 3 only.
        let want = 2.0 - (1f32.exp() + 2f32.exp()).ln();
        assert!((lp - want).abs() < 1e-6);
        let forced = StepRules {
            ban_eos: false,
            force_eos: true,
        };
        assert_eq!(processor.row(&logits, forced).argmax(), (0, 0.0));
    }

    fn test_options() -> DecodeOptions {
        DecodeOptions {
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            max_new_tokens: 100,
            max_length_ratio: None,
            min_new_tokens: 0,
            forced_length: None,
            num_return_sequences: 1,
            bad_words_ids: vec![],
            forced_eos_token_id: None,
            renormalize_logits: true,
        }
    }

    #[test]
    fn limit_relative_to_source() {
        let mut o = DecodeOptions {
            max_length_ratio: Some(2.0),
            ..test_options()
        };
        assert_eq!(o.limit_for(5), 20);
        assert_eq!(o.limit_for(80), 100);
        o.forced_length = Some(7);
        assert_eq!(o.limit_for(80), 7);
    }
}
