//! Documents as they come (plain text, HTML pages and fragments, Markdown, SRT and WebVTT
//! subtitles): the sentences to translate, and the document written back in its own format
//! with English in place of French.
//!
//! The pipeline stays plain data in two phases, so that a caller can translate the sentences
//! however it likes (the command line in one call, the server through its batching queue):
//!
//! ```text
//! Markup::parse(text, format)  ->  markup.sentences()  ->  (translate them)
//!                              ->  markup.render(&translations)     the document, in English
//!                              ->  markup.bilingual(name, translations)  for side-by-side writers
//! ```

mod block;
pub mod entities;
mod html;
mod markdown;
pub mod projection;
pub mod subtitles;

use std::path::Path;

use anyhow::{bail, Result};

use crate::bilingual::BilingualDocument;
use crate::document::Document;
use crate::input::InvalidUtf8;
use crate::segment::SegmentOptions;
use crate::translator::Translation;

pub use block::Block;
pub use html::Html;
pub use markdown::Markdown;
pub use subtitles::Subtitles;

/// The formats a document can be read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// Plain text: paragraphs separated by blank lines.
    Text,
    /// Markdown (CommonMark, GitHub tables).
    Markdown,
    /// An HTML page or fragment.
    Html,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
}

impl InputFormat {
    /// Every format, in the order they are documented.
    pub const ALL: [InputFormat; 5] = [
        InputFormat::Text,
        InputFormat::Markdown,
        InputFormat::Html,
        InputFormat::Srt,
        InputFormat::Vtt,
    ];

    /// The lowercase name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Text => "text",
            InputFormat::Markdown => "markdown",
            InputFormat::Html => "html",
            InputFormat::Srt => "srt",
            InputFormat::Vtt => "vtt",
        }
    }

    /// The file extensions (lowercase, without the dot) read in this format.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            InputFormat::Text => &["txt"],
            InputFormat::Markdown => &["md", "markdown"],
            InputFormat::Html => &["html", "htm", "xhtml"],
            InputFormat::Srt => &["srt"],
            InputFormat::Vtt => &["vtt"],
        }
    }

    /// The format a file name's extension says, if it says one (case-insensitive).
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.extensions().contains(&extension.as_str()))
    }

    /// The format `text` looks like, else plain text. Only strong signs count (a `WEBVTT`
    /// header, an SRT cue, an HTML doctype or opening tag): plain text that merely looks like
    /// Markdown (a `#` heading) stays plain text, read as it always was.
    pub fn sniff(text: &str) -> InputFormat {
        if subtitles::looks_like_vtt(text) {
            InputFormat::Vtt
        } else if subtitles::looks_like_srt(text) {
            InputFormat::Srt
        } else if html::looks_like_html(text) {
            InputFormat::Html
        } else {
            InputFormat::Text
        }
    }

    /// Whether documents in this format have inline markup, which the alignment places.
    pub fn has_inline_markup(self) -> bool {
        !matches!(self, InputFormat::Text)
    }

    /// Decodes an input's bytes for this format: HTML as its `<meta charset>` declares (see
    /// [`Html`]), the others as UTF-8 (a leading byte-order mark dropped). Invalid text is an
    /// error naming `name` and the byte, unless `lossy`.
    pub fn decode(self, bytes: Vec<u8>, name: &str, lossy: bool) -> Result<String> {
        match self {
            InputFormat::Html => html::decode_page(&bytes, lossy).map_err(|offset| {
                InvalidUtf8 {
                    name: name.to_string(),
                    offset,
                }
                .into()
            }),
            _ => crate::input::decode(bytes, name, lossy),
        }
    }
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
    Markdown(Markdown),
    Html(Html),
    Subtitles(Subtitles),
}

impl Markup {
    /// Reads `text` as `format`. Plain text never fails; other formats fail on input they
    /// cannot read, naming what is wrong.
    pub fn parse(text: String, format: InputFormat, segment: &SegmentOptions) -> Result<Self> {
        let inner = match format {
            InputFormat::Text => Inner::Text(Document::parse(text, segment)),
            InputFormat::Markdown => Inner::Markdown(Markdown::parse(text)),
            InputFormat::Html => Inner::Html(Html::parse(text)?),
            InputFormat::Srt => Inner::Subtitles(Subtitles::parse(text, subtitles::Kind::Srt)?),
            InputFormat::Vtt => Inner::Subtitles(Subtitles::parse(text, subtitles::Kind::Vtt)?),
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
            Inner::Markdown(_) => InputFormat::Markdown,
            Inner::Html(_) => InputFormat::Html,
            Inner::Subtitles(subtitles) => match subtitles.kind() {
                subtitles::Kind::Srt => InputFormat::Srt,
                subtitles::Kind::Vtt => InputFormat::Vtt,
            },
        }
    }

    /// The sentences to translate, in document order.
    pub fn sentences(&self) -> Vec<&str> {
        match &self.inner {
            Inner::Text(document) => document.sentences().map(|(_, _, s)| s).collect(),
            Inner::Markdown(markdown) => block::sentences(markdown.blocks()),
            Inner::Html(html) => block::sentences(html.blocks()),
            Inner::Subtitles(subtitles) => block::sentences(subtitles.blocks()),
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
            Inner::Markdown(markdown) => Ok(markdown.render(translations)),
            Inner::Html(html) => Ok(html.render(translations)),
            Inner::Subtitles(subtitles) => Ok(subtitles.render(translations)),
        }
    }

    /// The document's text for building a corpus: plain text as it is; for the other formats
    /// their blocks' text, a blank line between blocks, markup removed.
    pub fn plain_text(&self) -> String {
        match &self.inner {
            Inner::Text(document) => document.text.clone(),
            Inner::Markdown(markdown) => block::plain_text(markdown.blocks()),
            Inner::Html(html) => block::plain_text(html.blocks()),
            Inner::Subtitles(subtitles) => block::plain_text(subtitles.blocks()),
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
            Inner::Markdown(markdown) => {
                check_count(markdown.blocks(), &translations)?;
                Ok(block::bilingual(
                    name.into(),
                    markdown.blocks(),
                    translations,
                ))
            }
            Inner::Html(html) => {
                check_count(html.blocks(), &translations)?;
                Ok(block::bilingual(name.into(), html.blocks(), translations))
            }
            Inner::Subtitles(subtitles) => {
                check_count(subtitles.blocks(), &translations)?;
                Ok(block::bilingual(
                    name.into(),
                    subtitles.blocks(),
                    translations,
                ))
            }
        }
    }
}

fn check_count(blocks: &[Block], translations: &[Translation]) -> Result<()> {
    let count: usize = blocks.iter().map(|b| b.sentences.len()).sum();
    if translations.len() != count {
        bail!("{} translations for {count} sentences", translations.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server shares parsed documents between threads.
    #[test]
    fn markup_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Markup>();
    }

    #[test]
    fn formats_by_extension_and_by_content() {
        let by = |name: &str| InputFormat::from_path(Path::new(name));
        assert_eq!(by("a.HTML"), Some(InputFormat::Html));
        assert_eq!(by("a.xhtml"), Some(InputFormat::Html));
        assert_eq!(by("b.md"), Some(InputFormat::Markdown));
        assert_eq!(by("b.markdown"), Some(InputFormat::Markdown));
        assert_eq!(by("c.srt"), Some(InputFormat::Srt));
        assert_eq!(by("c.vtt"), Some(InputFormat::Vtt));
        assert_eq!(by("d.txt"), Some(InputFormat::Text));
        assert_eq!(by("e"), None);
        assert_eq!(InputFormat::sniff("<!DOCTYPE html><p>x"), InputFormat::Html);
        assert_eq!(
            InputFormat::sniff("WEBVTT\n\n00:01.000 --> 00:02.000\nx"),
            InputFormat::Vtt
        );
        assert_eq!(
            InputFormat::sniff("1\n00:00:01,000 --> 00:00:02,000\nx"),
            InputFormat::Srt
        );
        assert_eq!(
            InputFormat::sniff("# Titre\n\nTexte [lien](u)."),
            InputFormat::Text
        );
        assert_eq!(InputFormat::sniff("Le 1er mai."), InputFormat::Text);
    }
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
