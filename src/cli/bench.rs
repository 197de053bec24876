//! `traduire bench`: translation speed on a fixed workload, or a sweep over batch sizes,
//! precisions and thread counts with a chart.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use traduire::bench::chart::write_svg;
use traduire::bench::sweep::{run_sweep, SweepOptions, SweepPoint, MAX_SWEEP_BATCH};
use traduire::bench::{run_bench, BenchOptions, BenchReport, Workload};
use traduire::device::Precision;
use traduire::marian::config::{opus_mt_fr_en, opus_mt_tc_big_fr_en, LIMITS};
use traduire::marian::{MarianModel, ModelOptions};
use traduire::tokenizer::MarianTokenizer;

use super::args::{PrecisionArg, RuntimeArgs};

/// The architectures `bench` can build with random weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Architecture {
    /// Helsinki-NLP/opus-mt-fr-en: d_model 512, 6+6 layers, 8 heads, ffn 2048, swish.
    #[value(name = "opus-mt-fr-en")]
    OpusMtFrEn,
    /// Helsinki-NLP/opus-mt-tc-big-fr-en: d_model 1024, 6+6 layers, 16 heads, ffn 4096, relu.
    #[value(name = "opus-mt-tc-big-fr-en")]
    OpusMtTcBigFrEn,
}

/// Arguments of `traduire bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model folder. Without it, a model with the exact architecture of --architecture and
    /// random weights is built in memory: speed does not depend on the weight values.
    #[arg(long, value_name = "DIR", conflicts_with = "architecture")]
    pub model_dir: Option<PathBuf>,
    /// The architecture of the random model (without --model-dir).
    #[arg(long, value_enum, default_value_t = Architecture::OpusMtFrEn)]
    pub architecture: Architecture,
    /// Sentences to translate: a text file (one French sentence per line) or a JSON file
    /// {"sentences": [[id, ..., 0], ...]}. Default: 256 synthetic sentences, news-like lengths.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// Write the default workload as JSON to FILE and exit (so other engines can run it).
    #[arg(long, value_name = "FILE")]
    pub write_workload: Option<PathBuf>,
    /// Beam width, 1 to 128; 1 is greedy.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=LIMITS.num_beams as i64))]
    pub beams: u16,
    /// Batches: fixed chunks of N length-sorted sentences (1 to 65536; default 32).
    #[arg(long, value_name = "N", conflicts_with = "max_batch_tokens", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_batch_sentences: Option<u32>,
    /// Batches: length-sorted, at most N padded source tokens each (1 to 16777216).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub max_batch_tokens: Option<u32>,
    /// Every row of a batch generates exactly round(R x the batch's longest source) tokens,
    /// so engines do the same work whatever the model emits (R above 0, at most 100), or
    /// `off`. Default: 1.0 with random weights (they never end a sentence, and would run to
    /// the length limit), off with --model-dir.
    #[arg(long, value_name = "R|off", value_parser = parse_force_length)]
    pub force_length: Option<ForceLength>,
    /// Timed passes over the workload (after a warm-up batch), 1 to 1000.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub repeat: u16,
    /// Also read every hypothesis's alignment, as `translate --alignments` does (its cost).
    #[arg(long)]
    pub alignments: bool,
    /// Sweep batch sizes, precisions and thread counts instead: one table, and a chart.
    #[arg(long, conflicts_with_all = ["max_batch_sentences", "max_batch_tokens", "write_workload"])]
    pub sweep: bool,
    /// With --sweep: the batch sizes (sentences), comma-separated, 1 to 4096.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,2,4,8,16,32,64",
        requires = "sweep"
    )]
    pub sweep_batches: Vec<u32>,
    /// With --sweep: the precisions, comma-separated (default: f32,int8 on the CPU, f32,f16 on
    /// a GPU).
    #[arg(
        long,
        value_name = "LIST",
        value_enum,
        value_delimiter = ',',
        requires = "sweep"
    )]
    pub sweep_dtypes: Vec<PrecisionArg>,
    /// With --sweep: the thread counts, comma-separated (default: --threads, or one per core).
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "sweep", value_parser = clap::value_parser!(u16).range(1..=traduire::marian::MAX_THREADS as i64))]
    pub sweep_threads: Vec<u16>,
    /// With --sweep: sentences translated at each point (a larger batch runs one full batch).
    #[arg(long, value_name = "N", default_value_t = 64, requires = "sweep", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub sweep_sentences: u32,
    /// With --sweep: where to write the chart (SVG).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "bench-sweep.svg",
        requires = "sweep"
    )]
    pub chart: PathBuf,
    /// Print one JSON object instead of a table (with --sweep: a list of points).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `--force-length`: a ratio, or off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ForceLength {
    /// round(R x longest source) tokens per row.
    Ratio(f32),
    /// Rows stop where the model ends them (or at the length limit).
    Off,
}

fn parse_force_length(s: &str) -> Result<ForceLength, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(ForceLength::Off);
    }
    let r: f32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number or `off`"))?;
    if !(r.is_finite() && r > 0.0 && r <= 100.0) {
        return Err("must be above 0 and at most 100, or `off`".into());
    }
    Ok(ForceLength::Ratio(r))
}

/// The model to measure: a folder's, or random weights of an architecture.
fn load_model(args: &BenchArgs, options: &ModelOptions) -> Result<MarianModel> {
    Ok(match &args.model_dir {
        Some(dir) => MarianModel::load(dir, options)?,
        None => {
            let (config, generation) = match args.architecture {
                Architecture::OpusMtFrEn => opus_mt_fr_en(),
                Architecture::OpusMtTcBigFrEn => opus_mt_tc_big_fr_en(),
            };
            MarianModel::random(config, generation, options)?
        }
    })
}

/// Runs the benchmark (or the sweep) and prints its report.
pub fn run(args: BenchArgs) -> Result<()> {
    let options = args.runtime.options()?;
    let sweep = args
        .sweep
        .then(|| sweep_settings(&args, &options))
        .transpose()?;
    let started = Instant::now();
    let model = load_model(&args, &options)?;
    let load_s = started.elapsed().as_secs_f64();
    let tokenizer = match &args.model_dir {
        Some(dir) => Some(MarianTokenizer::from_dir(dir)?),
        None => None,
    };

    let config = model.config();
    let workload = match (&args.workload, &tokenizer) {
        (Some(path), Some(tokenizer)) => Workload::from_file(path, tokenizer)?,
        (Some(path), None) => Workload::from_json_file(path, config.eos_token_id)?,
        (None, _) => {
            Workload::synthetic(config.vocab_size, config.eos_token_id, config.pad_token_id)
        }
    };
    if let Some(path) = &args.write_workload {
        let json = serde_json::to_string(&workload)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let mut decode = traduire::marian::DecodeOptions::from_generation(model.generation_config());
    decode.num_beams = args.beams.into();
    decode.num_return_sequences = 1;
    let force_length = match (args.force_length, &args.model_dir) {
        (Some(ForceLength::Ratio(r)), _) => Some(r),
        (Some(ForceLength::Off), _) => None,
        // Random weights never choose </s>: unforced, every row would run to the limit.
        (None, None) => Some(1.0),
        (None, Some(_)) => None,
    };
    let show_progress = std::io::stderr().is_terminal() && !args.json;
    if let Some((dtypes, threads)) = sweep {
        drop(model);
        let sweep = SweepOptions {
            batches: args.sweep_batches.iter().map(|&b| b as usize).collect(),
            sentences: args.sweep_sentences as usize,
            repeat: args.repeat.into(),
            decode,
            force_length,
            alignments: args.alignments,
        };
        return run_sweep_command(&args, &options, &workload, &sweep, &dtypes, &threads);
    }
    let bench = BenchOptions {
        decode,
        batch_sentences: args.max_batch_sentences.map(|n| n as usize),
        batch_tokens: args.max_batch_tokens.map(|n| n as usize),
        force_length,
        repeat: args.repeat.into(),
        alignments: args.alignments,
    };
    let report = run_bench(&model, &workload, &bench, load_s, &mut |p| {
        if show_progress {
            let what = if p.pass == 0 {
                "warm-up".to_string()
            } else {
                format!("pass {}/{}", p.pass, args.repeat)
            };
            eprint!("\rbench: {what}, batch {}/{}   ", p.batch, p.batches);
        }
    })?;
    if show_progress {
        eprint!("\r{:60}\r", "");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report, args.model_dir.is_none());
    }
    Ok(())
}

/// The precisions and thread counts of a sweep, checked before any model is loaded.
fn sweep_settings(
    args: &BenchArgs,
    options: &ModelOptions,
) -> Result<(Vec<Precision>, Vec<usize>)> {
    let dtypes: Vec<Precision> = if args.sweep_dtypes.is_empty() {
        if options.device.is_gpu() {
            vec![Precision::F32, Precision::F16]
        } else {
            vec![Precision::F32, Precision::Int8]
        }
    } else {
        args.sweep_dtypes.iter().map(|&d| d.into()).collect()
    };
    let threads: Vec<usize> = if args.sweep_threads.is_empty() {
        vec![options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))]
    } else {
        args.sweep_threads.iter().map(|&t| t as usize).collect()
    };
    if let Some(&bad) = args
        .sweep_batches
        .iter()
        .find(|&&b| b == 0 || b as usize > MAX_SWEEP_BATCH)
    {
        bail!("--sweep-batches: {bad} is out of range (1 to {MAX_SWEEP_BATCH})");
    }
    for &precision in &dtypes {
        ModelOptions {
            precision,
            ..options.clone()
        }
        .validate()
        .with_context(|| format!("--sweep-dtypes {}", precision.name()))?;
    }
    Ok((dtypes, threads))
}

fn run_sweep_command(
    args: &BenchArgs,
    options: &ModelOptions,
    workload: &Workload,
    sweep: &SweepOptions,
    dtypes: &[Precision],
    threads: &[usize],
) -> Result<()> {
    let show_progress = std::io::stderr().is_terminal() && !args.json;
    let mut points: Vec<SweepPoint> = Vec::new();
    for &precision in dtypes {
        for &n in threads {
            let model_options = ModelOptions {
                precision,
                threads: Some(n),
                ..options.clone()
            };
            let model = load_model(args, &model_options)?;
            points.extend(run_sweep(
                &model,
                precision.name(),
                workload,
                sweep,
                &mut |batch, p| {
                    if show_progress {
                        eprint!(
                            "\rbench --sweep: {} {n} threads, batch size {batch}: batch {}/{}   ",
                            precision.name(),
                            p.batch,
                            p.batches
                        );
                    }
                },
            )?);
        }
    }
    if show_progress {
        eprint!("\r{:80}\r", "");
    }
    let engine = points
        .first()
        .map_or(String::new(), |p| p.report.engine.clone());
    let title = format!(
        "traduire bench --sweep: {}, beam {}{}",
        match (&args.model_dir, args.architecture) {
            (Some(dir), _) => dir.display().to_string(),
            (None, a) => format!(
                "{} (random weights)",
                a.to_possible_value()
                    .map_or(String::new(), |v| v.get_name().to_string())
            ),
        },
        sweep.decode.num_beams,
        if sweep.alignments { ", alignments" } else { "" },
    );
    write_svg(&args.chart, &title, &points)?;
    if args.json {
        println!("{}", serde_json::to_string(&points)?);
        return Ok(());
    }
    println!("{title}");
    println!(
        "engine: {engine} (the precision column says which); chart: {}",
        args.chart.display()
    );
    if let Some(r) = sweep.force_length {
        println!(
            "lengths: forced, every row generates round({r:?} x its batch's longest source) tokens{}",
            if args.model_dir.is_none() { " (random weights never end a sentence)" } else { "" }
        );
    }
    println!(
        "| precision | threads | batch | sentences | target tokens/s | sentences/s | p50 batch ms | p95 batch ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in &points {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.1} | {:.1} |",
            p.precision,
            p.threads,
            p.batch,
            p.report.sentences,
            p.report.target_tokens_per_s,
            p.report.sentences_per_s,
            p.report.latency_p50_ms,
            p.report.latency_p95_ms
        );
    }
    Ok(())
}

fn print_table(r: &BenchReport, random: bool) {
    println!("model load        {:>10.2} s", r.load_s);
    println!("engine            {:>10}", r.engine);
    println!(
        "workload          {:>10} sentences, {} batches, {} passes, beam {}, {} threads{}",
        r.sentences,
        r.batches,
        r.repeat,
        r.beams,
        r.threads,
        if r.alignments { ", alignments" } else { "" }
    );
    match r.force_length {
        Some(ratio) => println!(
            "lengths           {:>10} every row generates round({ratio:?} x its batch's longest source) tokens{}",
            "forced:",
            if random { " (random weights never end a sentence)" } else { "" }
        ),
        None => println!("lengths           {:>10} rows end where the model ends them", "natural:"),
    }
    println!("sentences/s       {:>10.1}", r.sentences_per_s);
    println!("source tokens/s   {:>10.1}", r.source_tokens_per_s);
    println!("target tokens/s   {:>10.1}", r.target_tokens_per_s);
    println!("batch latency p50 {:>10.1} ms", r.latency_p50_ms);
    println!("batch latency p95 {:>10.1} ms", r.latency_p95_ms);
    match r.peak_rss_mb {
        Some(mb) => println!("peak RSS          {mb:>10.0} MB"),
        None => println!("peak RSS          {:>10}", "n/a"),
    }
}
