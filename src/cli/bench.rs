//! `traduire bench`: translation speed on a fixed workload.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use traduire::bench::{run_bench, BenchOptions, BenchReport, Workload};
use traduire::marian::config::LIMITS;
use traduire::marian::MarianModel;
use traduire::tokenizer::MarianTokenizer;

use super::args::RuntimeArgs;

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
    /// Beam width, 1 to 128; 1 is greedy.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=LIMITS.num_beams as i64))]
    pub beams: u16,
    /// Batches: fixed chunks of N length-sorted sentences (1 to 65536).
    #[arg(long, value_name = "N", conflicts_with = "max_batch_tokens", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_batch_sentences: Option<u32>,
    /// Batches: length-sorted, at most N padded source tokens each (1 to 16777216).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub max_batch_tokens: Option<u32>,
    /// Every row of a batch generates exactly round(R x the batch's longest source) tokens,
    /// so engines do the same work whatever a random model emits (R above 0, at most 100).
    #[arg(long, value_name = "R", value_parser = parse_force_length)]
    pub force_length: Option<f32>,
    /// Timed passes over the workload (after a warm-up batch), 1 to 1000.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub repeat: u16,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

fn parse_force_length(s: &str) -> Result<f32, String> {
    let r: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(r.is_finite() && r > 0.0 && r <= 100.0) {
        return Err("must be above 0 and at most 100".into());
    }
    Ok(r)
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> Result<()> {
    let options = args.runtime.options()?;
    let started = Instant::now();
    let (model, tokenizer) = match &args.model_dir {
        Some(dir) => (
            MarianModel::load(dir, &options)?,
            Some(MarianTokenizer::from_dir(dir)?),
        ),
        None => {
            let (config, generation) = traduire::marian::config::opus_mt_fr_en();
            (MarianModel::random(config, generation, &options)?, None)
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
    decode.num_beams = args.beams.into();
    decode.num_return_sequences = 1;
    let options = BenchOptions {
        decode,
        batch_sentences: args.max_batch_sentences.map(|n| n as usize),
        batch_tokens: args.max_batch_tokens.map(|n| n as usize),
        force_length: args.force_length,
        repeat: args.repeat.into(),
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
    println!("engine            {:>10}", r.engine);
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
