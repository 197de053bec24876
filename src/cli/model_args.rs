//! Options shared by the subcommands that load a model.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use traduire::source::{FetchOptions, ModelSource, ModelSpec};

/// Where the model comes from and how it runs.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model: a short name (opus-mt-fr-en, opus-mt-tc-big-fr-en; see models/README.md) or a
    /// Hugging Face repo as ORG/NAME[@REVISION]. Downloaded once into the Hugging Face cache.
    #[arg(long, default_value = "opus-mt-fr-en", conflicts_with = "model_dir")]
    pub model: String,
    /// Use a local model folder instead of the Hub (config.json, *.spm, vocab.json, weights).
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Never use the network: take the model from the Hugging Face cache (as HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Device: cpu, cuda[:N] or metal (GPUs need a build with --features cuda / metal).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Number type of the weights: f32, f16 or bf16 (where the device supports it).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// CPU threads for the matrix products (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ModelArgs {
    /// Applies the thread setting, then returns a local folder with the model files,
    /// downloading them if needed (with a progress bar when `progress`).
    pub fn model_dir(&self, progress: bool) -> Result<PathBuf> {
        if let Some(threads) = self.threads {
            traduire::device::set_cpu_threads(threads)?;
        }
        let source = match &self.model_dir {
            Some(dir) => ModelSource::Dir(dir.clone()),
            None => ModelSource::Hub(ModelSpec::parse(&self.model)?),
        };
        let mut options = FetchOptions::from_env();
        options.offline |= self.offline;
        options.progress = progress;
        source.resolve(&options)
    }
}
