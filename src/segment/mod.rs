//! French sentence segmentation.
//!
//! The rules live in code ([`rules`]); the word lists they consult (abbreviations,
//! typical sentence openers) are data files loaded by [`lexicon`].

mod lexicon;
mod rules;

use std::ops::Range;

/// Options for turning a text into paragraphs and sentences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentOptions {
    /// The text is hard-wrapped: single line breaks do not end sentences.
    pub wrapped: bool,
}

/// Splits one line or paragraph piece into sentences, as byte ranges into `text` trimmed
/// of surrounding whitespace. Line breaks inside `text` count as plain spaces.
pub fn split_sentences(text: &str) -> Vec<Range<usize>> {
    rules::split(text)
}
