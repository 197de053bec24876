//! Length-sorted batches under a token budget, as Marian and CTranslate2 build them.
//!
//! Sorting by length keeps padding (wasted work) small; the budget counts padded source
//! tokens, so one long sentence does not drag a large batch of short ones with it.

use anyhow::{bail, Result};

/// Limits on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most padded source tokens (sentences x longest sentence) in a batch.
    pub max_tokens: usize,
    /// Most sentences in a batch.
    pub max_sentences: usize,
}

/// Largest batch limits accepted: far beyond any useful batch, and far from overflow.
pub const MAX_BATCH_TOKENS: usize = 1 << 24;
/// Largest number of sentences per batch accepted.
pub const MAX_BATCH_SENTENCES: usize = 1 << 16;

impl BatchLimits {
    /// Defaults for GPUs, which are only busy with large batches.
    pub const GPU_DEFAULT: BatchLimits = BatchLimits {
        max_tokens: 16384,
        max_sentences: 256,
    };

    /// Checks both limits: at least 1, at most [`MAX_BATCH_TOKENS`] / [`MAX_BATCH_SENTENCES`].
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_BATCH_TOKENS).contains(&self.max_tokens) {
            bail!(
                "max_batch_tokens = {} is out of range (1 to {MAX_BATCH_TOKENS})",
                self.max_tokens
            );
        }
        if !(1..=MAX_BATCH_SENTENCES).contains(&self.max_sentences) {
            bail!(
                "max_batch_sentences = {} is out of range (1 to {MAX_BATCH_SENTENCES})",
                self.max_sentences
            );
        }
        Ok(())
    }
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_tokens: 4096,
            max_sentences: 64,
        }
    }
}

/// Groups items of the given lengths into batches: longest first, each batch a run of
/// similar lengths within the limits. Returns item indices; every index appears exactly once.
/// An item longer than the token budget gets a batch of its own.
pub fn plan_batches(lengths: &[usize], limits: BatchLimits) -> Result<Vec<Vec<usize>>> {
    if limits.max_tokens == 0 || limits.max_sentences == 0 {
        bail!("batch limits must be at least 1 (max tokens and max sentences)");
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Longest first; ties keep input order so the plan is deterministic.
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0usize;
    for index in order {
        let len = lengths[index].max(1);
        let new_longest = longest.max(len);
        let fits = current.len() < limits.max_sentences
            && new_longest.saturating_mul(current.len() + 1) <= limits.max_tokens;
        if !current.is_empty() && !fits {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(index);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

/// Fixed-size chunks of length-sorted items (the benchmark's batches, so every engine sees the
/// same ones): items sorted by length, longest first, cut every `size` items.
pub fn sorted_chunks(lengths: &[usize], size: usize) -> Result<Vec<Vec<usize>>> {
    if size == 0 {
        bail!("batch size must be at least 1");
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    Ok(order.chunks(size).map(<[usize]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn respects_budget_and_count() {
        let lengths = [10, 3, 7, 7, 2, 30, 1];
        let limits = BatchLimits {
            max_tokens: 21,
            max_sentences: 2,
        };
        let batches = plan_batches(&lengths, limits).unwrap();
        assert_eq!(batches, vec![vec![5], vec![0, 2], vec![3, 1], vec![4, 6]]);
    }

    proptest! {
        #[test]
        fn every_item_once_within_limits(
            lengths in proptest::collection::vec(1usize..200, 0..100),
            max_tokens in 1usize..1000,
            max_sentences in 1usize..40,
        ) {
            let limits = BatchLimits { max_tokens, max_sentences };
            let batches = plan_batches(&lengths, limits).unwrap();
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort();
            prop_assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for batch in &batches {
                prop_assert!(!batch.is_empty() && batch.len() <= max_sentences);
                let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
                prop_assert!(batch.len() == 1 || longest * batch.len() <= max_tokens);
            }
        }
    }
}
