//! SentencePiece's text normalizer, ported from `normalizer.cc` (sentencepiece 0.2).
//!
//! `tokenizers`' `Precompiled` normalizer works grapheme by grapheme and keeps only the
//! shortest rule that matches, so it disagrees with SentencePiece on combining marks after
//! characters that have a rule (`Ａ\u{308}`, `½\u{301}`...). SentencePiece applies the
//! *longest* rule matching at each byte position; this port does the same, over the same
//! precompiled charsmap (a darts-clone double-array trie plus a blob of NUL-terminated
//! replacement strings), and adds spm's whitespace handling.

use std::ops::Range;

/// A SentencePiece `NormalizerSpec`, ready to run.
pub(crate) struct SpmNormalizer {
    /// darts-clone units; empty when the model has no charsmap (identity normalization).
    trie: Vec<u32>,
    /// Replacement strings, NUL-terminated, indexed by the trie's values.
    replacements: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl SpmNormalizer {
    /// Parses `precompiled_charsmap` and keeps the whitespace options.
    pub(crate) fn new(
        charsmap: &[u8],
        add_dummy_prefix: bool,
        remove_extra_whitespaces: bool,
        escape_whitespaces: bool,
    ) -> Result<Self, String> {
        let (trie, replacements) = if charsmap.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            if charsmap.len() < 4 {
                return Err("precompiled_charsmap is truncated".into());
            }
            let trie_len =
                u32::from_le_bytes([charsmap[0], charsmap[1], charsmap[2], charsmap[3]]) as usize;
            let rest = &charsmap[4..];
            if trie_len > rest.len() || trie_len < 4 {
                return Err("precompiled_charsmap has a bad trie size".into());
            }
            let trie = rest[..trie_len]
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (trie, rest[trie_len..].to_vec())
        };
        Ok(Self {
            trie,
            replacements,
            add_dummy_prefix,
            remove_extra_whitespaces,
            escape_whitespaces,
        })
    }

    /// Normalizes `input` exactly as `SentencePieceProcessor::Encode` does before the lattice.
    pub(crate) fn normalize(&self, input: &str) -> String {
        self.normalize_into(input, |_, _| {})
    }

    /// [`Self::normalize`], also giving for each byte of the output the byte range of `input`
    /// it came from (the dummy prefix comes from the empty range at the first kept byte).
    pub(crate) fn normalize_with_offsets(&self, input: &str) -> (String, Vec<Range<usize>>) {
        let mut offsets = Vec::with_capacity(input.len() + 3);
        let out = self.normalize_into(input, |bytes, from| {
            offsets.extend(std::iter::repeat_n(from, bytes));
        });
        offsets.truncate(out.len());
        (out, offsets)
    }

    /// The normalization itself: `emitted(n, range)` is called after every `n` bytes written
    /// to the output, with the range of `input` they replace (trailing whitespace removed at
    /// the end may have been reported).
    fn normalize_into(&self, input: &str, mut emitted: impl FnMut(usize, Range<usize>)) -> String {
        let space = if self.escape_whitespaces { "▁" } else { " " };
        let mut rest = input;
        // Leading whitespace (after normalization) is dropped.
        if self.remove_extra_whitespaces {
            while !rest.is_empty() {
                let (piece, consumed) = self.normalize_prefix(rest);
                if piece != " " {
                    break;
                }
                rest = &rest[consumed..];
            }
        }
        if rest.is_empty() {
            return String::new();
        }

        let mut out = String::with_capacity(rest.len() + 3);
        let mut at = input.len() - rest.len();
        if self.add_dummy_prefix {
            out.push_str(space);
            emitted(space.len(), at..at);
        }
        let mut is_prev_space = self.remove_extra_whitespaces;
        while !rest.is_empty() {
            let (mut piece, consumed) = self.normalize_prefix(rest);
            if is_prev_space {
                piece = piece.trim_start_matches(' ');
            }
            if !piece.is_empty() {
                let before = out.len();
                for c in piece.chars() {
                    if c == ' ' {
                        out.push_str(space);
                    } else {
                        out.push(c);
                    }
                }
                emitted(out.len() - before, at..at + consumed);
                is_prev_space = piece.ends_with(' ');
            }
            rest = &rest[consumed..];
            at += consumed;
            if !self.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        // Trailing whitespace goes too, the dummy prefix included when nothing else is left.
        if self.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        out
    }

    /// The replacement for the longest rule matching at the start of `input`, and how many
    /// bytes it consumes; one unchanged character when no rule matches.
    fn normalize_prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        if let Some((consumed, value)) = self.longest_match(input.as_bytes()) {
            let start = value as usize;
            let tail = self.replacements.get(start..).unwrap_or(&[]);
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            // A rule must end on a character boundary and yield UTF-8; anything else means a
            // corrupt charsmap, in which case the character is kept as is.
            if let (true, Ok(replacement)) = (
                input.is_char_boundary(consumed),
                std::str::from_utf8(&tail[..end]),
            ) {
                return (replacement, consumed);
            }
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    /// darts-clone `commonPrefixSearch`, keeping the longest hit: (length, value).
    fn longest_match(&self, key: &[u8]) -> Option<(usize, u32)> {
        let unit = |pos: usize| self.trie.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let label = |u: u32| u & ((1 << 31) | 0xFF);
        let has_leaf = |u: u32| (u >> 8) & 1 == 1;
        let value = |u: u32| u & ((1 << 31) - 1);

        let mut best = None;
        let mut node = offset(unit(0)?);
        for (i, &byte) in key.iter().enumerate() {
            node ^= byte as usize;
            let u = unit(node)?;
            if label(u) != byte as u32 {
                break;
            }
            node ^= offset(u);
            if has_leaf(u) {
                best = Some((i + 1, value(unit(node)?)));
            }
        }
        best
    }
}
