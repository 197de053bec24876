//! `traduire score`: the model's log-probability of existing translations, for filtering
//! noisy pairs (CTranslate2's `score_batch`, `marian-scorer`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use traduire::batching::{MAX_BATCH_SENTENCES, MAX_BATCH_TOKENS};
use traduire::input::decode;
use traduire::scoring::{score_pairs, PairScore};
use traduire::translator::Translator;
use traduire::write::{escape_tsv_field, Output, Sink};

use super::args::ModelArgs;
use super::progress::sentence_bar;

/// Pairs scored per chunk: memory holds one chunk, however long the input.
const CHUNK: usize = 4096;

/// Arguments of `traduire score`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["pairs", "src"]))]
pub struct ScoreArgs {
    /// Pairs to score: a TSV file of `French<TAB>English` lines, or `-` for stdin.
    #[arg(value_name = "PAIRS.tsv")]
    pub pairs: Option<String>,
    /// French side of a line-aligned file pair (Moses style), with --tgt.
    #[arg(long, value_name = "FILE", requires = "tgt", conflicts_with = "pairs")]
    pub src: Option<PathBuf>,
    /// English side of a line-aligned file pair, with --src.
    #[arg(long, value_name = "FILE", requires = "src")]
    pub tgt: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ScoreFormat::Tsv)]
    pub format: ScoreFormat,
    /// Write to this file (atomically: a temp file, then a rename) instead of stdout.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Most padded tokens per batch, 1 to 16777216.
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH_TOKENS as i64))]
    pub max_batch_tokens: u32,
    /// Most pairs per batch, 1 to 65536.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH_SENTENCES as i64))]
    pub max_batch_sentences: u32,
    /// Replace invalid UTF-8 bytes with U+FFFD instead of failing.
    #[arg(long)]
    pub lossy: bool,
    /// No progress bar on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How scores are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreFormat {
    /// Header `fr en logprob tokens mean`, one row per pair (fields escaped as in
    /// `translate --format tsv`).
    Tsv,
    /// One JSON object per pair: `line`, `fr`, `en`, `logprob`, `tokens`, `mean`,
    /// `token_logprobs`.
    Jsonl,
}

#[derive(Serialize)]
struct Record<'a> {
    line: usize,
    fr: &'a str,
    en: &'a str,
    logprob: f64,
    tokens: usize,
    mean: f64,
    token_logprobs: &'a [f32],
}

/// Reads pairs a chunk at a time, with errors naming the file and the line.
enum PairReader {
    Tsv {
        name: String,
        lines: Box<dyn BufRead>,
    },
    Moses {
        src: (String, Box<dyn BufRead>),
        tgt: (String, Box<dyn BufRead>),
    },
}

impl PairReader {
    fn open(args: &ScoreArgs) -> Result<Self> {
        let open = |path: &Path| -> Result<Box<dyn BufRead>> {
            let file = File::open(path)
                .with_context(|| format!("{}: cannot open input", path.display()))?;
            Ok(Box::new(BufReader::new(file)))
        };
        Ok(match (&args.pairs, &args.src, &args.tgt) {
            (Some(p), _, _) if p == "-" => PairReader::Tsv {
                name: "-".into(),
                lines: Box::new(BufReader::new(io::stdin())),
            },
            (Some(p), _, _) => PairReader::Tsv {
                name: p.clone(),
                lines: open(Path::new(p))?,
            },
            (None, Some(src), Some(tgt)) => PairReader::Moses {
                src: (src.display().to_string(), open(src)?),
                tgt: (tgt.display().to_string(), open(tgt)?),
            },
            _ => bail!("give a PAIRS.tsv file, or --src and --tgt"),
        })
    }

    /// Up to `CHUNK` more pairs; an empty vector at the end. `first_line` is the number of the
    /// first line returned.
    fn next_chunk(&mut self, first_line: usize, lossy: bool) -> Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        while pairs.len() < CHUNK {
            let line = first_line + pairs.len();
            match self {
                PairReader::Tsv { name, lines } => {
                    let Some(text) = read_line(lines.as_mut(), name, line, lossy)? else {
                        break;
                    };
                    let mut fields = text.split('\t');
                    let (Some(fr), Some(en), None) = (fields.next(), fields.next(), fields.next())
                    else {
                        let tabs = text.matches('\t').count();
                        bail!("{name}:{line}: expected French<TAB>English, found {tabs} tabs");
                    };
                    pairs.push((fr.to_string(), en.to_string()));
                }
                PairReader::Moses { src, tgt } => {
                    let fr = read_line(src.1.as_mut(), &src.0, line, lossy)?;
                    let en = read_line(tgt.1.as_mut(), &tgt.0, line, lossy)?;
                    match (fr, en) {
                        (Some(fr), Some(en)) => pairs.push((fr, en)),
                        (None, None) => break,
                        (fr, _) => {
                            let (short, long) = if fr.is_none() {
                                (&*src, &mut *tgt)
                            } else {
                                (&*tgt, &mut *src)
                            };
                            let rest = count_lines(long.1.as_mut())?;
                            bail!(
                                "{} has {} lines but {} has {}: the files are not aligned",
                                short.0,
                                line - 1,
                                long.0,
                                line + rest
                            );
                        }
                    }
                }
            }
        }
        Ok(pairs)
    }
}

/// One line without its terminator, or `None` at the end.
fn read_line(
    reader: &mut dyn BufRead,
    name: &str,
    line: usize,
    lossy: bool,
) -> Result<Option<String>> {
    let mut bytes = Vec::new();
    if reader
        .read_until(b'\n', &mut bytes)
        .with_context(|| format!("{name}: cannot read line {line}"))?
        == 0
    {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let text = decode(bytes, &format!("{name}:{line}"), lossy)?;
    Ok(Some(text))
}

fn count_lines(reader: &mut dyn BufRead) -> Result<usize> {
    let mut count = 0;
    let mut buf = [0u8; 65536];
    let mut last = b'\n';
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        count += buf[..n].iter().filter(|&&b| b == b'\n').count();
        last = buf[n - 1];
    }
    Ok(count + usize::from(last != b'\n'))
}

/// Runs the subcommand.
pub fn run(args: ScoreArgs) -> Result<()> {
    let options = args.model.runtime.options()?;
    args.model.check()?;
    let mut reader = PairReader::open(&args)?;
    let mut out = Sink::open(match &args.output {
        Some(path) => Output::File(path.clone()),
        None => Output::Stdout,
    })?;
    let interactive = io::stderr().is_terminal() && !args.quiet;
    let dir = args.model.model_dir(interactive)?;
    let translator = Translator::load(&dir, &options)?;
    let batch = traduire::batching::BatchLimits {
        max_tokens: args.max_batch_tokens as usize,
        max_sentences: args.max_batch_sentences as usize,
    };
    if args.format == ScoreFormat::Tsv {
        writeln!(out, "fr\ten\tlogprob\ttokens\tmean")?;
    }
    let progress = sentence_bar(interactive);
    let mut line = 1;
    loop {
        let chunk = reader.next_chunk(line, args.lossy)?;
        if chunk.is_empty() {
            break;
        }
        progress.inc_length(chunk.len() as u64);
        let pairs: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(f, e)| (f.as_str(), e.as_str()))
            .collect();
        let scores = score_pairs(&translator, &pairs, batch).map_err(|e| {
            // Pair numbers are within the chunk; the user needs the line.
            let message = format!("{e:#}");
            match message
                .strip_prefix("pair ")
                .and_then(|m| m.split_once(':'))
            {
                Some((n, rest)) => match n.parse::<usize>() {
                    Ok(n) => anyhow::anyhow!("line {}:{rest}", line + n - 1),
                    Err(_) => e,
                },
                None => e,
            }
        })?;
        for (offset, ((fr, en), score)) in pairs.iter().zip(&scores).enumerate() {
            write_record(&mut out, args.format, line + offset, fr, en, score)?;
        }
        progress.inc(chunk.len() as u64);
        line += chunk.len();
    }
    progress.finish_and_clear();
    out.finish()
}

fn write_record(
    out: &mut dyn Write,
    format: ScoreFormat,
    line: usize,
    fr: &str,
    en: &str,
    score: &PairScore,
) -> Result<()> {
    match format {
        ScoreFormat::Tsv => writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            escape_tsv_field(fr),
            escape_tsv_field(en),
            finite(score.logprob()),
            score.tokens(),
            finite(score.mean())
        )?,
        ScoreFormat::Jsonl => {
            let record = Record {
                line,
                fr,
                en,
                logprob: finite(score.logprob()),
                tokens: score.tokens(),
                mean: finite(score.mean()),
                token_logprobs: &score.token_logprobs,
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// JSON and TSV readers need finite numbers: -inf (a banned or impossible token) becomes the
/// lowest f64.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        f64::MIN
    }
}
