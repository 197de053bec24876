//! The document model: the original text plus its paragraphs and sentences as byte ranges.
//!
//! Spans always point into [`Document::text`], so the original can be rebuilt byte for
//! byte from the sentences and the gaps between them (see [`Document::rebuild`]).

use std::ops::Range;

use serde::Serialize;

use crate::segment::{split_sentences, SegmentOptions};

/// A text split into paragraphs and sentences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// The original text, unchanged.
    pub text: String,
    /// Paragraphs in order; blank lines (possibly holding spaces) separate them.
    pub paragraphs: Vec<Paragraph>,
}

/// What a paragraph is, guessed from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParagraphKind {
    /// The first line of an article, unpunctuated and followed by a blank line.
    Title,
    /// A short unpunctuated line standing alone.
    Heading,
    /// Ordinary running text.
    Paragraph,
    /// A bulleted or numbered item ("- ...", "• ...", "1. ...", "a) ...").
    ListItem,
}

/// A block of non-blank lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paragraph {
    /// What the paragraph looks like.
    pub kind: ParagraphKind,
    /// From the first to the last non-space byte of the paragraph.
    pub span: Range<usize>,
    /// Each line of the paragraph, trimmed; several lines mean hard line breaks.
    pub lines: Vec<Range<usize>>,
    /// The sentences, in order, never empty.
    pub sentences: Vec<Sentence>,
}

/// One sentence of a paragraph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sentence {
    /// Byte range into [`Document::text`], trimmed of surrounding whitespace.
    pub span: Range<usize>,
}

impl Document {
    /// Splits `text` into paragraphs and French sentences. A line break ends a sentence
    /// unless `options.wrapped` is set.
    pub fn parse(text: String, options: &SegmentOptions) -> Document {
        let paragraphs = blocks(&text)
            .into_iter()
            .map(|lines| {
                let sentences = if options.wrapped {
                    wrapped_runs(&text, &lines)
                        .into_iter()
                        .flat_map(|run| sentences_in(&text, run))
                        .collect()
                } else {
                    lines
                        .iter()
                        .flat_map(|line| sentences_in(&text, line.clone()))
                        .collect()
                };
                Paragraph::new(lines, sentences)
            })
            .collect();
        Document::with_kinds(text, paragraphs)
    }

    /// Builds a document from pre-split text: each non-blank line is exactly one sentence
    /// and blank lines separate paragraphs.
    pub fn from_lines(text: String) -> Document {
        let paragraphs = blocks(&text)
            .into_iter()
            .map(|lines| {
                let sentences = lines.iter().map(|l| Sentence { span: l.clone() }).collect();
                Paragraph::new(lines, sentences)
            })
            .collect();
        Document::with_kinds(text, paragraphs)
    }

    /// The text of one sentence.
    pub fn sentence_text(&self, sentence: &Sentence) -> &str {
        &self.text[sentence.span.clone()]
    }

    /// All sentences as (paragraph index, sentence index within the paragraph, text).
    pub fn sentences(&self) -> impl Iterator<Item = (usize, usize, &str)> + '_ {
        self.paragraphs
            .iter()
            .enumerate()
            .flat_map(move |(p, para)| {
                para.sentences
                    .iter()
                    .enumerate()
                    .map(move |(s, sentence)| (p, s, self.sentence_text(sentence)))
            })
    }

    /// The number of sentences in the document.
    pub fn sentence_count(&self) -> usize {
        self.paragraphs.iter().map(|p| p.sentences.len()).sum()
    }

    /// The text between sentences, in order: before the first sentence, between each pair,
    /// and after the last one (so there is one more gap than sentences).
    pub fn gaps(&self) -> Vec<&str> {
        let mut gaps = Vec::with_capacity(self.sentence_count() + 1);
        let mut pos = 0;
        for para in &self.paragraphs {
            for sentence in &para.sentences {
                gaps.push(&self.text[pos..sentence.span.start]);
                pos = sentence.span.end;
            }
        }
        gaps.push(&self.text[pos..]);
        gaps
    }

    /// Rebuilds the text from the sentences and the gaps between them; equal to
    /// [`Document::text`] byte for byte.
    pub fn rebuild(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        let gaps = self.gaps();
        let sentences = self.sentences().map(|(_, _, s)| s);
        for (gap, sentence) in gaps.iter().zip(sentences) {
            out.push_str(gap);
            out.push_str(sentence);
        }
        if let Some(last) = gaps.last() {
            out.push_str(last);
        }
        out
    }

    fn with_kinds(text: String, mut paragraphs: Vec<Paragraph>) -> Document {
        let count = paragraphs.len();
        for (index, para) in paragraphs.iter_mut().enumerate() {
            para.kind = classify(&text, para, index == 0 && count > 1);
        }
        Document { text, paragraphs }
    }
}

impl Paragraph {
    fn new(lines: Vec<Range<usize>>, sentences: Vec<Sentence>) -> Paragraph {
        let start = lines.first().map_or(0, |l| l.start);
        let end = lines.last().map_or(0, |l| l.end);
        Paragraph {
            kind: ParagraphKind::Paragraph,
            span: start..end,
            lines,
            sentences,
        }
    }
}

/// Headings are short: longer unpunctuated lines are more likely truncated prose.
const MAX_HEADING_CHARS: usize = 120;

fn classify(text: &str, para: &Paragraph, first_of_several: bool) -> ParagraphKind {
    let first_line = para.lines.first().map_or("", |l| &text[l.clone()]);
    if let Some(line) = para.lines.first() {
        let line_begin = text[..line.start].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let prefix = text[line_begin..line.start].trim_start();
        if markdown_heading_marker(prefix) == Some(prefix.len()) && !prefix.is_empty() {
            return if first_of_several {
                ParagraphKind::Title
            } else {
                ParagraphKind::Heading
            };
        }
    }
    if list_marker_len(first_line).is_some() {
        return ParagraphKind::ListItem;
    }
    if para.lines.len() != 1 || ends_with_punctuation(first_line) {
        return ParagraphKind::Paragraph;
    }
    if first_of_several {
        ParagraphKind::Title
    } else if first_line.chars().count() <= MAX_HEADING_CHARS {
        ParagraphKind::Heading
    } else {
        ParagraphKind::Paragraph
    }
}

/// The length of a Markdown ATX heading marker (`#` to `######`, then spaces) opening `line`.
fn markdown_heading_marker(line: &str) -> Option<usize> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    (spaces > 0).then_some(hashes + spaces)
}

fn ends_with_punctuation(line: &str) -> bool {
    let core = line.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '»' | '”' | '"' | '\'' | '’' | ')' | ']')
    });
    core.ends_with(['.', '!', '?', '…', ':', ';', ','])
}

/// The length of a bullet or enumeration marker opening `line`, if any.
pub(crate) fn list_marker_len(line: &str) -> Option<usize> {
    let mut chars = line.char_indices();
    let (_, first) = chars.next()?;
    let (marker_end, needs_space) = if matches!(first, '-' | '*' | '•' | '◦' | '▪' | '·') {
        (first.len_utf8(), true)
    } else {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let label = if (1..=3).contains(&digits) {
            digits
        } else if first.is_ascii_alphabetic() {
            1
        } else {
            return None;
        };
        match line.as_bytes().get(label) {
            Some(b')') => (label + 1, true),
            Some(b'.') if digits > 0 => (label + 1, true),
            _ => return None,
        }
    };
    let rest = &line[marker_end..];
    (needs_space && rest.starts_with(char::is_whitespace)).then_some(marker_end)
}

/// Groups the non-blank lines of `text` (trimmed) into blank-line-separated blocks.
fn blocks(text: &str) -> Vec<Vec<Range<usize>>> {
    let mut blocks = Vec::new();
    let mut current: Vec<Range<usize>> = Vec::new();
    for line in lines(text) {
        let content = &text[line.clone()];
        let trimmed_start = content.trim_start();
        let mut start = line.start + (content.len() - trimmed_start.len());
        let end = start + trimmed_start.trim_end().len();
        // A Markdown heading marker ("## ") is layout, not text to translate: it stays in the
        // gap before the line's content.
        if let Some(marker) = markdown_heading_marker(trimmed_start) {
            start = (start + marker).min(end);
            // The marker's own space may be followed by more whitespace (a vertical tab...).
            let rest = &text[start..end];
            start += rest.len() - rest.trim_start().len();
        }
        if end > start {
            current.push(start..end);
        } else if !current.is_empty() {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// Line contents without their terminators; "\n", "\r\n" and a lone "\r" all end a line.
fn lines(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(start..i);
                start = i + 1;
            }
            b'\r' => {
                lines.push(start..i);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(start..bytes.len());
    lines
}

/// In hard-wrapped text, lines join into runs; a bullet or dialogue dash starts a new one.
fn wrapped_runs(text: &str, lines: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for line in lines {
        let content = &text[line.clone()];
        let starts_item = list_marker_len(content).is_some() || content.starts_with(['—', '–']);
        match runs.last_mut() {
            Some(run) if !starts_item => run.end = line.end,
            _ => runs.push(line.clone()),
        }
    }
    runs
}

fn sentences_in(text: &str, piece: Range<usize>) -> Vec<Sentence> {
    split_sentences(&text[piece.clone()])
        .into_iter()
        .map(|r| Sentence {
            span: piece.start + r.start..piece.start + r.end,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_heading_markers_stay_out_of_sentences() {
        let text = "# Le titre\n\nUne phrase. Une autre.\n\n## Une section\n\nFin.\n".to_string();
        let doc = Document::parse(text.clone(), &SegmentOptions::default());
        let sentences: Vec<&str> = doc.sentences().map(|(_, _, s)| s).collect();
        assert_eq!(
            sentences,
            vec![
                "Le titre",
                "Une phrase.",
                "Une autre.",
                "Une section",
                "Fin."
            ]
        );
        assert_eq!(doc.paragraphs[0].kind, ParagraphKind::Title);
        assert_eq!(doc.paragraphs[2].kind, ParagraphKind::Heading);
        assert_eq!(doc.rebuild(), text);
        // A hashtag is not a heading.
        let doc = Document::parse("#paris brille.".to_string(), &SegmentOptions::default());
        assert_eq!(doc.sentences().next().unwrap().2, "#paris brille.");
    }
}
