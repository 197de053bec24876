//! The errors of the Marian engine: what went wrong, naming the file, the field, the tensor
//! or the option, never a command-line flag (the command line adds its own hints).

use std::path::PathBuf;

/// Results of the Marian engine.
pub type Result<T, E = MarianError> = std::result::Result<T, E>;

/// Everything that can go wrong loading a checkpoint or decoding with it.
#[derive(Debug, thiserror::Error)]
pub enum MarianError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` or `generation_config.json`: not JSON, or a field missing, malformed,
    /// outside its limits or not supported.
    #[error("{}{field} {problem}", file_prefix(path))]
    Config {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The weight file: unreadable, truncated, or a tensor missing or of the wrong shape.
    #[error("{}: {problem}", path.display())]
    Weights {
        /// The weight file.
        path: PathBuf,
        /// What is wrong, naming the tensor.
        problem: String,
    },
    /// A loading or decoding option outside what the engine accepts.
    #[error("{option} = {value} {problem}")]
    InvalidOption {
        /// The option's name in the library (`num_beams`, `max_length_ratio`, ...).
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Input the model cannot take: an empty sequence, an id outside the vocabulary, a
    /// sequence longer than the model's positions.
    #[error("{0}")]
    Input(String),
    /// The computation overflowed: NaN scores (typically f16 beyond its range).
    #[error("the model produced NaN scores{0} (a numerical overflow; f32 weights avoid it)")]
    NotFinite(String),
    /// A buffer could not be allocated.
    #[error("cannot allocate {what}: {bytes} bytes ({})", human_bytes(*bytes))]
    OutOfMemory {
        /// What the memory was for.
        what: String,
        /// How much was asked for.
        bytes: u128,
    },
    /// A device or number format this build or machine cannot run.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// A kernel choice this CPU or precision cannot run.
    #[error("{0}")]
    Unsupported(String),
    /// A kernel was given sizes that do not fit together (a bug in the caller).
    #[error(transparent)]
    Shape(#[from] super::kernels::ShapeError),
    /// An error inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

fn file_prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// `1.5 GB` style sizes for messages.
pub fn human_bytes(bytes: u128) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

impl MarianError {
    /// A config error for `field`.
    pub(crate) fn config(field: impl Into<String>, problem: impl Into<String>) -> Self {
        MarianError::Config {
            path: None,
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same error, naming `path` when it names no file yet.
    pub(crate) fn in_file(self, file: &std::path::Path) -> Self {
        match self {
            MarianError::Config {
                path: None,
                field,
                problem,
            } => MarianError::Config {
                path: Some(file.to_path_buf()),
                field,
                problem,
            },
            other => other,
        }
    }

    /// An option error.
    pub(crate) fn option(
        option: &'static str,
        value: impl std::fmt::Display,
        problem: impl Into<String>,
    ) -> Self {
        MarianError::InvalidOption {
            option,
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}

/// A vector of `len` copies of `value`, or an [`MarianError::OutOfMemory`] naming `what`
/// instead of aborting the process when the allocation fails.
pub(crate) fn try_vec<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| MarianError::OutOfMemory {
            what: what.to_string(),
            bytes: len as u128 * std::mem::size_of::<T>() as u128,
        })?;
    v.resize(len, value);
    Ok(v)
}

/// Grows `v` to `len` elements (new ones `value`), failing cleanly when memory runs out.
pub(crate) fn try_resize<T: Clone>(v: &mut Vec<T>, len: usize, value: T, what: &str) -> Result<()> {
    if len > v.len() {
        v.try_reserve_exact(len - v.len())
            .map_err(|_| MarianError::OutOfMemory {
                what: what.to_string(),
                bytes: len as u128 * std::mem::size_of::<T>() as u128,
            })?;
    }
    v.resize(len, value);
    Ok(())
}
