//! Tab-separated values: header `doc paragraph sentence fr en score flags` (plus `alignment`
//! with `--alignments`: Marian's hard alignment, `0-0 1-2`), one row per sentence (`flags`:
//! comma-separated names such as `repeat,length_limit`, empty when none).
//!
//! `doc` is the document name as given ("-" for stdin); `paragraph` and `sentence` are 0-based
//! indices. Backslash, tab, newline and CR inside fields are written as `\\`, `\t`, `\n`, `\r`,
//! so every row is one line with exactly seven fields (eight with alignments).

use std::io::Write;

use anyhow::{Context, Result};

use super::{finite_score, for_each_sentence, BilingualDocument, DocumentWriter, Sink};

pub(crate) struct TsvWriter {
    out: Sink,
    header_written: bool,
    alignments: bool,
}

impl TsvWriter {
    pub(crate) fn new(out: Sink, alignments: bool) -> TsvWriter {
        TsvWriter {
            out,
            header_written: false,
            alignments,
        }
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        if !self.header_written {
            let extra = if self.alignments { "\talignment" } else { "" };
            writeln!(
                self.out,
                "doc\tparagraph\tsentence\tfr\ten\tscore\tflags{extra}"
            )?;
            self.header_written = true;
        }
        Ok(())
    }
}

impl DocumentWriter for TsvWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        let describe = self.out.describe();
        self.write_header()
            .with_context(|| format!("writing TSV to {describe}"))?;
        let name = escape_field(&doc.name);
        let alignments = self.alignments;
        let out = &mut self.out;
        for_each_sentence(doc, |p, s, _kind, sentence| {
            write!(
                out,
                "{name}\t{p}\t{s}\t{}\t{}\t{:?}\t{}",
                escape_field(&sentence.fr),
                escape_field(&sentence.en),
                // Debug prints a float as a float ("1.0", not "1"), as in JSONL.
                finite_score(sentence.score),
                sentence.flags.text()
            )?;
            if alignments {
                write!(out, "\t{}", sentence.alignment.as_deref().unwrap_or(""))?;
            }
            writeln!(out)
        })
        .with_context(|| format!("writing TSV to {describe}"))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        // Even an empty run produces a well-formed file with its header.
        let describe = self.out.describe();
        self.write_header()
            .with_context(|| format!("writing TSV to {describe}"))?;
        self.out.finish()
    }
}

/// Escapes backslash, tab, newline and carriage return as `\\`, `\t`, `\n`, `\r`, so a field
/// never breaks a TSV row.
pub fn escape_field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}
