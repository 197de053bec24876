//! A standalone HTML5 page: per paragraph a two-column CSS grid where each sentence and its
//! translation share a row; titles and headings stay `h1`/`h2`. All text is escaped.

use std::borrow::Cow;
use std::io::Write;

use anyhow::{Context, Result};

use super::{
    display_name, language_label, xml_safe, BilingualDocument, BilingualParagraph, DocumentWriter,
    ParagraphKind, Sink, WriterOptions,
};

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;line-height:1.5;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
.doc{margin-bottom:3rem}
.doc-name{font-family:monospace;color:#777;border-bottom:1px solid #ddd}
.labels,.pair{display:grid;grid-template-columns:1fr 1fr;column-gap:2rem;row-gap:.3rem;margin:0 0 1rem}
.labels{font-weight:bold;color:#777;font-size:.85em;text-transform:uppercase}
.pair>*{margin:0;white-space:pre-line}
.pair>.src{color:#555}
";

pub(crate) struct HtmlWriter {
    out: Sink,
    source_lang: String,
    target_lang: String,
    /// The page head is written with the first document so the `<title>` can name it.
    started: bool,
}

impl HtmlWriter {
    pub(crate) fn new(out: Sink, options: &WriterOptions) -> HtmlWriter {
        HtmlWriter {
            out,
            source_lang: options.source_lang.clone(),
            target_lang: options.target_lang.clone(),
            started: false,
        }
    }

    fn write_head(&mut self, title: &str) -> std::io::Result<()> {
        writeln!(self.out, "<!DOCTYPE html>")?;
        writeln!(self.out, "<html lang=\"{}\">", escape(&self.target_lang))?;
        writeln!(self.out, "<head>")?;
        writeln!(self.out, "<meta charset=\"utf-8\">")?;
        writeln!(
            self.out,
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        )?;
        writeln!(self.out, "<meta name=\"generator\" content=\"traduire\">")?;
        writeln!(self.out, "<title>{}</title>", escape(title))?;
        writeln!(self.out, "<style>\n{STYLE}</style>")?;
        writeln!(self.out, "</head>")?;
        writeln!(self.out, "<body>")?;
        writeln!(
            self.out,
            "<div class=\"labels\"><div>{}</div><div>{}</div></div>",
            escape(language_label(&self.source_lang)),
            escape(language_label(&self.target_lang))
        )?;
        self.started = true;
        Ok(())
    }

    fn write_body(&mut self, doc: &BilingualDocument) -> std::io::Result<()> {
        if !self.started {
            self.write_head(&page_title(doc))?;
        }
        writeln!(self.out, "<section class=\"doc\">")?;
        writeln!(
            self.out,
            "<p class=\"doc-name\">{}</p>",
            escape(display_name(&doc.name))
        )?;
        for paragraph in doc.paragraphs.iter().filter(|p| !p.sentences.is_empty()) {
            self.write_paragraph(paragraph)?;
        }
        writeln!(self.out, "</section>")
    }

    fn write_paragraph(&mut self, paragraph: &BilingualParagraph) -> std::io::Result<()> {
        let (src, tgt) = (escape(&self.source_lang), escape(&self.target_lang));
        writeln!(self.out, "<div class=\"pair\">")?;
        match paragraph.kind {
            ParagraphKind::Title | ParagraphKind::Heading => {
                // One heading element per language: splitting a heading by sentence would
                // turn it into several headings for screen readers and outlines.
                let tag = if paragraph.kind == ParagraphKind::Title {
                    "h1"
                } else {
                    "h2"
                };
                let fr = join(paragraph.sentences.iter().map(|s| s.fr.as_str()));
                let en = join(paragraph.sentences.iter().map(|s| s.en.as_str()));
                writeln!(
                    self.out,
                    "<{tag} class=\"src\" lang=\"{src}\">{}</{tag}>",
                    escape(&fr)
                )?;
                writeln!(
                    self.out,
                    "<{tag} class=\"tgt\" lang=\"{tgt}\">{}</{tag}>",
                    escape(&en)
                )?;
            }
            ParagraphKind::Paragraph | ParagraphKind::ListItem => {
                for sentence in &paragraph.sentences {
                    writeln!(
                        self.out,
                        "<div class=\"src\" lang=\"{src}\">{}</div>",
                        escape(&sentence.fr)
                    )?;
                    writeln!(
                        self.out,
                        "<div class=\"tgt\" lang=\"{tgt}\">{}</div>",
                        escape(&sentence.en)
                    )?;
                }
            }
        }
        writeln!(self.out, "</div>")
    }
}

impl DocumentWriter for HtmlWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        self.write_body(doc)
            .with_context(|| format!("writing HTML to {}", self.out.describe()))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let describe = self.out.describe();
        let result: std::io::Result<()> = (|| {
            if !self.started {
                self.write_head("traduire")?;
            }
            writeln!(self.out, "</body>\n</html>")
        })();
        result.with_context(|| format!("writing HTML to {describe}"))?;
        self.out.finish()
    }
}

/// The page title: the first document's translated title, or its name.
fn page_title(doc: &BilingualDocument) -> String {
    doc.paragraphs
        .iter()
        .find(|p| p.kind == ParagraphKind::Title && !p.sentences.is_empty())
        .map(|p| join(p.sentences.iter().map(|s| s.en.as_str())))
        .unwrap_or_else(|| display_name(&doc.name).to_string())
}

fn join<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes `& < > " '` and replaces control characters that HTML (and XML) forbid.
fn escape(text: &str) -> Cow<'_, str> {
    match xml_safe(text) {
        Cow::Borrowed(safe) => quick_xml::escape::escape(safe),
        Cow::Owned(safe) => Cow::Owned(quick_xml::escape::escape(safe.as_str()).into_owned()),
    }
}
