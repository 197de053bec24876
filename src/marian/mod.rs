//! The Marian translation engine: checkpoint config, weights, two engines (traduire's CPU
//! kernels, candle's operations), decoding and scoring.
//!
//! Architecture invariant: this module knows nothing of where files come from (the Hub, the
//! cache) nor of the command line; it reads a model folder and returns typed errors.

pub mod align;
pub mod config;
mod cpu;
pub mod error;
pub mod generate;
mod generic;
pub mod kernels;
pub mod model;
pub mod score;
mod weights;

pub use align::{align, hard_alignment};
pub use config::{Activation, EarlyStopping, GenerationConfig, MarianConfig, LIMITS};
pub use error::MarianError;
pub use generate::{
    generate, generate_aligned, DecodeOptions, Hypothesis, MAX_LENGTH_RATIO, MAX_REPETITION_PENALTY,
};
pub use model::{Decoder, Encoded, KernelChoice, MarianModel, ModelOptions, MAX_THREADS};
pub use score::score;
pub use weights::{weights_file, WEIGHT_FILES};
