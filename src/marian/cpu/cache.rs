//! The decoder's state between steps on the CPU: the self-attention history and the
//! cross-attention keys and values.
//!
//! The history is time-major: step `t` appends one block of keys and one of values for the
//! rows decoded then, and `origins[t][row]` says which row of block `t` each current row
//! descends from. Beam search reorders rows by rewriting these small index lists, and dropping
//! finished sources only shortens them: keys and values are written once and never copied
//! (the copy-and-gather a reorder would otherwise cost grows with every step).
//!
//! Blocks follow each other in one buffer per layer (see [`super::pages`]), sized for the
//! batch's step limit when decoding starts: a step allocates nothing.

use super::pages::Pages;
use crate::marian::error::{MarianError, Result};

/// Keys and values of one decoder layer, block after block (`block_starts` of the cache).
pub(crate) struct LayerHistory {
    pub(crate) keys: Pages,
    pub(crate) values: Pages,
}

/// Decoding state of one batch.
pub(crate) struct DecoderCache {
    /// Rows per source (beams).
    pub(crate) group: usize,
    /// For each source still decoded, its index in the encoded batch (cross keys/values).
    pub(crate) sources: Vec<u32>,
    /// Per layer: self-attention history.
    pub(crate) layers: Vec<LayerHistory>,
    /// Where the block of step `t` starts in every layer's history (elements), and after the
    /// last one, where the next block goes: `steps + 1` entries.
    pub(crate) block_starts: Vec<usize>,
    /// Per step: for each current row, its row in that step's blocks.
    pub(crate) origins: Vec<Vec<u32>>,
    /// Per layer: cross-attention keys and values of every encoded source,
    /// `sources × src_len × 2·d_model` (keys then values in each row).
    pub(crate) cross: Vec<Pages>,
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

    /// Makes room in every layer's history for a block of `len` more elements, moving the
    /// history to buffers twice as large when a caller decodes past the room it has.
    pub(crate) fn reserve_block(&mut self, len: usize) -> Result<()> {
        let used = *self.block_starts.last().unwrap_or(&0);
        let needed = used.checked_add(len).ok_or_else(|| {
            MarianError::Input(format!("decoder history of {used} + {len} values"))
        })?;
        let current = self.layers.first().map_or(0, |l| l.keys.len());
        if needed > current {
            self.grow_history(needed.max(current.saturating_mul(2)))?;
        }
        Ok(())
    }

    /// Gives every layer's history room for `len` elements (`len` at least what is written),
    /// keeping what is written.
    pub(crate) fn grow_history(&mut self, len: usize) -> Result<()> {
        let used = *self.block_starts.last().unwrap_or(&0);
        for layer in &mut self.layers {
            for buffer in [&mut layer.keys, &mut layer.values] {
                let mut grown = Pages::zeroed(len, "decoder history")?;
                grown.as_mut_slice()[..used].copy_from_slice(&buffer.as_slice()[..used]);
                *buffer = grown;
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(history: usize) -> DecoderCache {
        DecoderCache {
            group: 1,
            sources: vec![0, 1],
            layers: (0..2)
                .map(|_| LayerHistory {
                    keys: Pages::zeroed(history, "test").unwrap(),
                    values: Pages::zeroed(history, "test").unwrap(),
                })
                .collect(),
            block_starts: vec![0],
            origins: Vec::new(),
            cross: Vec::new(),
            src_len: 1,
            src_lens: vec![1, 1],
        }
    }

    #[test]
    fn history_grows_past_its_first_size_and_keeps_what_was_written() {
        let mut c = cache(8);
        // Room that cannot be mapped is an error that leaves the history as it was.
        assert!(c.grow_history(usize::MAX / 2).is_err());
        assert_eq!(c.layers[1].values.len(), 8);
        // Two blocks of 4 fill the first size; the third moves the history.
        for step in 0..3 {
            c.reserve_block(4).unwrap();
            let start = *c.block_starts.last().unwrap();
            for (l, layer) in c.layers.iter_mut().enumerate() {
                for i in 0..4 {
                    let v = (100 * l + 10 * step + i) as f32;
                    layer.keys.as_mut_slice()[start + i] = v;
                    layer.values.as_mut_slice()[start + i] = -v;
                }
            }
            c.block_starts.push(start + 4);
        }
        assert_eq!(c.layers[0].keys.len(), 16);
        for (l, layer) in c.layers.iter().enumerate() {
            for step in 0..3 {
                for i in 0..4 {
                    let v = (100 * l + 10 * step + i) as f32;
                    assert_eq!(layer.keys.as_slice()[4 * step + i], v);
                    assert_eq!(layer.values.as_slice()[4 * step + i], -v);
                }
            }
        }
        // Room that cannot be counted is an error, not a panic.
        assert!(c.reserve_block(usize::MAX).is_err());
    }
}
