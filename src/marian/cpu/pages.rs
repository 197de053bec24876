//! f32 buffers in memory mappings of their own, for the decoder state of a batch.
//!
//! A batch's cross-attention keys and values and its self-attention history are its largest
//! buffers (tens to hundreds of MB) and live exactly as long as the batch. Through `malloc`
//! they land in the arena of whichever pool thread runs the batch, and glibc keeps freed arena
//! memory: measured with two threads (`traduire bench --dtype int8 --max-batch-sentences 32`
//! beside a busy loop that changes which thread runs each batch), peak RSS went from 247 MB to
//! 376 MB in two runs of four, one batch's state retained by the other thread's arena. A
//! mapping of its own is returned to the system when the batch ends, whatever thread ran it,
//! and its pages are only backed once written.

use memmap2::MmapMut;

use crate::marian::error::{MarianError, Result};

/// A zero-initialised `[f32]` of fixed length in an anonymous memory mapping.
pub(crate) struct Pages {
    /// At least one byte: a mapping cannot be empty.
    map: MmapMut,
    len: usize,
}

impl Pages {
    /// `len` zeros (pages are backed lazily, on first write), or an out-of-memory error naming
    /// `what`.
    pub(crate) fn zeroed(len: usize, what: &str) -> Result<Self> {
        let out_of_memory = || MarianError::OutOfMemory {
            what: what.to_string(),
            bytes: len as u128 * 4,
        };
        let bytes = len.checked_mul(4).ok_or_else(out_of_memory)?;
        let map = MmapMut::map_anon(bytes.max(1)).map_err(|_| out_of_memory())?;
        Ok(Self { map, len })
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The elements.
    pub(crate) fn as_slice(&self) -> &[f32] {
        // The mapping is page-aligned and holds `len * 4` bytes.
        bytemuck::cast_slice(&self.map[..self.len * 4])
    }

    /// The elements, writable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(&mut self.map[..self.len * 4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_reads_zeros_and_keeps_writes() {
        let mut p = Pages::zeroed(3000, "test").unwrap();
        assert_eq!(p.len(), 3000);
        assert!(p.as_slice().iter().all(|&v| v == 0.0));
        p.as_mut_slice()[2999] = 1.5;
        assert_eq!(p.as_slice()[2999], 1.5);
        let empty = Pages::zeroed(0, "test").unwrap();
        assert!(empty.as_slice().is_empty());
    }

    #[test]
    fn impossible_sizes_are_errors() {
        let err = Pages::zeroed(usize::MAX / 2, "huge test buffer")
            .err()
            .unwrap();
        assert!(err.to_string().contains("huge test buffer"), "{err}");
    }
}
