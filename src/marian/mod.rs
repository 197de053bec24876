//! The Marian translation engine: checkpoint config, the candle model, and decoding.

pub mod config;
mod cpu;
pub mod generate;
pub mod kernels;
pub mod model;

pub use config::{Activation, EarlyStopping, GenerationConfig, MarianConfig};
pub use cpu::set_cpu_kernels;
pub use generate::{generate, DecodeOptions, Hypothesis};
pub use model::{DecoderState, MarianModel};
