//! Teacher-forced scoring: the log-probability the model gives each token of a known target
//! (CTranslate2's `score_batch`, `marian-scorer`). Corpus builders use it to filter noisy
//! pairs; it is also the yardstick of the int8 path's accuracy.
//!
//! The log-probabilities are the model's raw ones (a log-softmax of the logits with
//! `final_logits_bias`), without decoding-time processors such as banned tokens: the same
//! numbers as `log_softmax(model(input_ids, decoder_input_ids).logits)` in transformers.

use rayon::prelude::*;

use super::error::{MarianError, Result};
use super::kernels::vector;
use super::model::MarianModel;

/// The per-token log-probabilities of `targets[i]` given `sources[i]`. Every source and target
/// is a list of token ids ending with EOS (the target's EOS is scored too).
pub fn score(
    model: &MarianModel,
    sources: &[Vec<u32>],
    targets: &[Vec<u32>],
) -> Result<Vec<Vec<f32>>> {
    check_pairs(model, sources, targets)?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let config = model.config();
    let isa = model.float_isa();
    let longest = targets.iter().map(Vec::len).max().unwrap_or(1);
    model.run(|| {
        let encoded = model.encode(sources)?;
        let mut decoder = model.start_decoding(&encoded, 1, longest)?;
        let mut scores: Vec<Vec<f32>> = targets
            .iter()
            .map(|t| Vec::with_capacity(t.len()))
            .collect();
        let mut active: Vec<usize> = (0..targets.len()).collect();
        let mut tokens = vec![config.decoder_start_token_id; targets.len()];
        let mut step = 0;
        while !active.is_empty() {
            let gold: Vec<u32> = active.iter().map(|&pair| targets[pair][step]).collect();
            let logits = decoder.step_exact(&tokens, &gold)?;
            let vocab = logits.len() / active.len();
            let step_scores: Vec<Result<f32>> = active
                .par_iter()
                .enumerate()
                .map(|(row, &pair)| {
                    let row_logits = &logits[row * vocab..(row + 1) * vocab];
                    let max = vector::max(isa, row_logits);
                    if !max.is_finite() {
                        return Err(MarianError::NotFinite(format!(" for pair {}", pair + 1)));
                    }
                    let sum = vector::sum_exp(isa, row_logits, max);
                    let offset = max + vector::ln(f64::from(sum)) as f32;
                    Ok(row_logits[targets[pair][step] as usize] - offset)
                })
                .collect();
            let mut keep = Vec::with_capacity(active.len());
            for (row, (&pair, s)) in active.iter().zip(step_scores).enumerate() {
                scores[pair].push(s?);
                if step + 1 < targets[pair].len() {
                    keep.push(row as u32);
                }
            }
            let next: Vec<usize> = keep.iter().map(|&r| active[r as usize]).collect();
            if next.len() != active.len() && !next.is_empty() {
                decoder.keep_sources(&keep)?;
            }
            active = next;
            step += 1;
            tokens = active.iter().map(|&pair| targets[pair][step - 1]).collect();
        }
        Ok(scores)
    })
}

/// Checks teacher-forced pairs: as many sources as targets, every target of 1 to the model's
/// positions tokens, every id in the vocabulary.
pub(crate) fn check_pairs(
    model: &MarianModel,
    sources: &[Vec<u32>],
    targets: &[Vec<u32>],
) -> Result<()> {
    if sources.len() != targets.len() {
        return Err(MarianError::Input(format!(
            "{} sources for {} targets",
            sources.len(),
            targets.len()
        )));
    }
    let config = model.config();
    for target in targets {
        if target.is_empty() || target.len() > config.max_position_embeddings {
            return Err(MarianError::Input(format!(
                "a target of {} tokens: targets need 1 to {} tokens (the model's positions)",
                target.len(),
                config.max_position_embeddings
            )));
        }
        if let Some(&bad) = target.iter().find(|&&id| id as usize >= config.vocab_size) {
            return Err(MarianError::Input(format!(
                "token id {bad} is outside the vocabulary ({} ids)",
                config.vocab_size
            )));
        }
    }
    Ok(())
}
