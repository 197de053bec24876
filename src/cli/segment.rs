//! `traduire segment`: print the sentences of French texts.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use traduire::document::Document;
use traduire::input::{expand_inputs, read_input};
use traduire::segment::SegmentOptions;

/// Arguments of `traduire segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Files or directories (.txt and .md files, recursively) to segment; `-` is stdin.
    #[arg(default_value = "-")]
    pub inputs: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The text is hard-wrapped: single line breaks do not end sentences.
    #[arg(long)]
    pub wrapped: bool,
    /// Replace invalid UTF-8 bytes with U+FFFD instead of failing.
    #[arg(long)]
    pub lossy: bool,
}

/// How sentences are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One sentence per line, a blank line between paragraphs and documents.
    Text,
    /// One JSON object per sentence.
    Jsonl,
}

#[derive(Serialize)]
struct JsonSentence<'a> {
    doc: &'a str,
    paragraph: usize,
    sentence: usize,
    start: usize,
    end: usize,
    text: &'a str,
}

/// Runs the subcommand, reading the inputs one at a time.
pub fn run(args: SegmentArgs) -> Result<()> {
    let options = SegmentOptions {
        wrapped: args.wrapped,
    };
    let inputs = expand_inputs(&args.inputs)?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut wrote_any = false;
    for input in &inputs {
        let text = read_input(input, args.lossy)?;
        let doc = Document::parse(text, &options);
        let result = match args.format {
            Format::Text => write_text(&mut out, &doc, &mut wrote_any),
            Format::Jsonl => write_jsonl(&mut out, &doc, &input.name),
        };
        if let Err(err) = result.and_then(|()| out.flush()) {
            // `traduire segment | head` closes the pipe early: that is not a failure.
            if err.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(err).context("cannot write to standard output");
        }
    }
    Ok(())
}

fn write_text(out: &mut impl Write, doc: &Document, wrote_any: &mut bool) -> io::Result<()> {
    for para in &doc.paragraphs {
        if *wrote_any {
            writeln!(out)?;
        }
        for sentence in &para.sentences {
            // Wrapped sentences span lines; keep the one-sentence-per-line contract.
            let text = doc.sentence_text(sentence);
            let line: String = text
                .split(['\n', '\r'])
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            writeln!(out, "{line}")?;
        }
        *wrote_any = true;
    }
    Ok(())
}

fn write_jsonl(out: &mut impl Write, doc: &Document, name: &str) -> io::Result<()> {
    for (p, para) in doc.paragraphs.iter().enumerate() {
        for (s, sentence) in para.sentences.iter().enumerate() {
            let record = JsonSentence {
                doc: name,
                paragraph: p,
                sentence: s,
                start: sentence.span.start,
                end: sentence.span.end,
                text: doc.sentence_text(sentence),
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
