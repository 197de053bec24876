//! The bilingual document the writers print: a document's paragraphs, each sentence next to
//! its translation, built by [`BilingualDocument::join`].

use anyhow::{bail, Result};

use crate::document::{Document, ParagraphKind};
use crate::flags::Flags;
use crate::translator::Translation;

/// One translated sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct BilingualSentence {
    /// The source sentence as read.
    pub fr: String,
    /// Its translation.
    pub en: String,
    /// The model's confidence; writers replace non-finite values (see the JSONL format).
    pub score: f32,
    /// Signs that the translation may be broken.
    pub flags: Flags,
    /// The model's hard alignment in Marian's format (`"0-0 1-2"`), when it was asked for.
    pub alignment: Option<String>,
}

/// One paragraph (or title, heading, list item) of a translated document.
#[derive(Debug, Clone, PartialEq)]
pub struct BilingualParagraph {
    /// What the paragraph is, as the document model classified it.
    pub kind: ParagraphKind,
    /// The sentences in reading order.
    pub sentences: Vec<BilingualSentence>,
}

/// One translated input document (file or stdin); `name` is the input path as given, or "-".
#[derive(Debug, Clone, PartialEq)]
pub struct BilingualDocument {
    /// The input path as given on the command line, or "-" for stdin.
    pub name: String,
    /// The blocks in reading order.
    pub paragraphs: Vec<BilingualParagraph>,
}

impl BilingualDocument {
    /// Pairs every sentence of `document` with its translation; `translations` are in the
    /// order of [`Document::sentences`], one per sentence.
    pub fn join(
        name: impl Into<String>,
        document: &Document,
        translations: Vec<Translation>,
    ) -> Result<Self> {
        if translations.len() != document.sentence_count() {
            bail!(
                "{} translations for {} sentences",
                translations.len(),
                document.sentence_count()
            );
        }
        let mut next = translations.into_iter();
        let paragraphs = document
            .paragraphs
            .iter()
            .map(|paragraph| BilingualParagraph {
                kind: paragraph.kind,
                sentences: paragraph
                    .sentences
                    .iter()
                    .zip(next.by_ref())
                    .map(|(sentence, translation)| BilingualSentence {
                        fr: document.sentence_text(sentence).to_string(),
                        en: translation.text,
                        score: translation.score,
                        flags: translation.flags,
                        alignment: translation.alignment.as_ref().map(|a| a.to_pharaoh()),
                    })
                    .collect(),
            })
            .collect();
        Ok(Self {
            name: name.into(),
            paragraphs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::SegmentOptions;

    #[test]
    fn joins_sentences_in_order_and_keeps_kinds() {
        let doc = Document::parse(
            "Titre\n\nUn. Deux.\n\n- Trois.\n".to_string(),
            &SegmentOptions::default(),
        );
        let translations = ["Title", "One.", "Two.", "Three."]
            .iter()
            .map(|t| Translation {
                text: t.to_string(),
                score: -1.0,
                source_tokens: 3,
                target_tokens: 2,
                flags: Flags::NONE,
                alternatives: Vec::new(),
                alignment: None,
            })
            .collect();
        let joined = BilingualDocument::join("a.txt", &doc, translations).unwrap();
        let kinds: Vec<ParagraphKind> = joined.paragraphs.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                ParagraphKind::Title,
                ParagraphKind::Paragraph,
                ParagraphKind::ListItem
            ]
        );
        let pairs: Vec<(&str, &str)> = joined
            .paragraphs
            .iter()
            .flat_map(|p| &p.sentences)
            .map(|s| (s.fr.as_str(), s.en.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Titre", "Title"),
                ("Un.", "One."),
                ("Deux.", "Two."),
                ("- Trois.", "Three.")
            ]
        );
        assert!(BilingualDocument::join("a.txt", &doc, Vec::new()).is_err());
    }
}
