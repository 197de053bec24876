//! Scoring existing translations: the teacher-forced log-probability of each English target
//! given its French source, in length-sorted batches, results in input order.

use anyhow::{bail, Result};

use crate::batching::{plan_batches, BatchLimits};
use crate::marian;
use crate::translator::Translator;

/// The model's score of one (French, English) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    /// Log-probability of every target token, `</s>` included.
    pub token_logprobs: Vec<f32>,
}

impl PairScore {
    /// Sum of the token log-probabilities (in f64, in token order).
    pub fn logprob(&self) -> f64 {
        self.token_logprobs.iter().map(|&lp| f64::from(lp)).sum()
    }

    /// Number of target tokens, `</s>` included.
    pub fn tokens(&self) -> usize {
        self.token_logprobs.len()
    }

    /// Mean log-probability per token.
    pub fn mean(&self) -> f64 {
        self.logprob() / self.tokens().max(1) as f64
    }
}

/// Scores `pairs` of (French, English) text. An English side longer than the model's positions
/// cannot be scored: the error names the pair (1-based).
pub fn score_pairs(
    translator: &Translator,
    pairs: &[(&str, &str)],
    batch: BatchLimits,
) -> Result<Vec<PairScore>> {
    batch.validate()?;
    let tokenizer = translator.tokenizer();
    let positions = translator.model().config().max_position_embeddings;
    let mut sources = Vec::with_capacity(pairs.len());
    let mut targets = Vec::with_capacity(pairs.len());
    for (i, (fr, en)) in pairs.iter().enumerate() {
        let source = tokenizer.encode(fr)?;
        let target = tokenizer.encode_target(en)?;
        for (side, ids) in [("French", &source), ("English", &target)] {
            if ids.len() > positions {
                bail!(
                    "pair {}: the {side} side has {} tokens, more than the model's {positions} positions",
                    i + 1,
                    ids.len()
                );
            }
        }
        sources.push(source);
        targets.push(target);
    }
    let lengths: Vec<usize> = sources
        .iter()
        .zip(&targets)
        .map(|(s, t)| s.len().max(t.len()))
        .collect();
    let mut scores: Vec<Option<PairScore>> = vec![None; pairs.len()];
    for batch in plan_batches(&lengths, batch)? {
        let batch_sources: Vec<Vec<u32>> = batch.iter().map(|&i| sources[i].clone()).collect();
        let batch_targets: Vec<Vec<u32>> = batch.iter().map(|&i| targets[i].clone()).collect();
        let logprobs = marian::score(translator.model(), &batch_sources, &batch_targets)?;
        for (&i, token_logprobs) in batch.iter().zip(logprobs) {
            scores[i] = Some(PairScore { token_logprobs });
        }
    }
    scores
        .into_iter()
        .map(|s| s.ok_or_else(|| anyhow::anyhow!("a batch left a pair unscored")))
        .collect()
}
