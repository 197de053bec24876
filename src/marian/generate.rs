//! Greedy and beam search over a batch of sources, reproducing transformers' `generate`.
//!
//! The search itself runs on plain `f32` vectors: the model returns one row of logits per beam,
//! and the selection (logits processors, log-softmax, top-k, finished hypotheses) follows
//! transformers 5's vectorised `_beam_search` and `_sample` step for step, including its
//! `-1e9` masking arithmetic, so that the same checkpoint yields the same ids and scores.

use anyhow::{bail, Result};

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
    vocab: usize,
}

/// What the processors allow at one step of one source.
#[derive(Clone, Copy)]
struct StepRules {
    /// EOS is banned (min_new_tokens not reached).
    ban_eos: bool,
    /// Only EOS is allowed (the last step, with a forced EOS).
    force_eos: bool,
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

    fn forced_id(&self) -> u32 {
        self.options.forced_eos_token_id.unwrap_or(self.eos)
    }

    /// Writes the processed log-probabilities of one row of logits into `out`
    /// (-inf for disallowed tokens), as `log_softmax` -> processors -> optional renormalisation.
    fn log_probs(&self, logits: &[f32], rules: StepRules, out: &mut Vec<f32>) {
        out.clear();
        if rules.force_eos {
            out.resize(self.vocab, f32::NEG_INFINITY);
            out[self.forced_id() as usize] = 0.0;
            return;
        }
        // log_softmax over the whole vocabulary, as transformers applies it before processors.
        let lse_all = log_sum_exp(logits.iter().copied());
        out.extend(logits.iter().map(|&x| x - lse_all));
        for &b in &self.options.bad_words_ids {
            if let Some(v) = out.get_mut(b as usize) {
                *v = f32::NEG_INFINITY;
            }
        }
        if rules.ban_eos {
            out[self.eos as usize] = f32::NEG_INFINITY;
        }
        if self.options.renormalize_logits {
            let lse = log_sum_exp(out.iter().copied());
            if lse.is_finite() {
                out.iter_mut().for_each(|v| *v -= lse);
            }
        }
    }
}

/// log(sum(exp(x))) computed as max + log(sum(exp(x - max))), like torch's log_softmax.
fn log_sum_exp(values: impl Iterator<Item = f32> + Clone) -> f32 {
    let max = values.clone().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f32 = values.map(|x| (x - max).exp()).sum();
    max + sum.ln()
}

fn logits_rows(logits: &candle_core::Tensor) -> Result<(Vec<f32>, usize)> {
    let (_, vocab) = logits.dims2()?;
    Ok((logits.flatten_all()?.to_vec1::<f32>()?, vocab))
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
        vocab: config.vocab_size,
    };
    let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); limits.len()];
    let mut sums = vec![0f32; limits.len()];
    let mut active: Vec<usize> = (0..limits.len()).collect();
    let mut tokens = vec![config.decoder_start_token_id; limits.len()];
    let mut row_log_probs = Vec::new();
    while !active.is_empty() {
        let (logits, vocab) = logits_rows(&model.decode_step(&mut state, &tokens)?)?;
        let mut keep = Vec::with_capacity(active.len());
        for (row, &source) in active.iter().enumerate() {
            let generated = outputs[source].len();
            let rules = processor.rules(generated, limits[source]);
            processor.log_probs(
                &logits[row * vocab..(row + 1) * vocab],
                rules,
                &mut row_log_probs,
            );
            // argmax: the first maximum, like torch.argmax.
            let (best, best_lp) = row_log_probs.iter().enumerate().fold(
                (0usize, f32::NEG_INFINITY),
                |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
            );
            outputs[source].push(best as u32);
            sums[source] += best_lp;
            let done = best as u32 == config.eos_token_id || generated + 1 >= limits[source];
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

/// The `k` best (beam, token) continuations of a source, over all its beams' log-probs.
fn top_candidates(log_probs: &[Vec<f32>], running: &[(Vec<u32>, f32)], k: usize) -> Vec<Candidate> {
    // A small sorted buffer: most candidates fail the first comparison with its last entry.
    let mut best: Vec<Candidate> = Vec::with_capacity(k + 1);
    for (beam, (lp, (_, beam_score))) in log_probs.iter().zip(running).enumerate() {
        for (token, &v) in lp.iter().enumerate() {
            let score = v + beam_score;
            if score.is_nan() || (best.len() == k && score <= best[k - 1].score) {
                continue;
            }
            // Insert after every candidate with a score >= this one (stable for ties).
            let at = best.partition_point(|c| c.score >= score);
            best.insert(
                at,
                Candidate {
                    score,
                    beam,
                    token: token as u32,
                },
            );
            best.truncate(k);
        }
    }
    best
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
    let processor = Processor {
        options,
        eos,
        vocab: config.vocab_size,
    };
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
    let mut step_log_probs: Vec<Vec<f32>> = vec![Vec::new(); nb];
    let mut step = 0usize;
    while !active.is_empty() {
        let (logits, vocab) = logits_rows(&model.decode_step(&mut state, &tokens)?)?;
        let mut reorder = Vec::with_capacity(active.len() * nb);
        let mut keep = Vec::with_capacity(active.len());
        for (slot, &source) in active.iter().enumerate() {
            let row = &mut rows[source];
            let limit = limits[source];
            let rules = processor.rules(step, limit);
            for (beam, lp) in step_log_probs.iter_mut().enumerate() {
                let r = slot * nb + beam;
                processor.log_probs(&logits[r * vocab..(r + 1) * vocab], rules, lp);
            }
            let candidates = top_candidates(&step_log_probs, &row.running, 2 * nb);
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
    fn candidates_combine_beam_scores() {
        let lp = vec![vec![-1.0, -2.0, -3.0], vec![-0.5, -0.1, -9.0]];
        let running = vec![(vec![], 0.0), (vec![], -1.0)];
        let c = top_candidates(&lp, &running, 3);
        let got: Vec<(usize, u32)> = c.iter().map(|c| (c.beam, c.token)).collect();
        // Scores: (0,0)=-1, (1,1)=-1.1, (1,0)=-1.5, (0,1)=-2.
        assert_eq!(got, vec![(0, 0), (1, 1), (1, 0)]);
    }

    #[test]
    fn limit_relative_to_source() {
        let mut o = DecodeOptions {
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            max_new_tokens: 100,
            max_length_ratio: Some(2.0),
            min_new_tokens: 0,
            forced_length: None,
            num_return_sequences: 1,
            bad_words_ids: vec![],
            forced_eos_token_id: None,
            renormalize_logits: true,
        };
        assert_eq!(o.limit_for(5), 20);
        assert_eq!(o.limit_for(80), 100);
        o.forced_length = Some(7);
        assert_eq!(o.limit_for(80), 7);
    }
}
