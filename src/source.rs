//! Where model files come from: the Hugging Face Hub (through the standard Hugging Face cache,
//! shared with Python's `huggingface_hub`) or a local directory given with `--model-dir`.
//!
//! Hub downloads first resolve the requested revision (branch, tag, `refs/pr/N` or sha) to one
//! commit sha and then fetch every file *at that sha*, so a branch that moves in the middle of a
//! download can never mix files from two commits. The files land in
//! `$HF_HOME/hub/models--Org--name/snapshots/<sha>/`, and `refs/<revision>` records the sha so
//! that offline runs (`HF_HUB_OFFLINE=1`) can find the snapshot again.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use serde::{Deserialize, Serialize};

/// The Hub used when neither [`FetchOptions::endpoint`] nor `HF_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Files a Marian model directory must contain (besides the weights, see [`WEIGHT_FILES`]).
pub const REQUIRED_FILES: &[&str] = &[
    "config.json",
    "source.spm",
    "target.spm",
    "vocab.json",
    "tokenizer_config.json",
];

/// Weight files in order of preference: safetensors when the revision has it, else the
/// PyTorch pickle (older revisions of the OPUS-MT repos only have that).
pub const WEIGHT_FILES: &[&str] = &["model.safetensors", "pytorch_model.bin"];

/// Files fetched when the revision has them; a missing one is fine.
pub const OPTIONAL_FILES: &[&str] = &[
    "generation_config.json",
    "target_vocab.json",
    "tokenizer.json",
];

const HINT_OFFLINE: &str = "hint: download the model once with network access, or pass --model-dir DIR with a local copy (HF_HUB_OFFLINE=1 uses the Hugging Face cache only)";

/// The model catalogue shipped with the crate (`models/known.json`).
const KNOWN_JSON: &str = include_str!("../models/known.json");

/// The catalogue of models known by short name.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Catalogue {
    /// Short name of the model used when none is given.
    pub default: String,
    /// Every known model.
    pub models: Vec<KnownModel>,
}

/// One catalogue entry: a short name for a pinned Hub repo and revision.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KnownModel {
    /// Short name accepted by `--model`, e.g. `opus-mt-fr-en`.
    pub name: String,
    /// Hub repo id, e.g. `Helsinki-NLP/opus-mt-fr-en`.
    pub repo: String,
    /// Revision used for this model: branch, tag, `refs/pr/N` or commit sha.
    pub revision: String,
    /// Licence of the model weights (SPDX-style id from the model card).
    pub license: String,
    /// What the model is and when to use it.
    pub description: String,
    /// The files fetched, with approximate sizes.
    pub files: Vec<KnownFile>,
}

/// A file of a catalogued model and its approximate size.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KnownFile {
    /// File name inside the repo.
    pub name: String,
    /// Approximate size in bytes (for messages; never checked).
    pub approx_bytes: u64,
}

impl KnownModel {
    /// Approximate download size of the whole model in bytes.
    pub fn approx_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.approx_bytes).sum()
    }

    /// The Hub spec (repo and pinned revision) of this model.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            repo: self.repo.clone(),
            revision: self.revision.clone(),
        }
    }
}

/// The embedded model catalogue.
pub fn catalogue() -> Result<Catalogue> {
    serde_json::from_str(KNOWN_JSON).context("the embedded models/known.json is not valid")
}

/// A model on the Hub: repo id and revision (branch, tag, `refs/pr/N` or commit sha).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Repo id, `Org/name`.
    pub repo: String,
    /// Revision to download; resolved to a commit sha before any file is fetched.
    pub revision: String,
}

impl ModelSpec {
    /// Parses `REPO[@REVISION]` or a catalogue short name (`opus-mt-fr-en[@REVISION]`).
    ///
    /// A repo that is in the catalogue gets the catalogue's pinned revision unless one is given;
    /// any other repo defaults to `main`, as on the Hub.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let (name, revision) = match text.split_once('@') {
            Some((name, rev)) => (name, Some(rev)),
            None => (text, None),
        };
        if name.is_empty() {
            bail!("empty model name in {text:?}; expected a short name such as opus-mt-fr-en or a Hub repo such as Helsinki-NLP/opus-mt-fr-en[@REVISION]");
        }
        let catalogue = catalogue()?;
        let known = catalogue
            .models
            .iter()
            .find(|m| m.name == name || m.repo == name);
        let (repo, default_revision) = match known {
            Some(m) => (m.repo.clone(), m.revision.clone()),
            None if name.contains('/') => (name.to_string(), "main".to_string()),
            None => {
                let names: Vec<&str> = catalogue.models.iter().map(|m| m.name.as_str()).collect();
                bail!(
                    "unknown model {name:?}: known short names are {}; or give a Hub repo as ORG/NAME[@REVISION]",
                    names.join(", ")
                );
            }
        };
        check_repo_id(&repo)?;
        let revision = match revision {
            Some(rev) => rev.to_string(),
            None => default_revision,
        };
        check_revision(&revision)?;
        Ok(ModelSpec { repo, revision })
    }

    /// The catalogue's default model (`opus-mt-fr-en`).
    pub fn default_model() -> Result<Self> {
        Self::parse(&catalogue()?.default)
    }
}

impl FromStr for ModelSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repo, self.revision)
    }
}

/// Repo ids become cache folder names, so only the Hub's own character set is accepted.
fn check_repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let valid_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if parts.len() != 2 || !parts.iter().all(|p| valid_part(p)) {
        bail!("invalid Hub repo id {repo:?}: expected ORG/NAME made of letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Revisions become paths under `refs/`, so `..`, empty segments and odd characters are refused.
fn check_revision(revision: &str) -> Result<()> {
    let valid = !revision.is_empty()
        && revision
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !valid {
        bail!("invalid revision {revision:?}: expected a branch, tag, refs/pr/N or commit sha");
    }
    Ok(())
}

fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// Download from (or find in the cache of) the Hugging Face Hub.
    Hub(ModelSpec),
    /// A local directory holding the model files (`--model-dir`).
    Dir(PathBuf),
}

impl ModelSource {
    /// Returns a local directory with the model files: validated for [`ModelSource::Dir`],
    /// fetched (or found in the cache) for [`ModelSource::Hub`].
    pub fn resolve(&self, options: &FetchOptions) -> Result<PathBuf> {
        match self {
            ModelSource::Hub(spec) => fetch_model(spec, options),
            ModelSource::Dir(dir) => {
                validate_model_dir(dir)?;
                Ok(dir.clone())
            }
        }
    }
}

/// How [`fetch_model`] reaches the Hub. `None` fields fall back to the usual Hugging Face
/// environment variables, so the CLI can pass `FetchOptions::from_env()` and tests can pass
/// everything explicitly without touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Draw a download progress bar on stderr (hidden when stderr is not a terminal).
    pub progress: bool,
    /// Never touch the network: use the Hugging Face cache only.
    pub offline: bool,
    /// Hub cache folder (the one holding `models--*`). `None`: `HF_HUB_CACHE`, else
    /// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub cache_dir: Option<PathBuf>,
    /// Hub URL. `None`: `HF_ENDPOINT`, else [`DEFAULT_ENDPOINT`].
    pub endpoint: Option<String>,
    /// Access token for private or gated repos; `Some("")` sends none. `None`: `HF_TOKEN`,
    /// else the token file `$HF_HOME/token` written by `huggingface-cli login` / `hf auth login`.
    pub token: Option<String>,
}

impl FetchOptions {
    /// Options from the environment: `offline` is set when `HF_HUB_OFFLINE` is truthy
    /// (`1`, `true`, `yes`, `on`); the other fields stay `None` and are looked up when used.
    pub fn from_env() -> Self {
        FetchOptions {
            offline: env_truthy("HF_HUB_OFFLINE"),
            ..Default::default()
        }
    }
}

fn env_truthy(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `HF_HOME` as Python's huggingface_hub computes it.
fn hf_home() -> Option<PathBuf> {
    if let Some(home) = env_nonempty("HF_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(xdg) = env_nonempty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(xdg).join("huggingface"));
    }
    let home = env_nonempty("HOME").or_else(|| env_nonempty("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".cache").join("huggingface"))
}

/// The Hub cache folder used when [`FetchOptions::cache_dir`] is `None`.
pub fn default_cache_dir() -> Result<PathBuf> {
    if let Some(cache) = env_nonempty("HF_HUB_CACHE") {
        return Ok(PathBuf::from(cache));
    }
    hf_home().map(|home| home.join("hub")).ok_or_else(|| {
        anyhow!(
            "cannot find the Hugging Face cache: set HF_HOME (or HOME), or pass --model-dir DIR"
        )
    })
}

fn default_token() -> Option<String> {
    if let Some(token) = env_nonempty("HF_TOKEN") {
        return Some(token.trim().to_string());
    }
    let file = hf_home()?.join("token");
    let token = std::fs::read_to_string(file).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Checks that `dir` holds a usable model: every file of [`REQUIRED_FILES`] and one of
/// [`WEIGHT_FILES`]. The error names the directory and the first missing file.
pub fn validate_model_dir(dir: &Path) -> Result<()> {
    const HINT: &str = "hint: a model directory needs config.json, source.spm, target.spm, vocab.json, tokenizer_config.json and model.safetensors (or pytorch_model.bin), e.g. a Hugging Face snapshot folder of Helsinki-NLP/opus-mt-fr-en";
    if !dir.is_dir() {
        bail!(
            "model directory {} does not exist or is not a directory\n{HINT}",
            dir.display()
        );
    }
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            bail!("model directory {} has no {file}\n{HINT}", dir.display());
        }
    }
    weights_file(dir).map(|_| ()).map_err(|_| {
        anyhow!(
            "model directory {} has no model.safetensors (nor pytorch_model.bin)\n{HINT}",
            dir.display()
        )
    })
}

/// The weights file of a model directory: `model.safetensors`, else `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf> {
    WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "no model.safetensors nor pytorch_model.bin in {}",
                dir.display()
            )
        })
}

/// Returns a local directory with the files of `spec` (see the module docs): the Hugging Face
/// cache snapshot folder `…/models--Org--name/snapshots/<sha>/`.
///
/// Online, the revision is resolved to a commit sha and the missing files are downloaded at
/// that sha. Offline (`options.offline`), the revision is resolved through the cache's
/// `refs/` files. If the Hub cannot be reached but a complete snapshot of the revision is
/// cached, that snapshot is used, as Python's huggingface_hub does.
pub fn fetch_model(spec: &ModelSpec, options: &FetchOptions) -> Result<PathBuf> {
    check_repo_id(&spec.repo)?;
    check_revision(&spec.revision)?;
    let cache_dir = match &options.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir()?,
    };
    if options.offline {
        return cached_snapshot(spec, &cache_dir).map_err(|e| {
            anyhow!(
                "offline mode: {e}\nhint: run once with network access (without HF_HUB_OFFLINE=1 / --offline), or pass --model-dir DIR with a local copy"
            )
        });
    }
    let endpoint = options
        .endpoint
        .clone()
        .or_else(|| env_nonempty("HF_ENDPOINT"))
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let token = options
        .token
        .clone()
        .or_else(default_token)
        .filter(|t| !t.is_empty());

    let api = ApiBuilder::new()
        .with_endpoint(endpoint.clone())
        .with_cache_dir(cache_dir.clone())
        .with_token(token)
        // We draw our own bar (indicatif 0.18); hf-hub's would use its own indicatif 0.17.
        .with_progress(false)
        .with_retries(2)
        .build()
        .map_err(|e| anyhow!("cannot set up the Hugging Face Hub client: {e}"))?;

    // One info request resolves the revision to a sha and lists the files at that sha.
    let repo_api = api.repo(Repo::with_revision(
        spec.repo.clone(),
        RepoType::Model,
        spec.revision.clone(),
    ));
    let info = match repo_api.info() {
        Ok(info) => info,
        Err(e) => {
            if is_unreachable(&e) {
                // Like Python's huggingface_hub: a complete cached snapshot beats a network error.
                if let Ok(dir) = cached_snapshot(spec, &cache_dir) {
                    return Ok(dir);
                }
            }
            return Err(describe_error(&e, &endpoint, spec, None));
        }
    };
    let sha = info.sha.trim().to_string();
    if !is_commit_sha(&sha) {
        bail!("{endpoint} answered an invalid commit sha {sha:?} for {spec}");
    }
    let available: HashSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let files = files_to_fetch(&available)
        .with_context(|| format!("{spec} (commit {sha}) on {endpoint}"))?;

    let cache_repo = Cache::new(cache_dir.clone()).repo(Repo::with_revision(
        spec.repo.clone(),
        RepoType::Model,
        spec.revision.clone(),
    ));
    let snapshot = snapshot_dir(&cache_dir, &spec.repo, &sha);
    // Downloads address the commit sha itself, so every file comes from the same commit.
    let at_sha = api.repo(Repo::with_revision(
        spec.repo.clone(),
        RepoType::Model,
        sha.clone(),
    ));
    for file in &files {
        if snapshot.join(file).is_file() {
            continue;
        }
        let result = if options.progress {
            at_sha.download_with_progress(file, Bar::new())
        } else {
            at_sha.download_with_progress(file, ())
        };
        let path = result.map_err(|e| describe_error(&e, &endpoint, spec, Some(file)))?;
        // hf-hub files the download under the commit the server names in x-repo-commit;
        // anything else would mean the server mixed commits.
        if path.parent() != Some(snapshot.as_path()) {
            bail!(
                "{endpoint} served {file} of {spec} from another commit than {sha} (got {})",
                path.display()
            );
        }
    }
    if spec.revision != sha {
        // Lets offline runs map the revision to this snapshot.
        cache_repo.create_ref(&sha).with_context(|| {
            format!(
                "cannot record revision {} in the cache {}",
                spec.revision,
                cache_dir.display()
            )
        })?;
        // hf-hub also wrote refs/<sha> (it downloaded "revision" <sha>); Python never writes a
        // ref named by a sha, so drop it to keep the shared cache tidy. Failure is harmless.
        let folder = Repo::new(spec.repo.clone(), RepoType::Model).folder_name();
        let _ = std::fs::remove_file(cache_dir.join(folder).join("refs").join(&sha));
    }
    validate_model_dir(&snapshot)?;
    Ok(snapshot)
}

/// The files to download given the files the revision has.
fn files_to_fetch(available: &HashSet<&str>) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for file in REQUIRED_FILES {
        if !available.contains(file) {
            bail!("the model repo has no {file}, so it is not a Marian translation model");
        }
        files.push(file.to_string());
    }
    let weights = WEIGHT_FILES
        .iter()
        .find(|f| available.contains(*f))
        .ok_or_else(|| {
            anyhow!("the model repo has neither model.safetensors nor pytorch_model.bin")
        })?;
    files.push(weights.to_string());
    files.extend(
        OPTIONAL_FILES
            .iter()
            .filter(|f| available.contains(*f))
            .map(|f| f.to_string()),
    );
    Ok(files)
}

/// `<cache>/models--Org--name/snapshots/<sha>`, the layout Python's huggingface_hub uses.
fn snapshot_dir(cache_dir: &Path, repo: &str, sha: &str) -> PathBuf {
    let folder = Repo::new(repo.to_string(), RepoType::Model).folder_name();
    cache_dir.join(folder).join("snapshots").join(sha)
}

/// The cached, complete snapshot of `spec`, found without network.
fn cached_snapshot(spec: &ModelSpec, cache_dir: &Path) -> Result<PathBuf> {
    let repo_dir = cache_dir.join(Repo::new(spec.repo.clone(), RepoType::Model).folder_name());
    let sha = if is_commit_sha(&spec.revision) {
        spec.revision.clone()
    } else {
        let ref_file = repo_dir.join("refs").join(&spec.revision);
        let sha = std::fs::read_to_string(&ref_file).map_err(|_| {
            anyhow!(
                "{spec} is not in the Hugging Face cache {}",
                cache_dir.display()
            )
        })?;
        sha.trim().to_string()
    };
    if !is_commit_sha(&sha) {
        bail!(
            "the Hugging Face cache {} has a corrupt ref for {spec}: {sha:?}",
            cache_dir.display()
        );
    }
    let snapshot = snapshot_dir(cache_dir, &spec.repo, &sha);
    validate_model_dir(&snapshot).map_err(|_| {
        anyhow!(
            "the cached snapshot of {spec} at {} is incomplete",
            snapshot.display()
        )
    })?;
    Ok(snapshot)
}

/// The ureq error inside an hf-hub error, if any.
fn ureq_error(e: &ApiError) -> Option<&ureq::Error> {
    match e {
        ApiError::RequestError(inner) => Some(inner),
        ApiError::TooManyRetries(inner) => ureq_error(inner),
        _ => None,
    }
}

/// True when the endpoint could not be reached at all (DNS, refused, TLS, timeout...).
fn is_unreachable(e: &ApiError) -> bool {
    matches!(ureq_error(e), Some(ureq::Error::Transport(_)))
}

/// Turns an hf-hub error into a message of at most two lines: what failed, then a hint.
fn describe_error(
    e: &ApiError,
    endpoint: &str,
    spec: &ModelSpec,
    file: Option<&str>,
) -> anyhow::Error {
    let what = match file {
        Some(file) => format!("{file} of {spec}"),
        None => spec.to_string(),
    };
    match ureq_error(e) {
        Some(ureq::Error::Transport(t)) => {
            // ureq prefixes the URL; the first line already names the endpoint and repo.
            let full = t.to_string();
            let url_prefix = t.url().map(|u| format!("{u}: ")).unwrap_or_default();
            let cause = one_line(full.strip_prefix(&url_prefix).unwrap_or(&full));
            anyhow!(
                "cannot reach {endpoint} to download {}: {cause}\n{HINT_OFFLINE}",
                spec.repo
            )
        }
        Some(ureq::Error::Status(code, response)) => {
            let detail = response
                .header("x-error-message")
                .map(|m| format!(": {}", one_line(m)))
                .unwrap_or_default();
            match code {
                401 | 403 | 404 => anyhow!(
                    "{endpoint} has no {what} (HTTP {code}{detail})\nhint: check the repo id and revision (e.g. Helsinki-NLP/opus-mt-fr-en@refs/pr/4); private or gated repos need HF_TOKEN"
                ),
                _ => anyhow!(
                    "{endpoint} answered HTTP {code}{detail} while downloading {what}\n{HINT_OFFLINE}"
                ),
            }
        }
        None => anyhow!(
            "downloading {what} from {endpoint} failed: {}",
            one_line(&e.to_string())
        ),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Download progress through indicatif 0.18, driven by hf-hub's `Progress` callbacks.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Self {
        Bar(indicatif::ProgressBar::hidden())
    }
}

impl hf_hub::api::Progress for Bar {
    fn init(&mut self, size: usize, filename: &str) {
        // init is called again on retries: start a fresh bar each time.
        self.0.finish_and_clear();
        let style = indicatif::ProgressStyle::with_template(
            "{msg:24} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        self.0 = indicatif::ProgressBar::new(size as u64)
            .with_style(style)
            .with_message(filename.to_string());
    }

    fn update(&mut self, size: usize) {
        self.0.inc(size as u64);
    }

    fn finish(&mut self) {
        self.0.finish();
    }
}
