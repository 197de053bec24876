//! Choosing where the model runs: device, number type and CPU threads.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};

/// Opens a device by name: `cpu`, `cuda` (or `cuda:N`) or `metal`. GPU back-ends exist only
/// when traduire is built with the matching cargo feature.
pub fn open_device(name: &str) -> Result<Device> {
    let (kind, ordinal) = match name.split_once(':') {
        Some((kind, n)) => (
            kind,
            n.parse::<usize>()
                .with_context(|| format!("--device {name}: {n:?} is not a device number"))?,
        ),
        None => (name, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => Device::new_cuda(ordinal)
            .with_context(|| format!("cannot open CUDA device {ordinal}")),
        "metal" if cfg!(feature = "metal") => Device::new_metal(ordinal)
            .with_context(|| format!("cannot open Metal device {ordinal}")),
        "cuda" | "metal" => bail!(
            "--device {kind}: this traduire was built without GPU support; rebuild with `cargo build --release --features {kind}`"
        ),
        other => bail!("--device {other:?}: expected cpu, cuda or metal"),
    }
}

/// Parses a number type name: `f32` (default), `f16` or `bf16`.
pub fn parse_dtype(name: &str) -> Result<DType> {
    match name {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        other => bail!("--dtype {other:?}: expected f32, f16 or bf16"),
    }
}

/// Sets the number of CPU threads the matrix products use. Call it once, before any model
/// work: candle's CPU kernels read `RAYON_NUM_THREADS` and use rayon's global pool.
pub fn set_cpu_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    // SAFETY-free in edition 2021; done before other threads read the environment.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    // The global pool may already exist (tests, or a second call): the variable still governs
    // how many tasks candle splits a product into.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    Ok(())
}
