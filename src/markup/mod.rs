//! Documents as they come (plain text today; HTML, Markdown and subtitles to follow): the
//! sentences to translate, and the document written back in its own format with English in
//! place of French.
//!
//! The pipeline stays plain data in two phases, so that a caller can translate the sentences
//! however it likes (the command line in one call, the server through its batching queue):
//!
//! ```text
//! Markup::parse(text, format)  ->  markup.sentences()  ->  (translate them)
//!                              ->  markup.render(&translations)     the document, in English
//!                              ->  markup.bilingual(name, translations)  for side-by-side writers
//! ```

use anyhow::{bail, Result};

use crate::bilingual::BilingualDocument;
use crate::document::Document;
use crate::segment::SegmentOptions;
use crate::translator::Translation;

/// The formats a document can be read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Plain text: paragraphs separated by blank lines.
    Text,
}

/// A document read in its own format: what to translate, and how to put the translations
/// back.
#[derive(Debug, Clone)]
pub struct Markup {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Text(Document),
}

impl Markup {
    /// Reads `text` as `format`. Plain text never fails; other formats fail on input they
    /// cannot read, naming what is wrong.
    pub fn parse(text: String, format: InputFormat, segment: &SegmentOptions) -> Result<Self> {
        let inner = match format {
            InputFormat::Text => Inner::Text(Document::parse(text, segment)),
        };
        Ok(Self { inner })
    }

    /// Plain text given as one sentence per line (no segmentation).
    pub fn from_lines(text: String) -> Self {
        Self {
            inner: Inner::Text(Document::from_lines(text)),
        }
    }

    /// The format the document was read in.
    pub fn format(&self) -> InputFormat {
        match &self.inner {
            Inner::Text(_) => InputFormat::Text,
        }
    }

    /// The sentences to translate, in document order.
    pub fn sentences(&self) -> Vec<&str> {
        match &self.inner {
            Inner::Text(document) => document.sentences().map(|(_, _, s)| s).collect(),
        }
    }

    /// The document in its own format with each sentence replaced by its translation
    /// (`translations` in the order of [`Markup::sentences`]); everything between sentences
    /// is kept byte for byte.
    pub fn render(&self, translations: &[Translation]) -> Result<String> {
        let count = self.sentences().len();
        if translations.len() != count {
            bail!("{} translations for {count} sentences", translations.len());
        }
        match &self.inner {
            Inner::Text(document) => {
                let gaps = document.gaps();
                let mut out = String::with_capacity(document.text.len());
                for (gap, translation) in gaps.iter().zip(translations) {
                    out.push_str(gap);
                    out.push_str(&translation.text);
                }
                if let Some(last) = gaps.last() {
                    out.push_str(last);
                }
                Ok(out)
            }
        }
    }

    /// The document's sentences paired with their translations, for the side-by-side
    /// writers.
    pub fn bilingual(
        &self,
        name: impl Into<String>,
        translations: Vec<Translation>,
    ) -> Result<BilingualDocument> {
        match &self.inner {
            Inner::Text(document) => BilingualDocument::join(name, document, translations),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Flags;

    fn translation(text: &str) -> Translation {
        Translation {
            text: text.to_string(),
            score: 0.0,
            source_tokens: 1,
            target_tokens: 1,
            flags: Flags::NONE,
            alternatives: Vec::new(),
            alignment: None,
        }
    }

    #[test]
    fn text_renders_translations_between_the_original_gaps() {
        let text = "Titre\n\n  Un. Deux.\n- Trois.\n".to_string();
        let markup = Markup::parse(text, InputFormat::Text, &SegmentOptions::default()).unwrap();
        assert_eq!(markup.sentences(), ["Titre", "Un.", "Deux.", "- Trois."]);
        let english: Vec<Translation> = ["Title", "One.", "Two.", "- Three."]
            .iter()
            .map(|t| translation(t))
            .collect();
        assert_eq!(
            markup.render(&english).unwrap(),
            "Title\n\n  One. Two.\n- Three.\n"
        );
        assert!(markup.render(&english[..2]).is_err());
        let bilingual = markup.bilingual("a.txt", english).unwrap();
        // A line break alone does not end a paragraph.
        assert_eq!(bilingual.paragraphs.len(), 2);
    }
}
