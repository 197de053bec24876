//! Markdown (GitHub flavoured): per document a `#` heading with its name, then per paragraph a
//! two-column table with one row per sentence. Title and heading rows are bold.

use std::io::Write;

use anyhow::{Context, Result};

use super::{
    display_name, language_label, BilingualDocument, DocumentWriter, ParagraphKind, Sink,
    WriterOptions,
};

pub(crate) struct MarkdownWriter {
    out: Sink,
    source_label: String,
    target_label: String,
    documents: usize,
}

impl MarkdownWriter {
    pub(crate) fn new(out: Sink, options: &WriterOptions) -> MarkdownWriter {
        MarkdownWriter {
            out,
            source_label: language_label(&options.source_lang).to_string(),
            target_label: language_label(&options.target_lang).to_string(),
            documents: 0,
        }
    }

    fn write_body(&mut self, doc: &BilingualDocument) -> std::io::Result<()> {
        if self.documents > 0 {
            writeln!(self.out)?;
        }
        writeln!(self.out, "# {}", escape_cell(display_name(&doc.name)))?;
        for paragraph in doc.paragraphs.iter().filter(|p| !p.sentences.is_empty()) {
            writeln!(self.out)?;
            writeln!(
                self.out,
                "| {} | {} |",
                self.source_label, self.target_label
            )?;
            writeln!(self.out, "| --- | --- |")?;
            // Bold keeps titles and headings recognisable: a `#` cannot start a table cell.
            let strong = if matches!(
                paragraph.kind,
                ParagraphKind::Paragraph | ParagraphKind::ListItem
            ) {
                ""
            } else {
                "**"
            };
            for sentence in &paragraph.sentences {
                let fr = escape_cell(&sentence.fr);
                let en = escape_cell(&sentence.en);
                let fr = if fr.is_empty() {
                    fr
                } else {
                    format!("{strong}{fr}{strong}")
                };
                let en = if en.is_empty() {
                    en
                } else {
                    format!("{strong}{en}{strong}")
                };
                writeln!(self.out, "| {fr} | {en} |")?;
            }
        }
        Ok(())
    }
}

impl DocumentWriter for MarkdownWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        self.write_body(doc)
            .with_context(|| format!("writing markdown to {}", self.out.describe()))?;
        self.documents += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.finish()
    }
}

/// Makes text safe inside a one-line table cell: newlines become `<br>`, markdown punctuation is
/// backslash-escaped (so `|` cannot split the cell and `*` cannot start emphasis) and `<`, `&`
/// become entities (so `<script>` stays text in renderers that allow inline HTML).
fn escape_cell(text: &str) -> String {
    let text = text.trim();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                // A CRLF pair is one line break.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_cell;

    #[test]
    fn cells_stay_on_one_line_and_in_one_column() {
        assert_eq!(escape_cell("a|b\nc\r\nd"), r"a\|b<br>c<br>d");
        assert_eq!(escape_cell("<b> & *x*"), r"&lt;b&gt; &amp; \*x\*");
    }
}
