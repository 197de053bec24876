//! Plain text, for reading in a terminal or a pager.
//!
//! Stacked layout (default): each French sentence on its own line, its English translation on
//! the next one after `  → `, a blank line between paragraphs. Column layout (`columns`): French
//! on the left, English on the right, each sentence wrapped to its column and starting on the
//! same row as its translation.

use std::io::Write;

use anyhow::{Context, Result};
use unicode_width::UnicodeWidthChar;

use super::{display_name, BilingualDocument, DocumentWriter, Sink, WriterOptions};

/// Printed before each English line in the stacked layout.
const ARROW: &str = "  → ";
/// Continuation lines of a multi-line English sentence line up under the text after the arrow.
const ARROW_INDENT: &str = "    ";
/// Between the two columns.
const GUTTER: &str = " │ ";
/// Below this width per column, wrapping makes text unreadable: use the stacked layout instead.
const MIN_COLUMN_WIDTH: usize = 10;

pub(crate) struct TextWriter {
    out: Sink,
    /// Width of the (left, right) columns, when the column layout is in use.
    columns: Option<(usize, usize)>,
    documents: usize,
}

impl TextWriter {
    pub(crate) fn new(out: Sink, options: &WriterOptions) -> TextWriter {
        let columns = options.columns.and_then(|total| {
            let content = total.checked_sub(gutter_width())?;
            let left = content / 2;
            let right = content - left;
            (left >= MIN_COLUMN_WIDTH).then_some((left, right))
        });
        TextWriter {
            out,
            columns,
            documents: 0,
        }
    }

    fn write_body(&mut self, doc: &BilingualDocument) -> std::io::Result<()> {
        // A header names each document, like `tail` does with several files; stdin given alone
        // (the usual `cat article | traduire`) gets none so piped output stays clean.
        if self.documents > 0 {
            writeln!(self.out)?;
        }
        if doc.name != "-" || self.documents > 0 {
            writeln!(self.out, "==> {} <==", printable(display_name(&doc.name)))?;
            writeln!(self.out)?;
        }
        let mut first = true;
        for paragraph in doc.paragraphs.iter().filter(|p| !p.sentences.is_empty()) {
            if !first {
                writeln!(self.out)?;
            }
            first = false;
            for sentence in &paragraph.sentences {
                match self.columns {
                    Some((left, right)) => {
                        write_columns(&mut self.out, &sentence.fr, &sentence.en, left, right)?
                    }
                    None => write_stacked(&mut self.out, &sentence.fr, &sentence.en)?,
                }
            }
        }
        Ok(())
    }
}

impl DocumentWriter for TextWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        self.write_body(doc)
            .with_context(|| format!("writing text to {}", self.out.describe()))?;
        self.documents += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.finish()
    }
}

fn gutter_width() -> usize {
    GUTTER.chars().count()
}

fn write_stacked(out: &mut impl Write, fr: &str, en: &str) -> std::io::Result<()> {
    for line in fr.lines() {
        writeln!(out, "{}", printable(line))?;
    }
    if fr.is_empty() {
        writeln!(out)?;
    }
    let mut prefix = ARROW;
    for line in en.lines() {
        writeln!(out, "{prefix}{}", printable(line))?;
        prefix = ARROW_INDENT;
    }
    if en.is_empty() {
        writeln!(out, "{}", ARROW.trim_end())?;
    }
    Ok(())
}

fn write_columns(
    out: &mut impl Write,
    fr: &str,
    en: &str,
    left: usize,
    right: usize,
) -> std::io::Result<()> {
    let fr_lines = wrap(fr, left);
    let en_lines = wrap(en, right);
    for row in 0..fr_lines.len().max(en_lines.len()) {
        let (l, l_width) = fr_lines.get(row).map_or(("", 0), |(s, w)| (s.as_str(), *w));
        let r = en_lines.get(row).map_or("", |(s, _)| s.as_str());
        let padding = " ".repeat(left - l_width);
        let line = format!("{l}{padding}{GUTTER}{r}");
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `line` with control characters other than tab shown as U+FFFD: text output goes to
/// terminals, where a stray escape sequence from a translation could recolour or rewrite the
/// screen.
fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        line.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect::<String>()
            .into()
    } else {
        line.into()
    }
}

/// Display width of a character; control characters were replaced before wrapping.
fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Wraps `text` to lines of at most `width` display columns, breaking at spaces when possible
/// and inside words that are longer than a line. Returns each line with its width.
/// Newlines in the text start a new line; tabs and other control characters become spaces so
/// they cannot break the alignment.
fn wrap(text: &str, width: usize) -> Vec<(String, usize)> {
    let mut lines = Vec::new();
    for source_line in text.split('\n') {
        let cleaned: String = source_line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut line = String::new();
        let mut line_width = 0;
        for word in cleaned.split(' ').filter(|w| !w.is_empty()) {
            let word_width: usize = word.chars().map(char_width).sum();
            let needed = if line.is_empty() {
                word_width
            } else {
                line_width + 1 + word_width
            };
            if needed <= width {
                if !line.is_empty() {
                    line.push(' ');
                    line_width += 1;
                }
                line.push_str(word);
                line_width += word_width;
                continue;
            }
            if !line.is_empty() {
                lines.push((std::mem::take(&mut line), line_width));
                line_width = 0;
            }
            // The word alone may still be too long: cut it character by character.
            for c in word.chars() {
                let w = char_width(c);
                if line_width + w > width && !line.is_empty() {
                    lines.push((std::mem::take(&mut line), line_width));
                    line_width = 0;
                }
                line.push(c);
                line_width += w;
            }
        }
        lines.push((line, line_width));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_respects_width_and_keeps_words() {
        let lines = wrap("Le chat dort sur le canapé rouge.", 12);
        assert!(lines.iter().all(|(_, w)| *w <= 12));
        let joined: Vec<&str> = lines.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(joined.join(" "), "Le chat dort sur le canapé rouge.");
    }

    #[test]
    fn wrap_cuts_long_words_and_wide_chars() {
        let lines = wrap("anticonstitutionnellement 日本語日本語", 6);
        assert!(lines
            .iter()
            .all(|(s, w)| *w <= 6 && s.chars().map(char_width).sum::<usize>() == *w));
    }
}
