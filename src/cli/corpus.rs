//! `traduire corpus`: a streaming, resumable, shardable corpus run, and `corpus merge`.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use traduire::corpus::merge::{merge, shard_rows};
use traduire::corpus::output::{CorpusFormat, CorpusWriter, InputRecord, Manifest};
use traduire::corpus::reader::{expand, CorpusInput, InputMode, RowReader};
use traduire::corpus::store::Store;
use traduire::corpus::{self, CorpusEvent, CorpusOptions, Shard, Summary, MAX_WINDOW};
use traduire::translator::{Event, Translator, TranslatorOptions};

use super::args::{DecodeArgs, ModelArgs};
use super::translate::preview;

/// Arguments of `traduire corpus`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CorpusArgs {
    #[command(subcommand)]
    pub command: Option<CorpusCommand>,
    #[command(flatten)]
    pub run: CorpusRunArgs,
}

/// `corpus` subcommands.
#[derive(Debug, Subcommand)]
pub enum CorpusCommand {
    /// Join the outputs of the shards of one run into exactly the bytes of a one-shard run.
    Merge(MergeArgs),
}

/// Arguments of `traduire corpus merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The merged output (for moses, the prefix of OUT.fr and OUT.en).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// The shard outputs, each as given to its run's -o.
    #[arg(required = true, value_name = "SHARD_OUTPUT")]
    pub shards: Vec<PathBuf>,
}

/// `--format` of `corpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CorpusFormatArg {
    /// OUT.fr and OUT.en, line-aligned.
    Moses,
    /// OUT: `id fr en score flags` with a header row.
    Tsv,
    /// OUT: one JSON object per row (JSONL input keeps its other fields).
    Jsonl,
}

impl From<CorpusFormatArg> for CorpusFormat {
    fn from(f: CorpusFormatArg) -> Self {
        match f {
            CorpusFormatArg::Moses => CorpusFormat::Moses,
            CorpusFormatArg::Tsv => CorpusFormat::Tsv,
            CorpusFormatArg::Jsonl => CorpusFormat::Jsonl,
        }
    }
}

/// Arguments of a corpus run.
#[derive(Debug, Args)]
pub struct CorpusRunArgs {
    /// Inputs: files (plain, .gz or .zst), directories (their files, recursively, sorted) or
    /// `-` for stdin. One sentence per line unless --documents or --field.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// The output: a file for tsv and jsonl, the prefix of OUT.fr and OUT.en for moses. It
    /// appears only when complete, with OUT.manifest.json.
    #[arg(short, long, required = true, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = CorpusFormatArg::Moses)]
    pub format: CorpusFormatArg,
    /// The inputs are articles: split them into sentences as `translate` does.
    #[arg(long, conflicts_with = "field")]
    pub documents: bool,
    /// With --documents: the text is hard-wrapped.
    #[arg(long, requires = "documents")]
    pub wrapped: bool,
    /// The inputs are JSON Lines with the French text in this field.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    /// Rows read, translated and written at a time (1 to 10000000): memory is bounded by it.
    #[arg(long, default_value_t = 10_000, value_name = "ROWS", value_parser = clap::value_parser!(u32).range(1..=MAX_WINDOW as i64))]
    pub window: u32,
    /// The store of translations: a run killed and started again resumes from it, and later
    /// runs with the same model and options reuse it (default: OUT.cache.sqlite).
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Translate only the rows whose index is I modulo N.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Translate shard I of N, I taken from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub shards: Option<u32>,
    /// Write the run's figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Replace invalid UTF-8 bytes with U+FFFD instead of failing.
    #[arg(long)]
    pub lossy: bool,
    /// Add the model's word alignment to each row (-f tsv and -f jsonl): Marian's hard
    /// alignment, source-target pairs of SentencePiece token indices ("0-0 1-2 ...").
    #[arg(long)]
    pub alignments: bool,
    /// No progress bar, no summary, no warnings.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

/// Runs `corpus` or `corpus merge`.
pub fn run(args: CorpusArgs) -> Result<()> {
    match args.command {
        Some(CorpusCommand::Merge(m)) => {
            let manifest = merge(&m.shards, &m.output)?;
            eprintln!(
                "merged {} shards: {} rows into {}",
                m.shards.len(),
                manifest.rows,
                m.output.display()
            );
            Ok(())
        }
        None => run_corpus(args.run),
    }
}

/// The shard: `--shard I/N`, or `--shards N` with I from the scheduler's environment. N is
/// never read from the environment (`SLURM_ARRAY_TASK_COUNT` changes when only failed tasks
/// are resubmitted).
fn shard(args: &CorpusRunArgs) -> Result<Shard> {
    if let Some(text) = &args.shard {
        return Shard::parse(text);
    }
    let Some(count) = args.shards else {
        return Ok(Shard::WHOLE);
    };
    for variable in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(value) = std::env::var(variable) {
            let index: usize = value
                .trim()
                .parse()
                .with_context(|| format!("{variable}={value:?} is not a shard index"))?;
            return Shard::new(index, count as usize)
                .with_context(|| format!("{variable}={value} with --shards {count}"));
        }
    }
    bail!("--shards {count}: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set (use --shard I/N outside a job array)")
}

fn run_corpus(args: CorpusRunArgs) -> Result<()> {
    let out = args.output.clone().expect("clap requires --output");
    // Options, inputs and the output's folder are checked before the model is touched.
    let runtime = args.model.runtime.options()?;
    args.decode.check()?;
    args.model.check()?;
    let shard = shard(&args)?;
    let mode = match (&args.field, args.documents) {
        (Some(field), _) => InputMode::Jsonl {
            field: field.clone(),
        },
        (None, true) => InputMode::Documents {
            wrapped: args.wrapped,
        },
        (None, false) => InputMode::Lines,
    };
    let inputs = expand(&args.inputs)?;
    let format: CorpusFormat = args.format.into();
    let mut writer = CorpusWriter::create(format, args.alignments, &out)?;
    let interactive = std::io::stderr().is_terminal() && !args.quiet;

    let dir = args.model.model_dir(interactive)?;
    let translator = Translator::load(&dir, &runtime)?;
    let options = TranslatorOptions {
        decode: args.decode.apply(translator.default_decode_options()),
        batch: args.decode.batch(runtime.device),
        max_sentence_tokens: args.decode.max_sentence_tokens as usize,
        alignments: args.alignments,
    };
    translator.validate(&options)?;
    let context = corpus::context(&corpus::model_identity(&dir)?, &runtime, &options);
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| traduire::corpus::output::suffixed(&out, ".cache.sqlite"));
    let mut store = Store::open(&cache, &context)?;
    if store.other_contexts() > 0 && !args.quiet {
        eprintln!(
            "note: {} also holds translations made with {} other model(s) or option set(s); they are not reused",
            cache.display(),
            store.other_contexts()
        );
    }

    let total = count_rows(&inputs, &mode).map(|t| shard_rows(shard.index, shard.count, t));
    let progress = progress_bar(interactive, total);
    let mut reader = RowReader::new(inputs.clone(), mode.clone(), args.lossy);
    let corpus_options = CorpusOptions {
        translator: options,
        window: args.window as usize,
        shard,
    };
    let quiet = args.quiet;
    // The bar moves with each batch (distinct sentences translated), then jumps to the rows
    // written when a window is done: repeated and cached rows cost nothing.
    let mut rows_written = 0u64;
    let summary = corpus::run(
        &translator,
        &mut store,
        &mut reader,
        &mut writer,
        &corpus_options,
        &mut |event| {
            match event {
            CorpusEvent::Window { rows, .. } => {
                rows_written += rows;
                progress.set_position(rows_written);
            }
            CorpusEvent::Translator(Event::Progress { sentences }) => progress.inc(sentences as u64),
            CorpusEvent::Translator(Event::LongSentenceSplit {
                sentence,
                tokens,
                limit,
                parts,
            }) if !quiet => progress.suspend(|| {
                eprintln!(
                    "warning: a sentence of {tokens} tokens (limit {limit}) was translated in {parts} parts: «{}»",
                    preview(&sentence)
                )
            }),
            CorpusEvent::Translator(_) => {}
        }
        },
    )?;
    progress.finish_and_clear();
    let manifest = Manifest {
        generator: format!("traduire {}", env!("CARGO_PKG_VERSION")),
        format,
        alignments: args.alignments,
        shard: [shard.index, shard.count],
        inputs: inputs.iter().map(input_record).collect(),
        mode: match &mode {
            InputMode::Lines => "lines".to_string(),
            InputMode::Documents { wrapped: false } => "documents".to_string(),
            InputMode::Documents { wrapped: true } => "documents-wrapped".to_string(),
            InputMode::Jsonl { field } => format!("jsonl:{field}"),
        },
        context,
        total_rows: summary.total_rows,
        rows: 0,
        files: Vec::new(),
    };
    writer.finish(manifest)?;
    if let Some(path) = &args.stats {
        write_stats(path, &summary)?;
    }
    if !args.quiet {
        eprintln!("{}", summary_line(&summary));
    }
    Ok(())
}

fn input_record(input: &CorpusInput) -> InputRecord {
    let bytes = match input {
        CorpusInput::File(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        CorpusInput::Stdin => 0,
    };
    InputRecord {
        name: input.name(),
        bytes,
    }
}

/// Rows in the inputs, when cheap to know: one-row-per-line inputs that are plain files.
fn count_rows(inputs: &[CorpusInput], mode: &InputMode) -> Option<u64> {
    if matches!(mode, InputMode::Documents { .. }) {
        return None;
    }
    let mut total = 0u64;
    for input in inputs {
        let CorpusInput::File(path) = input else {
            return None;
        };
        let mut reader = BufReader::new(std::fs::File::open(path).ok()?);
        let head = reader.fill_buf().ok()?;
        if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return None;
        }
        let mut buf = vec![0u8; 1 << 16];
        let mut last = b'\n';
        loop {
            let n = reader.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            total += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            last = buf[n - 1];
        }
        total += u64::from(last != b'\n');
    }
    Some(total)
}

fn progress_bar(enabled: bool, total: Option<u64>) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} {pos}/{len} sentences [{elapsed_precise}] {per_sec} ETA {eta}"
    } else {
        "{spinner} {pos} sentences [{elapsed_precise}] {per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// The one summary line of a run.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "corpus: {} rows ({} from the cache), {} sentences translated, {} source and {} target tokens in {:.1} s: {:.0} target tokens/s, {:.0} rows/s",
        s.rows, s.cache_hits, s.translated, s.source_tokens, s.target_tokens, s.seconds,
        s.target_tokens_per_s, s.rows_per_s
    )
}

fn write_stats(path: &Path, summary: &Summary) -> Result<()> {
    let mut file = traduire::write::atomic::AtomicFile::create(path)?;
    let text = serde_json::to_string_pretty(summary)? + "\n";
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("{}: cannot write the statistics", path.display()))?;
    file.commit()
}
