//! A sweep over batch sizes: one benchmark point per batch size for one loaded model (one
//! precision and thread count); `traduire bench --sweep` runs it for each precision and
//! thread count it is given and draws the points with [`super::chart`].

use anyhow::{bail, Result};
use serde::Serialize;

use super::{run_bench, BenchOptions, BenchProgress, BenchReport, Workload};
use crate::marian::{DecodeOptions, MarianModel};

/// The largest batch size a sweep accepts.
pub const MAX_SWEEP_BATCH: usize = 4096;

/// What a sweep runs at each point.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOptions {
    /// Batch sizes, in the order they are run.
    pub batches: Vec<usize>,
    /// Sentences translated at each batch size (at least one full batch: a batch size above
    /// it runs that many sentences instead).
    pub sentences: usize,
    /// Timed passes at each point, after a warm-up batch.
    pub repeat: usize,
    /// Search settings.
    pub decode: DecodeOptions,
    /// See [`BenchOptions::force_length`].
    pub force_length: Option<f32>,
    /// See [`BenchOptions::alignments`].
    pub alignments: bool,
}

/// One measured point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The precision's name (`f32`, `int8`, `f16`, ...).
    pub precision: String,
    /// CPU threads of the model.
    pub threads: usize,
    /// Sentences per batch.
    pub batch: usize,
    /// The benchmark at this point.
    pub report: BenchReport,
}

impl SweepOptions {
    /// Checks the options before any model is loaded.
    pub fn validate(&self) -> Result<()> {
        if self.batches.is_empty() {
            bail!("a sweep needs at least one batch size");
        }
        if let Some(&bad) = self
            .batches
            .iter()
            .find(|&&b| b == 0 || b > MAX_SWEEP_BATCH)
        {
            bail!("batch size {bad} is out of range (1 to {MAX_SWEEP_BATCH})");
        }
        if self.sentences == 0 || self.repeat == 0 {
            bail!("a sweep point needs at least one sentence and one pass");
        }
        Ok(())
    }
}

/// Runs every batch size of `options` on `model` (whose precision is named `precision`):
/// the first sentences of `workload`, repeated if it has fewer than a point needs.
pub fn run_sweep(
    model: &MarianModel,
    precision: &str,
    workload: &Workload,
    options: &SweepOptions,
    on_progress: &mut dyn FnMut(usize, BenchProgress),
) -> Result<Vec<SweepPoint>> {
    options.validate()?;
    if workload.sentences.is_empty() {
        bail!("the workload has no sentences");
    }
    let mut points = Vec::with_capacity(options.batches.len());
    for &batch in &options.batches {
        let count = options.sentences.max(batch);
        let sentences = workload
            .sentences
            .iter()
            .cycle()
            .take(count)
            .cloned()
            .collect();
        let bench = BenchOptions {
            decode: options.decode.clone(),
            batch_sentences: Some(batch),
            batch_tokens: None,
            force_length: options.force_length,
            repeat: options.repeat,
            alignments: options.alignments,
        };
        let report = run_bench(model, &Workload { sentences }, &bench, 0.0, &mut |p| {
            on_progress(batch, p)
        })?;
        points.push(SweepPoint {
            precision: precision.to_string(),
            threads: model.threads(),
            batch,
            report,
        });
    }
    Ok(points)
}
