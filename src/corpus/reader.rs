//! Corpus inputs as one stream of rows: plain files of one sentence per line, articles to
//! segment, or JSONL with the French text in a named field; gzip and zstd compressed or not
//! (recognised by their magic bytes); files, directories or stdin.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use crate::document::{Document, ParagraphKind};
use crate::input::decode;
use crate::markup::{InputFormat, Markup};
use crate::segment::SegmentOptions;

/// How an input is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputMode {
    /// One sentence per line (Moses convention); an empty line is an empty row.
    Lines,
    /// Articles, split into paragraphs and sentences as `translate` does.
    Documents {
        /// Hard-wrapped text: single line breaks do not end sentences.
        wrapped: bool,
    },
    /// JSON Lines, the French text in string field `field`; the other fields are kept.
    Jsonl {
        /// The field holding the French text.
        field: String,
    },
}

/// Where a row comes from: its stable id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowId {
    /// Line `line` (1-based) of an input.
    Line {
        /// The input's name.
        doc: String,
        /// The line number, from 1.
        line: u64,
    },
    /// A sentence of an article.
    Sentence {
        /// The input's name.
        doc: String,
        /// Paragraph index, from 0.
        paragraph: usize,
        /// Sentence index within the paragraph, from 0.
        sentence: usize,
        /// What the paragraph is.
        kind: ParagraphKind,
    },
}

impl RowId {
    /// The id as one string: `doc:line` or `doc:paragraph:sentence`.
    pub fn text(&self) -> String {
        match self {
            RowId::Line { doc, line } => format!("{doc}:{line}"),
            RowId::Sentence {
                doc,
                paragraph,
                sentence,
                ..
            } => format!("{doc}:{paragraph}:{sentence}"),
        }
    }
}

/// One unit of the corpus: a French sentence (possibly empty) and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Position in the whole stream, from 0 (the same whatever the shard).
    pub index: u64,
    /// Stable id.
    pub id: RowId,
    /// The French text.
    pub source: String,
    /// For JSONL input: the input object (carried to the JSONL output).
    pub fields: Option<Map<String, Value>>,
}

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusInput {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl CorpusInput {
    /// The name used in ids and messages: the path as given, or `-`.
    pub fn name(&self) -> String {
        match self {
            CorpusInput::Stdin => "-".to_string(),
            CorpusInput::File(path) => path.display().to_string(),
        }
    }
}

/// Expands arguments into inputs: `-` is stdin, a file is itself, a directory gives its
/// regular, non-hidden files recursively in sorted order.
pub fn expand(args: &[String]) -> Result<Vec<CorpusInput>> {
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(CorpusInput::Stdin);
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).with_context(|| format!("{arg}: cannot open input"))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect(path, &mut files)?;
            if files.is_empty() {
                bail!("{arg}: directory contains no files");
            }
            files.sort();
            inputs.extend(files.into_iter().map(CorpusInput::File));
        } else {
            inputs.push(CorpusInput::File(path.to_path_buf()));
        }
    }
    Ok(inputs)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read directory", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot read directory", dir.display()))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), files)?;
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// Opens an input, decompressing gzip or zstd data (recognised by their magic bytes).
fn open(input: &CorpusInput) -> Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match input {
        CorpusInput::Stdin => Box::new(io::stdin()),
        CorpusInput::File(path) => Box::new(
            File::open(path).with_context(|| format!("{}: cannot open input", path.display()))?,
        ),
    };
    let mut reader = BufReader::with_capacity(1 << 16, raw);
    let magic = reader
        .fill_buf()
        .with_context(|| format!("{}: cannot read input", input.name()))?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)
            .with_context(|| format!("{}: not valid zstd data", input.name()))?;
        Box::new(BufReader::new(decoder))
    } else {
        Box::new(reader)
    })
}

/// Reads rows from the inputs in order, one input at a time (a whole article in documents
/// mode, a line at a time otherwise), so memory does not grow with the input.
pub struct RowReader {
    inputs: VecDeque<CorpusInput>,
    mode: InputMode,
    lossy: bool,
    next_index: u64,
    current: Option<Current>,
}

enum Current {
    Lines {
        name: String,
        reader: Box<dyn BufRead>,
        line: u64,
    },
    Rows(VecDeque<Row>),
}

impl RowReader {
    /// A reader over `inputs`; `lossy` replaces invalid UTF-8 instead of failing.
    pub fn new(inputs: Vec<CorpusInput>, mode: InputMode, lossy: bool) -> Self {
        Self {
            inputs: inputs.into(),
            mode,
            lossy,
            next_index: 0,
            current: None,
        }
    }

    /// The next row, `None` at the end of the last input.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        loop {
            match &mut self.current {
                None => {
                    let Some(input) = self.inputs.pop_front() else {
                        return Ok(None);
                    };
                    self.current = Some(self.start(&input)?);
                }
                Some(Current::Rows(rows)) => match rows.pop_front() {
                    Some(mut row) => {
                        row.index = self.next_index;
                        self.next_index += 1;
                        return Ok(Some(row));
                    }
                    None => self.current = None,
                },
                Some(Current::Lines { name, reader, line }) => {
                    let mut bytes = Vec::new();
                    let read = reader.read_until(b'\n', &mut bytes).with_context(|| {
                        format!(
                            "{name}: cannot read line {} (truncated or corrupt compressed data?)",
                            *line + 1
                        )
                    })?;
                    if read == 0 {
                        self.current = None;
                        continue;
                    }
                    *line += 1;
                    if bytes.last() == Some(&b'\n') {
                        bytes.pop();
                        if bytes.last() == Some(&b'\r') {
                            bytes.pop();
                        }
                    }
                    let at = format!("{name}:{line}");
                    let text = decode(bytes, &at, self.lossy)?;
                    let id = RowId::Line {
                        doc: name.clone(),
                        line: *line,
                    };
                    let row = match &self.mode {
                        InputMode::Jsonl { field } => jsonl_row(&at, &text, field, id)?,
                        _ => Row {
                            index: 0,
                            id,
                            source: text,
                            fields: None,
                        },
                    };
                    let index = self.next_index;
                    self.next_index += 1;
                    return Ok(Some(Row { index, ..row }));
                }
            }
        }
    }

    fn start(&self, input: &CorpusInput) -> Result<Current> {
        let name = input.name();
        let mut reader = open(input)?;
        match &self.mode {
            InputMode::Documents { wrapped } => {
                let mut bytes = Vec::new();
                reader.read_to_end(&mut bytes).with_context(|| {
                    format!("{name}: cannot read input (truncated or corrupt compressed data?)")
                })?;
                let text = document_text(input, bytes, &name, self.lossy)?;
                let document = Document::parse(text, &SegmentOptions { wrapped: *wrapped });
                let mut rows = VecDeque::new();
                for (p, paragraph) in document.paragraphs.iter().enumerate() {
                    for (s, sentence) in paragraph.sentences.iter().enumerate() {
                        rows.push_back(Row {
                            index: 0,
                            id: RowId::Sentence {
                                doc: name.clone(),
                                paragraph: p,
                                sentence: s,
                                kind: paragraph.kind,
                            },
                            source: document.sentence_text(sentence).to_string(),
                            fields: None,
                        });
                    }
                }
                Ok(Current::Rows(rows))
            }
            _ => Ok(Current::Lines {
                name,
                reader,
                line: 0,
            }),
        }
    }
}

/// An article's text: HTML, Markdown and subtitle files (by their extension, under any
/// `.gz` or `.zst`) read as their text, markup removed (one paragraph per block); other
/// files as they are.
fn document_text(input: &CorpusInput, bytes: Vec<u8>, name: &str, lossy: bool) -> Result<String> {
    let format = match input {
        CorpusInput::File(path) => {
            let compressed = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gz") || e.eq_ignore_ascii_case("zst"));
            let inner = if compressed {
                path.with_extension("")
            } else {
                path.clone()
            };
            InputFormat::from_path(&inner)
        }
        CorpusInput::Stdin => None,
    };
    match format {
        Some(format) if format != InputFormat::Text => {
            let text = format.decode(bytes, name, lossy)?;
            let markup = Markup::parse(text, format, &SegmentOptions::default())
                .with_context(|| name.to_string())?;
            Ok(markup.plain_text())
        }
        _ => decode(bytes, name, lossy),
    }
}

/// A JSONL line: an object with a string field `field`.
fn jsonl_row(at: &str, text: &str, field: &str, id: RowId) -> Result<Row> {
    let value: Value =
        serde_json::from_str(text).with_context(|| format!("{at}: not a valid JSON line"))?;
    let Value::Object(fields) = value else {
        bail!("{at}: expected a JSON object");
    };
    let source = match fields.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => bail!("{at}: field {field:?} is not a string ({other})"),
        None => bail!("{at}: no field {field:?}"),
    };
    Ok(Row {
        index: 0,
        id,
        source,
        fields: Some(fields),
    })
}
