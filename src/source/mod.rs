//! Where model files come from: the Hugging Face Hub (through the standard Hugging Face cache,
//! shared with Python's `huggingface_hub`) or a local folder.
//!
//! - [`catalogue`]: the models known by short name, pinned to a revision (`models/known.json`);
//! - [`hub`]: revision pinning, downloads into the cache, offline use;
//! - [`local`]: what a model folder must hold.
//!
//! Nothing here prints: downloads report through [`DownloadProgress`], and errors are
//! [`SourceError`] values that name the repo, the file or the folder (the command line adds
//! its own hints).

pub mod catalogue;
pub mod hub;
pub mod local;

use std::path::PathBuf;

pub use catalogue::{catalogue, Catalogue, KnownFile, KnownModel, ModelSpec};
pub use hub::{default_cache_dir, fetch_model, FetchOptions, DEFAULT_ENDPOINT};
pub use local::{validate_model_dir, OPTIONAL_FILES, REQUIRED_FILES};

/// Everything that can go wrong finding a model.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A short name that is not in the catalogue.
    #[error("unknown model {name:?}: known short names are {}; or give a Hub repo as ORG/NAME[@REVISION]", known.join(", "))]
    UnknownModel {
        /// The name given.
        name: String,
        /// The catalogue's short names.
        known: Vec<String>,
    },
    /// A malformed model name, repo id or revision.
    #[error("{0}")]
    InvalidSpec(String),
    /// A local folder that is not a usable model.
    #[error("model folder {}: {problem}", dir.display())]
    InvalidDir {
        /// The folder.
        dir: PathBuf,
        /// What is missing or wrong.
        problem: String,
    },
    /// Offline, and the cache has no complete snapshot.
    #[error("offline mode: {problem}")]
    NotCached {
        /// What is missing from the cache.
        problem: String,
    },
    /// The Hub could not be reached at all.
    #[error("cannot reach {endpoint} to download {repo}: {cause}")]
    Unreachable {
        /// The Hub URL.
        endpoint: String,
        /// The repo.
        repo: String,
        /// What the network said.
        cause: String,
    },
    /// The Hub has no such repo, revision or file (or refuses access).
    #[error("{endpoint} has no {what} (HTTP {status}{detail})")]
    NotFound {
        /// The Hub URL.
        endpoint: String,
        /// The repo, revision or file.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The Hub's error message, when it gave one.
        detail: String,
    },
    /// Any other failed request.
    #[error("{0}")]
    Download(String),
    /// The repo is not a Marian translation model.
    #[error("{spec}: {problem}")]
    NotMarian {
        /// The repo and revision.
        spec: String,
        /// What it lacks.
        problem: String,
    },
    /// The Hugging Face cache is missing, corrupt or not writable.
    #[error("{0}")]
    Cache(String),
}

/// Results of this module.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Hears about downloads, to draw a progress bar; `()` ignores them.
pub trait DownloadProgress {
    /// A download of `bytes` bytes of `file` starts (again, on a retry).
    fn start(&mut self, _file: &str, _bytes: u64) {}
    /// `bytes` more bytes arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The download finished.
    fn finish(&mut self) {}
}

impl DownloadProgress for () {}

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// Download from (or find in the cache of) the Hugging Face Hub.
    Hub(ModelSpec),
    /// A local folder holding the model files.
    Dir(PathBuf),
}

impl ModelSource {
    /// Returns a local folder with the model files: validated for [`ModelSource::Dir`],
    /// fetched (or found in the cache) for [`ModelSource::Hub`].
    pub fn resolve(
        &self,
        options: &FetchOptions,
        progress: &mut dyn DownloadProgress,
    ) -> Result<PathBuf> {
        match self {
            ModelSource::Hub(spec) => fetch_model(spec, options, progress),
            ModelSource::Dir(dir) => {
                validate_model_dir(dir)?;
                Ok(dir.clone())
            }
        }
    }
}
