//! The decoder's state between steps on the CPU: the self-attention history and the
//! cross-attention keys and values.
//!
//! The history is time-major: step `t` appends one block of keys and one of values for the
//! rows decoded then, and `origins[t][row]` says which row of block `t` each current row
//! descends from. Beam search reorders rows by rewriting these small index lists, and dropping
//! finished sources only shortens them: keys and values are written once and never copied
//! (the copy-and-gather a reorder would otherwise cost grows with every step).

use crate::marian::error::{MarianError, Result};

/// Keys and values of one decoder layer.
#[derive(Default)]
pub(crate) struct LayerHistory {
    /// Per step: `rows_t × d_model` keys.
    pub(crate) keys: Vec<Vec<f32>>,
    /// Per step: `rows_t × d_model` values.
    pub(crate) values: Vec<Vec<f32>>,
}

/// Decoding state of one batch.
pub(crate) struct DecoderCache {
    /// Rows per source (beams).
    pub(crate) group: usize,
    /// For each source still decoded, its index in the encoded batch (cross keys/values).
    pub(crate) sources: Vec<u32>,
    /// Per layer: self-attention history.
    pub(crate) layers: Vec<LayerHistory>,
    /// Per step: for each current row, its row in that step's blocks.
    pub(crate) origins: Vec<Vec<u32>>,
    /// Per layer: cross-attention keys and values of every encoded source,
    /// `sources × src_len × 2·d_model` (keys then values in each row).
    pub(crate) cross: Vec<Vec<f32>>,
    /// Padded source length of the encoded batch.
    pub(crate) src_len: usize,
    /// Valid length of each encoded source.
    pub(crate) src_lens: Vec<usize>,
}

impl DecoderCache {
    /// Current rows (sources × group).
    pub(crate) fn rows(&self) -> usize {
        self.sources.len() * self.group
    }

    /// Steps decoded so far.
    pub(crate) fn steps(&self) -> usize {
        self.origins.len()
    }

    /// Row `r` of the new state is row `parents[r]` of the old one.
    pub(crate) fn reorder_rows(&mut self, parents: &[u32]) -> Result<()> {
        let rows = self.rows();
        if parents.len() != rows || parents.iter().any(|&p| p as usize >= rows) {
            return Err(MarianError::Input(format!(
                "reorder_rows: {} parents for {rows} rows",
                parents.len()
            )));
        }
        for origin in &mut self.origins {
            let old = std::mem::take(origin);
            *origin = parents.iter().map(|&p| old[p as usize]).collect();
        }
        Ok(())
    }

    /// Keeps only the given sources (indices into the current ones, increasing).
    pub(crate) fn keep_sources(&mut self, keep: &[u32]) -> Result<()> {
        let current = self.sources.len();
        if keep.windows(2).any(|w| w[0] >= w[1]) || keep.iter().any(|&s| s as usize >= current) {
            return Err(MarianError::Input(format!(
                "keep_sources: {keep:?} is not an increasing list of sources below {current}"
            )));
        }
        let group = self.group;
        let rows: Vec<usize> = keep
            .iter()
            .flat_map(|&s| (0..group).map(move |g| s as usize * group + g))
            .collect();
        for origin in &mut self.origins {
            let old = std::mem::take(origin);
            *origin = rows.iter().map(|&r| old[r]).collect();
        }
        self.sources = keep.iter().map(|&s| self.sources[s as usize]).collect();
        Ok(())
    }
}
