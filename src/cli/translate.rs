//! `traduire translate`: articles in, bilingual side-by-side output out.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use traduire::bilingual::BilingualDocument;
use traduire::document::Document;
use traduire::input::{expand_inputs, read_input};
use traduire::marian::ModelOptions;
use traduire::segment::SegmentOptions;
use traduire::translator::{Event, Translator, TranslatorOptions};
use traduire::write::{open_writer, Format, Output, WriterOptions};

use super::args::{DecodeArgs, FormatArg, ModelArgs};
use super::progress::sentence_bar;

/// Arguments of `traduire translate`.
#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Files, directories (.txt and .md files, recursively) or `-` for stdin.
    #[arg(default_value = "-")]
    pub inputs: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Write to this file (atomically: a temp file, then a rename) instead of stdout. For
    /// moses, the prefix of PREFIX.fr and PREFIX.en.
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

/// Runs the subcommand: one document at a time, so memory holds one document and one batch.
pub fn run(args: TranslateArgs) -> Result<()> {
    // Everything that can be checked without the model comes first: a typo must not cost a
    // download.
    let model_options = args.model.runtime.options()?;
    args.decode.check()?;
    args.model.check()?;
    if args.alignments && !matches!(args.format, FormatArg::Jsonl | FormatArg::Tsv) {
        anyhow::bail!(
            "--alignments is written by -f jsonl and -f tsv only, not by -f {}",
            Format::from(args.format)
        );
    }
    let inputs = expand_inputs(&args.inputs)?;
    let interactive = std::io::stderr().is_terminal() && !args.quiet;
    let format: Format = args.format.into();
    let output = match &args.output {
        Some(path) => Output::File(path.clone()),
        None => Output::Stdout,
    };
    let writer_options = WriterOptions {
        columns: text_columns(&args),
        alignments: args.alignments,
        ..WriterOptions::default()
    };
    let mut writer = open_writer(format, output, &writer_options)?;

    // The model loads on the first non-empty document, so empty input needs no model.
    let mut translator: Option<(Translator, TranslatorOptions)> = None;
    let progress = sentence_bar(interactive);
    for input in &inputs {
        let text = read_input(input, args.lossy)?;
        let document = if args.sentences {
            Document::from_lines(text)
        } else {
            Document::parse(
                text,
                &SegmentOptions {
                    wrapped: args.wrapped,
                },
            )
        };
        let sentences: Vec<&str> = document.sentences().map(|(_, _, s)| s).collect();
        let translations = if sentences.is_empty() {
            Vec::new()
        } else {
            if translator.is_none() {
                translator = Some(load(&args, &model_options, interactive)?);
            }
            let (translator, options) = translator.as_ref().expect("loaded above");
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
        let bilingual = BilingualDocument::join(input.name.clone(), &document, translations)?;
        progress.suspend(|| writer.write_document(&bilingual))?;
    }
    progress.finish_and_clear();
    writer.finish()
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
