//! What a local model folder must hold.

use std::path::Path;

use super::{Result, SourceError};
use crate::marian::WEIGHT_FILES;

/// Files a Marian model folder must contain (besides the weights, see [`WEIGHT_FILES`]).
pub const REQUIRED_FILES: &[&str] = &[
    "config.json",
    "source.spm",
    "target.spm",
    "vocab.json",
    "tokenizer_config.json",
];

/// Files fetched when the revision has them; a missing one is fine.
pub const OPTIONAL_FILES: &[&str] = &[
    "generation_config.json",
    "target_vocab.json",
    "tokenizer.json",
];

/// Checks that `dir` holds a usable model: every file of [`REQUIRED_FILES`] and one of
/// [`WEIGHT_FILES`]. The error names the folder and the first missing file.
pub fn validate_model_dir(dir: &Path) -> Result<()> {
    let invalid = |problem: String| SourceError::InvalidDir {
        dir: dir.to_path_buf(),
        problem,
    };
    if !dir.is_dir() {
        return Err(invalid("does not exist or is not a folder".into()));
    }
    if let Some(file) = REQUIRED_FILES.iter().find(|f| !dir.join(f).is_file()) {
        return Err(invalid(format!("has no {file}")));
    }
    if !WEIGHT_FILES.iter().any(|f| dir.join(f).is_file()) {
        return Err(invalid(
            "has no model.safetensors (nor pytorch_model.bin)".into(),
        ));
    }
    Ok(())
}
