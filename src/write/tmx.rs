//! TMX 1.4b translation memory: one `<tu>` per sentence pair.
//!
//! Each `<tu>` carries `x-doc`, `x-paragraph`, `x-sentence` and `x-score` properties, then one
//! `<tuv>` per language. Text is XML-escaped; characters XML 1.0 forbids (control characters
//! other than tab, LF and CR, and U+FFFE/U+FFFF) become U+FFFD so the file always parses, and
//! CR is written as `&#13;` because XML parsers would otherwise turn it into LF.

use std::borrow::Cow;
use std::io::Write;

use anyhow::{Context, Result};

use super::{
    finite_score, for_each_sentence, xml_safe, BilingualDocument, DocumentWriter, Sink,
    WriterOptions,
};

pub(crate) struct TmxWriter {
    out: Sink,
    source_lang: String,
    target_lang: String,
    /// The XML prologue and header are written lazily so that an I/O error is reported by a
    /// method that returns a `Result`, not by the constructor.
    started: bool,
}

impl TmxWriter {
    pub(crate) fn new(out: Sink, options: &WriterOptions) -> TmxWriter {
        TmxWriter {
            out,
            source_lang: escape(&options.source_lang).into_owned(),
            target_lang: escape(&options.target_lang).into_owned(),
            started: false,
        }
    }

    fn start(&mut self) -> std::io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        writeln!(self.out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(self.out, r#"<!DOCTYPE tmx SYSTEM "tmx14.dtd">"#)?;
        writeln!(self.out, r#"<tmx version="1.4">"#)?;
        writeln!(
            self.out,
            r#"  <header creationtool="traduire" creationtoolversion="{}" segtype="sentence" o-tmf="traduire" adminlang="en" srclang="{}" datatype="plaintext"/>"#,
            env!("CARGO_PKG_VERSION"),
            self.source_lang
        )?;
        writeln!(self.out, "  <body>")
    }

    fn write_body(&mut self, doc: &BilingualDocument) -> std::io::Result<()> {
        self.start()?;
        let name = escape(&doc.name);
        let (src, tgt) = (&self.source_lang, &self.target_lang);
        let out = &mut self.out;
        for_each_sentence(doc, |p, s, _kind, sentence| {
            writeln!(out, "    <tu>")?;
            writeln!(out, r#"      <prop type="x-doc">{name}</prop>"#)?;
            writeln!(out, r#"      <prop type="x-paragraph">{p}</prop>"#)?;
            writeln!(out, r#"      <prop type="x-sentence">{s}</prop>"#)?;
            writeln!(
                out,
                r#"      <prop type="x-score">{:?}</prop>"#,
                finite_score(sentence.score)
            )?;
            if !sentence.flags.is_empty() {
                writeln!(
                    out,
                    r#"      <prop type="x-flags">{}</prop>"#,
                    sentence.flags.text()
                )?;
            }
            writeln!(
                out,
                r#"      <tuv xml:lang="{src}"><seg>{}</seg></tuv>"#,
                escape(&sentence.fr)
            )?;
            writeln!(
                out,
                r#"      <tuv xml:lang="{tgt}"><seg>{}</seg></tuv>"#,
                escape(&sentence.en)
            )?;
            writeln!(out, "    </tu>")
        })
    }
}

impl DocumentWriter for TmxWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        self.write_body(doc)
            .with_context(|| format!("writing TMX to {}", self.out.describe()))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let describe = self.out.describe();
        let result: std::io::Result<()> = (|| {
            self.start()?;
            writeln!(self.out, "  </body>\n</tmx>")
        })();
        result.with_context(|| format!("writing TMX to {describe}"))?;
        self.out.finish()
    }
}

/// Escapes text for element content and attributes, after replacing illegal characters.
fn escape(text: &str) -> Cow<'_, str> {
    let safe = xml_safe(text);
    let escaped = quick_xml::escape::escape(safe.as_ref()).into_owned();
    if escaped.contains('\r') {
        escaped.replace('\r', "&#13;").into()
    } else if escaped == text {
        Cow::Borrowed(text)
    } else {
        escaped.into()
    }
}
