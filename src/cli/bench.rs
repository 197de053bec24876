//! `traduire bench`: translation speed on a fixed workload.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use traduire::bench::{run_bench, BenchOptions, BenchReport, Workload};
use traduire::marian::MarianModel;
use traduire::tokenizer::MarianTokenizer;

/// Arguments of `traduire bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model folder. Without it, a model with opus-mt-fr-en's exact architecture and random
    /// weights is built in memory: speed does not depend on the weight values.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Sentences to translate: a text file (one French sentence per line) or a JSON file
    /// {"sentences": [[id, ..., 0], ...]}. Default: 256 synthetic sentences, news-like lengths.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// Write the default workload as JSON to FILE and exit (so other engines can run it).
    #[arg(long, value_name = "FILE")]
    pub write_workload: Option<PathBuf>,
    /// Beam width; 1 is greedy.
    #[arg(long, default_value_t = 1)]
    pub beams: usize,
    /// Batches: fixed chunks of N length-sorted sentences.
    #[arg(long, value_name = "N", conflicts_with = "max_batch_tokens")]
    pub max_batch_sentences: Option<usize>,
    /// Batches: length-sorted, at most N padded source tokens each.
    #[arg(long, value_name = "N")]
    pub max_batch_tokens: Option<usize>,
    /// CPU threads for the matrix products (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Every row of a batch generates exactly round(R x the batch's longest source) tokens,
    /// so engines do the same work whatever a random model emits.
    #[arg(long, value_name = "R")]
    pub force_length: Option<f32>,
    /// Timed passes over the workload (after a warm-up batch).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device: cpu, cuda[:N] or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Number type of the weights: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        traduire::device::set_cpu_threads(threads)?;
    }
    let device = traduire::device::open_device(&args.device)?;
    let dtype = traduire::device::parse_dtype(&args.dtype)?;
    let started = Instant::now();
    let (model, tokenizer) = match &args.model_dir {
        Some(dir) => (
            MarianModel::load(dir, &device, dtype)?,
            Some(MarianTokenizer::from_dir(dir)?),
        ),
        None => {
            let (config, generation) = traduire::marian::config::opus_mt_fr_en();
            (
                MarianModel::random(config, generation, &device, dtype)?,
                None,
            )
        }
    };
    let load_s = started.elapsed().as_secs_f64();

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
    decode.num_beams = args.beams;
    decode.num_return_sequences = 1;
    let options = BenchOptions {
        decode,
        batch_sentences: args.max_batch_sentences,
        batch_tokens: args.max_batch_tokens,
        force_length: args.force_length,
        repeat: args.repeat,
    };
    let show_progress = std::io::stderr().is_terminal();
    let report = run_bench(&model, &workload, &options, load_s, &mut |p| {
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
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &BenchReport) {
    println!("model load        {:>10.2} s", r.load_s);
    println!(
        "workload          {:>10} sentences, {} batches, {} passes, beam {}, {} threads",
        r.sentences, r.batches, r.repeat, r.beams, r.threads
    );
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
