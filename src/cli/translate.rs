//! `traduire translate`: articles in, bilingual side-by-side output out.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use traduire::input::{expand_inputs, read_bytes, Input, Source};
use traduire::marian::ModelOptions;
use traduire::markup::{InputFormat, Markup};
use traduire::segment::SegmentOptions;
use traduire::translator::{Event, Translator, TranslatorOptions};
use traduire::write::{open_writer, DocumentWriter, Output, Sink, WriterOptions};

use super::args::{DecodeArgs, FormatArg, InputFormatArg, ModelArgs};
use super::progress::sentence_bar;

/// Arguments of `traduire translate`.
#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Files, directories (.txt .md .markdown .html .htm .xhtml .srt .vtt files,
    /// recursively) or `-` for stdin.
    #[arg(default_value = "-")]
    pub inputs: Vec<String>,
    /// Output format: side by side (text, markdown, html), a corpus (tsv, jsonl, tmx,
    /// moses), or same: the document in its own format with English in place of French.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// How to read the inputs: auto goes by extension, else by content, else plain text.
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,
    /// Write to this file (atomically: a temp file, then a rename) instead of stdout. For
    /// moses, the prefix of PREFIX.fr and PREFIX.en; for same with several inputs, a
    /// directory that receives one file per input.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Each input line is already one sentence: do not segment (blank lines still separate
    /// paragraphs).
    #[arg(long)]
    pub sentences: bool,
    /// The text is hard-wrapped: single line breaks do not end sentences.
    #[arg(long)]
    pub wrapped: bool,
    /// Replace invalid UTF-8 bytes with U+FFFD instead of failing.
    #[arg(long)]
    pub lossy: bool,
    /// Add the model's word alignment to each sentence (`-f jsonl` and `-f tsv`): Marian's
    /// hard alignment, source-target pairs of SentencePiece token indices ("0-0 1-2 ...").
    #[arg(long)]
    pub alignments: bool,
    /// No progress bar and no warnings on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Where the translated documents go: a side-by-side writer, or (for `-f same`) each
/// document rendered in its own format.
enum Destination {
    Writer(Box<dyn DocumentWriter>),
    /// Standard output, or one file.
    Same(Option<Sink>),
    /// A directory: one file per input, named as the input.
    SameDir(PathBuf),
}

/// Runs the subcommand: one document at a time, so memory holds one document and one batch.
pub fn run(args: TranslateArgs) -> Result<()> {
    // Everything that can be checked without the model comes first: a typo must not cost a
    // download.
    let model_options = args.model.runtime.options()?;
    args.decode.check()?;
    args.model.check()?;
    let forced = args.input_format.forced();
    if args.sentences && forced.is_some_and(|f| f != InputFormat::Text) {
        bail!("--sentences reads plain text, one sentence per line: it cannot be used with --input-format {}", forced.map_or("", InputFormat::name));
    }
    if args.alignments && !matches!(args.format, FormatArg::Jsonl | FormatArg::Tsv) {
        bail!(
            "--alignments is written by -f jsonl and -f tsv only, not by -f {}",
            args.format
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_string())
        );
    }
    let inputs = expand_inputs(&args.inputs)?;
    let interactive = std::io::stderr().is_terminal() && !args.quiet;
    let mut destination = match args.format.writer_format() {
        Some(format) => {
            let output = match &args.output {
                Some(path) => Output::File(path.clone()),
                None => Output::Stdout,
            };
            let writer_options = WriterOptions {
                columns: text_columns(&args),
                alignments: args.alignments,
                ..WriterOptions::default()
            };
            Destination::Writer(open_writer(format, output, &writer_options)?)
        }
        None => match (&args.output, inputs.len()) {
            (Some(dir), _) if dir.is_dir() => Destination::SameDir(dir.clone()),
            (Some(path), 1) => Destination::Same(Some(Sink::open(Output::File(path.clone()))?)),
            (None, 1) => Destination::Same(None),
            (_, n) => bail!(
                "-f same writes one document per input, and {n} inputs were given: give -o an existing directory"
            ),
        },
    };

    // The model loads on the first non-empty document, so empty input needs no model.
    let mut translator: Option<(Translator, TranslatorOptions)> = None;
    let progress = sentence_bar(interactive);
    for input in &inputs {
        let (markup, format) = read_document(input, &args, forced)?;
        let sentences = markup.sentences();
        let translations = if sentences.is_empty() {
            Vec::new()
        } else {
            if translator.is_none() {
                translator = Some(load(&args, &model_options, interactive)?);
            }
            let (translator, options) = translator.as_mut().expect("loaded above");
            // Inline markup is put back through the alignment, when the document is
            // written in its own format.
            options.alignments =
                args.alignments || (args.format == FormatArg::Same && format.has_inline_markup());
            progress.inc_length(sentences.len() as u64);
            let quiet = args.quiet;
            let name = &input.name;
            translator.translate(&sentences, options, &mut |event| match event {
                Event::Progress { sentences } => progress.inc(sentences as u64),
                Event::LongSentenceSplit {
                    sentence,
                    tokens,
                    limit,
                    parts,
                } if !quiet => progress.suspend(|| {
                    eprintln!(
                        "warning: {name}: a sentence of {tokens} tokens (limit {limit}) was translated in {parts} parts: «{}»",
                        preview(&sentence)
                    )
                }),
                Event::LongSentenceSplit { .. } => {}
            })?
        };
        match &mut destination {
            Destination::Writer(writer) => {
                let bilingual = markup.bilingual(input.name.clone(), translations)?;
                progress.suspend(|| writer.write_document(&bilingual))?;
            }
            Destination::Same(sink) => {
                let text = markup.render(&translations)?;
                match sink {
                    Some(sink) => sink
                        .write_all(text.as_bytes())
                        .with_context(|| sink.describe())?,
                    None => progress
                        .suspend(|| {
                            let mut out = std::io::stdout().lock();
                            out.write_all(text.as_bytes())?;
                            out.flush()
                        })
                        .context("writing to standard output")?,
                }
            }
            Destination::SameDir(dir) => {
                let text = markup.render(&translations)?;
                let path = dir.join(output_name(input));
                let mut sink = Sink::open(Output::File(path.clone()))?;
                sink.write_all(text.as_bytes())
                    .with_context(|| path.display().to_string())?;
                sink.finish()?;
            }
        }
    }
    progress.finish_and_clear();
    match destination {
        Destination::Writer(writer) => writer.finish(),
        Destination::Same(Some(sink)) => sink.finish(),
        Destination::Same(None) | Destination::SameDir(_) => Ok(()),
    }
}

/// Reads and parses one input in its format: the one forced, else its extension's, else
/// what its content looks like, else plain text.
fn read_document(
    input: &Input,
    args: &TranslateArgs,
    forced: Option<InputFormat>,
) -> Result<(Markup, InputFormat)> {
    let bytes = read_bytes(input)?;
    let by_name = match &input.source {
        Source::File(path) => InputFormat::from_path(path),
        Source::Stdin => None,
    };
    let format = match forced.or(by_name) {
        Some(format) => format,
        None => InputFormat::sniff(&String::from_utf8_lossy(&bytes)),
    };
    let text = format.decode(bytes, &input.name, args.lossy)?;
    let markup = if format == InputFormat::Text && args.sentences {
        Markup::from_lines(text)
    } else {
        let segment = SegmentOptions {
            wrapped: args.wrapped,
        };
        Markup::parse(text, format, &segment).with_context(|| input.name.clone())?
    };
    Ok((markup, format))
}

/// The file name a document gets in an output directory: its own (`-` is `stdin`).
fn output_name(input: &Input) -> PathBuf {
    match &input.source {
        Source::File(path) => Path::new(path.file_name().unwrap_or(path.as_os_str())).to_path_buf(),
        Source::Stdin => PathBuf::from("stdin"),
    }
}

/// Resolves (downloads) the model, loads it and checks the decoding options against it.
fn load(
    args: &TranslateArgs,
    model_options: &ModelOptions,
    interactive: bool,
) -> Result<(Translator, TranslatorOptions)> {
    let dir = args.model.model_dir(interactive)?;
    let translator = Translator::load(&dir, model_options)?;
    let options = TranslatorOptions {
        decode: args.decode.apply(translator.default_decode_options()),
        batch: args.decode.batch(model_options.device),
        max_sentence_tokens: args.decode.max_sentence_tokens as usize,
        alignments: args.alignments,
    };
    translator.validate(&options)?;
    Ok((translator, options))
}

/// Two aligned columns for the text format when stdout is a terminal at least 100 wide.
fn text_columns(args: &TranslateArgs) -> Option<usize> {
    if args.format != FormatArg::Text || args.output.is_some() || !std::io::stdout().is_terminal() {
        return None;
    }
    let (_, width) = console::Term::stdout().size();
    (width >= 100).then_some(width as usize)
}

/// The first words of a sentence, for warnings.
pub fn preview(sentence: &str) -> String {
    let mut chars = sentence.chars();
    let head: String = chars.by_ref().take(80).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
