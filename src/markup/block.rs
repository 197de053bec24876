//! A block of a document translated as one piece of plain text: an HTML paragraph, a
//! Markdown heading, an attribute, the cues of a subtitle sentence.

use std::ops::Range;

use crate::bilingual::{BilingualDocument, BilingualParagraph, BilingualSentence};
use crate::document::ParagraphKind;
use crate::segment::split_sentences;
use crate::translator::Translation;

use super::projection::SentencePair;

/// Plain text to translate and its sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What the block is, for the side-by-side writers.
    pub kind: ParagraphKind,
    /// The plain text (markup removed, character references decoded, whitespace collapsed).
    pub text: String,
    /// The sentences, as byte ranges into `text`: a line break always ends one.
    pub sentences: Vec<Range<usize>>,
}

impl Block {
    /// Segments `text` into sentences, line by line.
    pub fn new(kind: ParagraphKind, text: String) -> Self {
        let mut sentences = Vec::new();
        let mut start = 0;
        for line in text.split('\n') {
            for range in split_sentences(line) {
                sentences.push(start + range.start..start + range.end);
            }
            start += line.len() + 1;
        }
        Self {
            kind,
            text,
            sentences,
        }
    }

    /// The whole text as one sentence (an attribute value), trimmed.
    pub fn single(kind: ParagraphKind, text: String) -> Self {
        let trimmed = text.trim();
        let start = trimmed.as_ptr() as usize - text.as_ptr() as usize;
        let sentences = if trimmed.is_empty() {
            Vec::new()
        } else {
            std::iter::once(start..start + trimmed.len()).collect()
        };
        Self {
            kind,
            text,
            sentences,
        }
    }

    /// The block's sentences paired with their translations, for the projection.
    pub fn pairs<'a>(&self, translations: &'a [Translation]) -> Vec<SentencePair<'a>> {
        self.sentences
            .iter()
            .zip(translations)
            .map(|(range, t)| SentencePair {
                source: range.clone(),
                target: &t.text,
                alignment: t.alignment.as_ref(),
            })
            .collect()
    }
}

/// True when `text` has something to translate: at least one letter.
pub fn has_letters(text: &str) -> bool {
    text.chars().any(char::is_alphabetic)
}

/// The sentences of `blocks`, in order.
pub fn sentences(blocks: &[Block]) -> Vec<&str> {
    blocks
        .iter()
        .flat_map(|b| b.sentences.iter().map(|r| &b.text[r.clone()]))
        .collect()
}

/// Splits `translations` (in the order of [`sentences`]) into one slice per block.
pub fn per_block<'t>(blocks: &[Block], translations: &'t [Translation]) -> Vec<&'t [Translation]> {
    let mut out = Vec::with_capacity(blocks.len());
    let mut start = 0;
    for block in blocks {
        let end = (start + block.sentences.len()).min(translations.len());
        out.push(&translations[start..end]);
        start = end;
    }
    out
}

/// The blocks side by side with their translations; blocks without sentences are left out.
pub fn bilingual(
    name: String,
    blocks: &[Block],
    translations: Vec<Translation>,
) -> BilingualDocument {
    let mut next = translations.into_iter();
    let mut paragraphs = Vec::new();
    for block in blocks {
        let sentences: Vec<BilingualSentence> = block
            .sentences
            .iter()
            .zip(next.by_ref())
            .map(|(range, t)| BilingualSentence {
                fr: block.text[range.clone()].to_string(),
                alignment: t.alignment.as_ref().map(|a| a.to_pharaoh()),
                en: t.text,
                score: t.score,
                flags: t.flags,
            })
            .collect();
        if !sentences.is_empty() {
            paragraphs.push(BilingualParagraph {
                kind: block.kind,
                sentences,
            });
        }
    }
    BilingualDocument { name, paragraphs }
}

/// The blocks' text for corpus building: one paragraph per block with sentences, a blank
/// line between them (line breaks inside a block kept, so that they still end sentences).
pub fn plain_text(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks.iter().filter(|b| !b.sentences.is_empty()) {
        out.push_str(block.text.trim());
        out.push_str("\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_end_sentences() {
        let block = Block::new(
            ParagraphKind::Paragraph,
            "Un. Deux\nTrois quatre".to_string(),
        );
        let texts: Vec<&str> = block
            .sentences
            .iter()
            .map(|r| &block.text[r.clone()])
            .collect();
        assert_eq!(texts, ["Un.", "Deux", "Trois quatre"]);
        let single = Block::single(ParagraphKind::Paragraph, "  Un. Deux ".to_string());
        assert_eq!(&single.text[single.sentences[0].clone()], "Un. Deux");
        assert!(Block::single(ParagraphKind::Paragraph, " ".into())
            .sentences
            .is_empty());
    }
}
