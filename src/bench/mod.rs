//! The speed benchmark behind `traduire bench`: a fixed workload, fixed batches, timings;
//! sweeps over batch sizes, precisions and thread counts ([`sweep`]), and their chart
//! ([`chart`]).
//!
//! Every engine compared by `scripts/bench_peers.py` runs the same token ids in the same
//! length-sorted batches, and with `force_length` generates the same number of tokens, so
//! throughput numbers compare work for work even on a randomly initialised model.

pub mod chart;
pub mod sweep;

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::batching::{plan_batches, sorted_chunks, BatchLimits};
use crate::marian::{generate, generate_aligned, DecodeOptions, MarianModel};
use crate::tokenizer::MarianTokenizer;

/// Source sentences as token ids, each ending with EOS (id 0 for opus-mt): the JSON form is
/// `{"sentences": [[id, ...], ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Token ids of each source sentence.
    pub sentences: Vec<Vec<u32>>,
}

impl Workload {
    /// The default workload: 256 deterministic pseudo-sentences with a news-like length
    /// distribution (mean about 35 tokens, 8 to 90), ids drawn from the vocabulary without
    /// the special tokens.
    pub fn synthetic(vocab_size: usize, eos: u32, pad: u32) -> Self {
        let mut rng = SplitMix64(0x7472_6164_7569_7265); // "traduire"
        let sentences = (0..256)
            .map(|_| {
                // A bell around the middle (mean of two uniforms), bent by a power so that
                // lengths have a long right tail, as news sentences do.
                let u = (rng.unit() + rng.unit()) / 2.0;
                let len = (8.0 + 82.0 * u.powf(1.7)).round() as usize;
                let mut ids: Vec<u32> = (0..len - 1)
                    .map(|_| loop {
                        let id = 2 + (rng.next() % (vocab_size as u64 - 2)) as u32;
                        if id != pad && id != eos {
                            break id;
                        }
                    })
                    .collect();
                ids.push(eos);
                ids
            })
            .collect();
        Self { sentences }
    }

    /// Reads a workload file: JSON token ids (see [`Workload`]) when it starts with `{`,
    /// otherwise French text, one sentence per line, tokenised with `tokenizer`.
    pub fn from_file(path: &Path, tokenizer: &MarianTokenizer) -> Result<Self> {
        let text = read_workload(path)?;
        if text.trim_start().starts_with('{') {
            return Self::from_json(path, &text, tokenizer.eos_id());
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let workload = Self {
            sentences: tokenizer.encode_batch(&lines)?,
        };
        workload.check_not_empty(path)?;
        Ok(workload)
    }

    /// Reads a JSON token-id workload (see [`Workload`]); every sentence must end with `eos`.
    pub fn from_json_file(path: &Path, eos: u32) -> Result<Self> {
        Self::from_json(path, &read_workload(path)?, eos)
    }

    fn from_json(path: &Path, text: &str, eos: u32) -> Result<Self> {
        let workload: Workload = serde_json::from_str(text).with_context(|| {
            format!(
                "{}: expected {{\"sentences\": [[id, ...], ...]}}",
                path.display()
            )
        })?;
        for (i, s) in workload.sentences.iter().enumerate() {
            if s.last() != Some(&eos) {
                bail!(
                    "{}: sentence {i} does not end with </s> (id {eos})",
                    path.display()
                );
            }
        }
        workload.check_not_empty(path)?;
        Ok(workload)
    }

    fn check_not_empty(&self, path: &Path) -> Result<()> {
        if self.sentences.is_empty() {
            bail!("{}: the workload has no sentences", path.display());
        }
        Ok(())
    }

    /// Total source tokens, EOS included.
    pub fn source_tokens(&self) -> usize {
        self.sentences.iter().map(Vec::len).sum()
    }
}

fn read_workload(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading workload {}", path.display()))
}

/// How the benchmark batches and decodes.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Search settings (beam width, limits).
    pub decode: DecodeOptions,
    /// Fixed chunks of this many length-sorted sentences (the default batching).
    pub batch_sentences: Option<usize>,
    /// Otherwise, batches under this many padded source tokens.
    pub batch_tokens: Option<usize>,
    /// Every row of a batch generates exactly round(R x longest source of the batch) tokens
    /// (through [`DecodeOptions::with_exact_length`]).
    pub force_length: Option<f32>,
    /// Timed passes over the workload, after one warm-up batch.
    pub repeat: usize,
    /// Also read each hypothesis's alignment (what `--alignments` costs).
    pub alignments: bool,
}

/// What a benchmark run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Seconds to load the model and tokenizer.
    pub load_s: f64,
    /// Sentences in the workload.
    pub sentences: usize,
    /// Batches per pass.
    pub batches: usize,
    /// Timed passes.
    pub repeat: usize,
    /// Beam width.
    pub beams: usize,
    /// CPU threads of the model.
    pub threads: usize,
    /// What ran the model, e.g. `cpu int8 (avx512)`.
    pub engine: String,
    /// The length every row was forced to generate, as a ratio of its batch's longest
    /// source, when it was.
    pub force_length: Option<f32>,
    /// Whether alignments were read too.
    pub alignments: bool,
    /// Seconds of the timed passes.
    pub total_s: f64,
    /// Sentences translated per second.
    pub sentences_per_s: f64,
    /// Source tokens (EOS included) per second.
    pub source_tokens_per_s: f64,
    /// Generated tokens (best hypothesis, EOS included) per second.
    pub target_tokens_per_s: f64,
    /// Median batch latency in milliseconds.
    pub latency_p50_ms: f64,
    /// 95th percentile batch latency in milliseconds.
    pub latency_p95_ms: f64,
    /// Peak resident memory of the process in MB (VmHWM), when the OS reports it.
    pub peak_rss_mb: Option<f64>,
}

/// Progress of a run, for the caller's progress line.
#[derive(Debug, Clone, Copy)]
pub struct BenchProgress {
    /// Pass number, from 1 (0 is the warm-up).
    pub pass: usize,
    /// Batches done in this pass.
    pub batch: usize,
    /// Batches per pass.
    pub batches: usize,
}

/// Runs the workload `options.repeat` times after a warm-up batch and measures it.
pub fn run_bench(
    model: &MarianModel,
    workload: &Workload,
    options: &BenchOptions,
    load_s: f64,
    on_progress: &mut dyn FnMut(BenchProgress),
) -> Result<BenchReport> {
    if options.repeat == 0 {
        bail!("repeat must be at least 1");
    }
    if let Some(ratio) = options.force_length {
        if !(ratio.is_finite() && ratio > 0.0 && ratio <= 100.0) {
            bail!("force_length = {ratio} must be above 0 and at most 100");
        }
    }
    options.decode.validate(model.config())?;
    let lengths: Vec<usize> = workload.sentences.iter().map(Vec::len).collect();
    let batches = match (options.batch_sentences, options.batch_tokens) {
        (_, Some(tokens)) => plan_batches(
            &lengths,
            BatchLimits {
                max_tokens: tokens,
                max_sentences: crate::batching::MAX_BATCH_SENTENCES,
            },
        )?,
        (Some(n), None) => sorted_chunks(&lengths, n)?,
        (None, None) => sorted_chunks(&lengths, 32)?,
    };
    let run_batch = |batch: &[usize]| -> Result<usize> {
        let sources: Vec<Vec<u32>> = batch
            .iter()
            .map(|&i| workload.sentences[i].clone())
            .collect();
        let mut decode = options.decode.clone();
        if let Some(ratio) = options.force_length {
            let longest = sources.iter().map(Vec::len).max().unwrap_or(1);
            let positions = model.config().max_position_embeddings;
            let length = ((f64::from(ratio) * longest as f64).round() as usize).clamp(1, positions);
            decode = decode.with_exact_length(length);
        }
        let hyps = if options.alignments {
            generate_aligned(model, &sources, &decode)?
        } else {
            generate(model, &sources, &decode)?
        };
        Ok(hyps.iter().map(|h| h[0].ids.len()).sum())
    };

    on_progress(BenchProgress {
        pass: 0,
        batch: 0,
        batches: batches.len(),
    });
    run_batch(&batches[0])?;

    let mut latencies = Vec::with_capacity(batches.len() * options.repeat);
    let mut target_tokens = 0usize;
    let started = Instant::now();
    for pass in 1..=options.repeat {
        for (i, batch) in batches.iter().enumerate() {
            let t = Instant::now();
            target_tokens += run_batch(batch)?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            on_progress(BenchProgress {
                pass,
                batch: i + 1,
                batches: batches.len(),
            });
        }
    }
    let total_s = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let sentences = workload.sentences.len() * options.repeat;
    Ok(BenchReport {
        load_s,
        sentences: workload.sentences.len(),
        batches: batches.len(),
        repeat: options.repeat,
        beams: options.decode.num_beams,
        threads: model.threads(),
        engine: model.describe(),
        force_length: options.force_length,
        alignments: options.alignments,
        total_s,
        sentences_per_s: sentences as f64 / total_s,
        source_tokens_per_s: (workload.source_tokens() * options.repeat) as f64 / total_s,
        target_tokens_per_s: target_tokens as f64 / total_s,
        latency_p50_ms: percentile(&latencies, 0.50),
        latency_p95_ms: percentile(&latencies, 0.95),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Peak resident set size from /proc (Linux); `None` elsewhere.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A small deterministic generator for the synthetic workload (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_workload_is_news_like_and_deterministic() {
        let a = Workload::synthetic(59514, 0, 59513);
        assert_eq!(a, Workload::synthetic(59514, 0, 59513));
        assert_eq!(a.sentences.len(), 256);
        let lens: Vec<usize> = a.sentences.iter().map(Vec::len).collect();
        let mean = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
        assert!((30.0..=40.0).contains(&mean), "mean length {mean}");
        assert!(lens.iter().all(|&l| (8..=90).contains(&l)));
        assert!(a.sentences.iter().all(|s| s.last() == Some(&0)));
        assert!(a.sentences.iter().flatten().all(|&id| id != 59513));
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert_eq!(percentile(&v, 0.95), 4.0);
    }
}
