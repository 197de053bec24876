//! Output writers: turn translated documents into bilingual files.
//!
//! Every format implements [`DocumentWriter`], which receives one document at a time, so memory
//! stays bounded by the largest document however many inputs there are. [`open_writer`] picks
//! the format and the destination. File output is atomic (see [`atomic`]): the final path only
//! appears, or is replaced, when [`DocumentWriter::finish`] succeeds.

pub mod atomic;
mod html;
mod jsonl;
mod markdown;
mod moses;
mod text;
mod tmx;
mod tsv;

pub use moses::one_line as single_line;
pub use tsv::escape_field as escape_tsv_field;

use std::fmt;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use self::atomic::AtomicFile;

pub use crate::bilingual::{BilingualDocument, BilingualParagraph, BilingualSentence};
pub use crate::document::ParagraphKind;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text, stacked or in two columns (the default).
    Text,
    /// GitHub-flavoured markdown tables.
    Markdown,
    /// A standalone HTML5 page.
    Html,
    /// Tab-separated values with a header row.
    Tsv,
    /// JSON Lines, one object per sentence.
    Jsonl,
    /// TMX 1.4b translation memory.
    Tmx,
    /// Two line-aligned plain files, PREFIX.fr and PREFIX.en.
    Moses,
}

impl Format {
    /// Every format, in the order they are documented.
    pub const ALL: [Format; 7] = [
        Format::Text,
        Format::Markdown,
        Format::Html,
        Format::Tsv,
        Format::Jsonl,
        Format::Tmx,
        Format::Moses,
    ];

    /// The lowercase name used on the command line (`text`, `markdown`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Tsv => "tsv",
            Format::Jsonl => "jsonl",
            Format::Tmx => "tmx",
            Format::Moses => "moses",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = anyhow::Error;

    /// Parses a format name as printed by [`Format::name`] (`md` is accepted for markdown).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        if lower == "md" {
            return Ok(Format::Markdown);
        }
        match Format::ALL.into_iter().find(|f| f.name() == lower) {
            Some(format) => Ok(format),
            None => {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                bail!(
                    "unknown output format {s:?} (expected one of: {})",
                    names.join(", ")
                )
            }
        }
    }
}

/// Where a writer sends its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output (not allowed for [`Format::Moses`], which writes two files).
    Stdout,
    /// A file, written atomically; for [`Format::Moses`] a prefix: `PREFIX.fr` and `PREFIX.en`.
    File(PathBuf),
}

/// Options shared by the writers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Text format only: lay sentences out in two aligned columns of this total width
    /// (the caller sets it when it detects a wide enough terminal).
    pub columns: Option<usize>,
    /// Source language code, e.g. "fr" (TMX `srclang`, Moses file suffix, labels).
    pub source_lang: String,
    /// Target language code, e.g. "en".
    pub target_lang: String,
    /// TSV and JSONL: add each sentence's alignment (an `alignment` column or key).
    pub alignments: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            columns: None,
            source_lang: "fr".into(),
            target_lang: "en".into(),
            alignments: false,
        }
    }
}

/// A streaming writer for one output format.
pub trait DocumentWriter {
    /// Writes one whole document.
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()>;

    /// Writes any trailer (closing tags), flushes, and for files renames the temporary file onto
    /// the final path. Dropping a writer without calling this leaves no output file behind.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Opens a writer for `format` sending its output to `output`.
///
/// File outputs are created as temporary files next to the final path right away, so a
/// directory that does not exist or is not writable is reported here, before any translating.
pub fn open_writer(
    format: Format,
    output: Output,
    options: &WriterOptions,
) -> Result<Box<dyn DocumentWriter>> {
    if format == Format::Moses {
        let prefix = match output {
            Output::File(prefix) => prefix,
            Output::Stdout => bail!(
                "the moses format writes two files, PREFIX.{} and PREFIX.{}, so it cannot write \
                 to standard output: give an output path prefix",
                options.source_lang,
                options.target_lang
            ),
        };
        return Ok(Box::new(moses::MosesWriter::open(&prefix, options)?));
    }
    let sink = Sink::open(output)?;
    Ok(match format {
        Format::Text => Box::new(text::TextWriter::new(sink, options)),
        Format::Markdown => Box::new(markdown::MarkdownWriter::new(sink, options)),
        Format::Html => Box::new(html::HtmlWriter::new(sink, options)),
        Format::Tsv => Box::new(tsv::TsvWriter::new(sink, options.alignments)),
        Format::Jsonl => Box::new(jsonl::JsonlWriter::new(sink)),
        Format::Tmx => Box::new(tmx::TmxWriter::new(sink, options)),
        Format::Moses => unreachable!("handled above"),
    })
}

/// True when `err` was caused by writing to a closed pipe (e.g. `traduire ... | head`), which a
/// command-line caller usually wants to treat as a quiet exit rather than a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The byte destination of a single-file writer: buffered stdout or an atomic file, which only
/// appears under its name when [`Sink::finish`] succeeds.
pub enum Sink {
    /// Standard output, buffered.
    Stdout(BufWriter<Stdout>),
    /// A file written under a temporary name.
    File(AtomicFile),
}

impl Sink {
    /// Opens the destination (creating the temporary file at once, so a bad directory is
    /// reported before any work).
    pub fn open(output: Output) -> Result<Sink> {
        Ok(match output {
            Output::Stdout => Sink::Stdout(BufWriter::new(io::stdout())),
            Output::File(path) => Sink::File(AtomicFile::create(&path)?),
        })
    }

    /// A human-readable name of the destination, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Sink::Stdout(_) => "standard output".to_string(),
            Sink::File(file) => file.path().display().to_string(),
        }
    }

    /// Flushes, and for a file commits it under its final name.
    pub fn finish(self) -> Result<()> {
        match self {
            Sink::Stdout(mut out) => out.flush().context("writing to standard output"),
            Sink::File(file) => file.commit(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(out) => out.write(buf),
            Sink::File(file) => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.write_all(buf),
            Sink::File(file) => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File(file) => file.flush(),
        }
    }
}

/// The name shown for a document: stdin ("-") reads as "standard input", like `tail` does.
pub(crate) fn display_name(name: &str) -> &str {
    if name == "-" {
        "standard input"
    } else {
        name
    }
}

/// Makes a score safe for every format: NaN and -inf become `f32::MIN` (the worst score) and
/// +inf becomes `f32::MAX`, so numeric columns always hold finite floats (JSON has no NaN, and
/// Hugging Face `datasets` needs one consistent type per key).
pub(crate) fn finite_score(score: f32) -> f32 {
    if score.is_nan() || score == f32::NEG_INFINITY {
        f32::MIN
    } else if score == f32::INFINITY {
        f32::MAX
    } else {
        score
    }
}

/// Calls `f(paragraph_index, sentence_index, kind, sentence)` for every sentence of `doc`.
/// Indices are 0-based; paragraph indices count titles and headings too.
pub(crate) fn for_each_sentence(
    doc: &BilingualDocument,
    mut f: impl FnMut(usize, usize, ParagraphKind, &BilingualSentence) -> io::Result<()>,
) -> io::Result<()> {
    for (p, paragraph) in doc.paragraphs.iter().enumerate() {
        for (s, sentence) in paragraph.sentences.iter().enumerate() {
            f(p, s, paragraph.kind, sentence)?;
        }
    }
    Ok(())
}

/// Replaces characters that XML 1.0 forbids (control characters other than tab, LF and CR, and
/// U+FFFE/U+FFFF) with U+FFFD, so TMX and HTML output always parses.
pub(crate) fn xml_safe(text: &str) -> std::borrow::Cow<'_, str> {
    fn illegal(c: char) -> bool {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    }
    if text.chars().any(illegal) {
        text.chars()
            .map(|c| if illegal(c) { '\u{FFFD}' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// A language's name for column labels, falling back to the code itself.
pub(crate) fn language_label(code: &str) -> &str {
    match code {
        "fr" => "Français",
        "en" => "English",
        "de" => "Deutsch",
        "es" => "Español",
        "it" => "Italiano",
        _ => code,
    }
}
