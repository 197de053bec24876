//! Greedy decoding with the stock `candle_transformers::models::marian::MTModel`, exactly as
//! candle's `marian-mt` example runs it (encoder once, then one decoder step per token with
//! the model's KV cache, `reset_kv_cache` between sentences), one sentence at a time, but for
//! exactly L = max(1, round(R x source length)) tokens per sentence (EOS ignored).
//!
//! Usage: stock-candle-marian-bench --model-dir DIR --workload W.json [--force-length R]
//!        [--warmup N]
//! W.json is {"sentences": [[id, ..., 0], ...]} (already ordered and cut by the caller).
//! Threads: RAYON_NUM_THREADS. Prints one JSON object on stdout.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::marian::{Config, MTModel};

fn main() -> Result<()> {
    let mut model_dir: Option<PathBuf> = None;
    let mut workload: Option<PathBuf> = None;
    let mut ratio: f32 = 1.0;
    let mut warmup: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--model-dir" => model_dir = Some(value()?.into()),
            "--workload" => workload = Some(value()?.into()),
            "--force-length" => ratio = value()?.parse()?,
            "--warmup" => warmup = value()?.parse()?,
            _ => bail!("unknown argument {a}"),
        }
    }
    let model_dir = model_dir.context("--model-dir is required")?;
    let workload = workload.context("--workload is required")?;

    let device = Device::Cpu;
    let started = Instant::now();
    let config: Config = serde_json::from_str(
        &std::fs::read_to_string(model_dir.join("config.json")).context("reading config.json")?,
    )
    .context("parsing config.json as candle's marian Config")?;
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[model_dir.join("model.safetensors")],
            DType::F32,
            &device,
        )?
    };
    let mut model = MTModel::new(&config, vb)?;
    let load_s = started.elapsed().as_secs_f64();

    let w: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&workload)?)?;
    let sentences: Vec<Vec<u32>> = serde_json::from_value(w["sentences"].clone())?;
    if sentences.is_empty() {
        bail!("empty workload");
    }

    // The example's loop, with the stop on EOS replaced by a fixed length.
    let mut translate = |tokens: &[u32], steps: usize| -> Result<usize> {
        let mut logits_processor = LogitsProcessor::new(1337, None, None); // argmax
        let mut token_ids = vec![config.decoder_start_token_id];
        let encoder_xs = {
            let tokens = Tensor::new(tokens, &device)?.unsqueeze(0)?;
            model.encoder().forward(&tokens, 0)?
        };
        for index in 0..steps {
            let context_size = if index >= 1 { 1 } else { token_ids.len() };
            let start_pos = token_ids.len().saturating_sub(context_size);
            let input_ids = Tensor::new(&token_ids[start_pos..], &device)?.unsqueeze(0)?;
            let logits = model.decode(&input_ids, &encoder_xs, start_pos)?;
            let logits = logits.squeeze(0)?;
            let logits = logits.get(logits.dim(0)? - 1)?;
            let token = logits_processor.sample(&logits)?;
            token_ids.push(token);
        }
        model.reset_kv_cache();
        Ok(token_ids.len() - 1)
    };
    let forced = |len: usize| (((ratio as f64) * len as f64).round() as usize).max(1);

    for s in sentences.iter().take(warmup) {
        translate(s, forced(s.len()))?;
    }
    let mut target_tokens = 0usize;
    let mut expected = 0usize;
    let t = Instant::now();
    for s in &sentences {
        let steps = forced(s.len());
        expected += steps;
        target_tokens += translate(s, steps)?;
    }
    let total_s = t.elapsed().as_secs_f64();
    if target_tokens != expected {
        bail!("generated {target_tokens} tokens, expected {expected}");
    }
    let out = serde_json::json!({
        "load_s": load_s,
        "sentences": sentences.len(),
        "total_s": total_s,
        "target_tokens": target_tokens,
        "target_tokens_per_s": target_tokens as f64 / total_s,
        "threads": candle_core::utils::get_num_threads(),
    });
    println!("{out}");
    Ok(())
}
