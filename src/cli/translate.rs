//! `traduire translate`: articles in, bilingual side-by-side output out.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use traduire::batching::BatchLimits;
use traduire::document::{Document, ParagraphKind};
use traduire::input::{expand_inputs, read_input};
use traduire::marian::DecodeOptions;
use traduire::segment::SegmentOptions;
use traduire::translator::{Event, Translator, TranslatorOptions};
use traduire::write::{
    open_writer, BilingualDocument, BilingualParagraph, BilingualSentence, BlockKind, Format,
    Output, WriterOptions,
};

use super::model_args::ModelArgs;

/// Arguments of `traduire translate`.
#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Files, directories (.txt and .md files, recursively) or `-` for stdin.
    #[arg(default_value = "-")]
    pub inputs: Vec<String>,
    /// Output format: text, markdown, html, tsv, jsonl, tmx or moses.
    #[arg(short, long, default_value = "text", value_parser = clap::value_parser!(Format))]
    pub format: Format,
    /// Write to this file (atomically: a temp file, then a rename) instead of stdout. For
    /// moses, the prefix of PREFIX.fr and PREFIX.en.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Beam width (default: the model's generation_config, 4 for opus-mt); 1 is greedy.
    #[arg(long)]
    pub beams: Option<usize>,
    /// Most tokens generated per sentence (default: the model's max_length - 1).
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,
    /// Also limit output to ceil(R x source tokens) + 10 tokens.
    #[arg(long, value_name = "R", default_value_t = 3.0)]
    pub max_length_ratio: f32,
    /// Length penalty exponent of beam scores (default: the model's, 1.0).
    #[arg(long)]
    pub length_penalty: Option<f32>,
    /// Most padded source tokens per batch.
    #[arg(long, default_value_t = BatchLimits::default().max_tokens)]
    pub max_batch_tokens: usize,
    /// Most sentences per batch.
    #[arg(long, default_value_t = BatchLimits::default().max_sentences)]
    pub max_batch_sentences: usize,
    /// Sentences longer than this many tokens are split at clause boundaries (with a warning).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_sentence_tokens: usize,
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
    /// No progress bar and no warnings on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs the subcommand: one document at a time, so memory holds one document and one batch.
pub fn run(args: TranslateArgs) -> Result<()> {
    let inputs = expand_inputs(&args.inputs)?;
    let interactive = std::io::stderr().is_terminal() && !args.quiet;
    let output = match &args.output {
        Some(path) => Output::File(path.clone()),
        None => Output::Stdout,
    };
    let writer_options = WriterOptions {
        columns: text_columns(&args),
        ..WriterOptions::default()
    };
    let mut writer = open_writer(args.format, output, &writer_options)?;

    // The model loads on the first non-empty document, so empty input needs no model.
    let mut translator: Option<(Translator, TranslatorOptions)> = None;
    let progress = if interactive {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {pos}/{len} sentences [{elapsed_precise}] {per_sec} ETA {eta} {msg}",
            )
            .context("progress bar template")?,
        );
        bar
    } else {
        ProgressBar::hidden()
    };
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
                translator = Some(load(&args, interactive)?);
            }
            let (translator, options) = translator.as_ref().expect("loaded above");
            progress.inc_length(sentences.len() as u64);
            let quiet = args.quiet;
            let name = &input.name;
            translator.translate(&sentences, options, &mut |event| match event {
                Event::BatchDone { units, .. } => progress.inc(units as u64),
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
        let mut next = translations.into_iter();
        let bilingual = BilingualDocument {
            name: input.name.clone(),
            paragraphs: document
                .paragraphs
                .iter()
                .map(|paragraph| BilingualParagraph {
                    kind: match paragraph.kind {
                        ParagraphKind::Title => BlockKind::Title,
                        ParagraphKind::Heading => BlockKind::Heading,
                        ParagraphKind::Paragraph | ParagraphKind::ListItem => BlockKind::Paragraph,
                    },
                    sentences: paragraph
                        .sentences
                        .iter()
                        .map(|s| {
                            let t = next.next().expect("one translation per sentence");
                            BilingualSentence {
                                fr: document.sentence_text(s).to_string(),
                                en: t.text,
                                score: t.score,
                            }
                        })
                        .collect(),
                })
                .collect(),
        };
        progress.suspend(|| writer.write_document(&bilingual))?;
    }
    progress.finish_and_clear();
    writer.finish()
}

fn load(args: &TranslateArgs, interactive: bool) -> Result<(Translator, TranslatorOptions)> {
    let dir = args.model.model_dir(interactive)?;
    let device = traduire::device::open_device(&args.model.device)?;
    let dtype = traduire::device::parse_dtype(&args.model.dtype)?;
    let translator = Translator::load(&dir, &device, dtype)?;
    let mut decode: DecodeOptions = translator.default_decode_options();
    if let Some(beams) = args.beams {
        decode.num_beams = beams;
    }
    decode.num_return_sequences = 1;
    if let Some(n) = args.max_new_tokens {
        decode.max_new_tokens = n;
    }
    if let Some(lp) = args.length_penalty {
        decode.length_penalty = lp;
    }
    decode.max_length_ratio = Some(args.max_length_ratio);
    let options = TranslatorOptions {
        decode,
        batch: BatchLimits {
            max_tokens: args.max_batch_tokens,
            max_sentences: args.max_batch_sentences,
        },
        max_sentence_tokens: args.max_sentence_tokens,
    };
    Ok((translator, options))
}

/// Two aligned columns for the text format when stdout is a terminal at least 100 wide.
fn text_columns(args: &TranslateArgs) -> Option<usize> {
    if args.format != Format::Text || args.output.is_some() || !std::io::stdout().is_terminal() {
        return None;
    }
    let (_, width) = console::Term::stdout().size();
    (width >= 100).then_some(width as usize)
}

/// The first words of a sentence, for warnings.
fn preview(sentence: &str) -> String {
    let mut chars = sentence.chars();
    let head: String = chars.by_ref().take(80).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
