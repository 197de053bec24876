//! Downloads from the Hugging Face Hub into the standard Hugging Face cache.
//!
//! A download first resolves the requested revision (branch, tag, `refs/pr/N` or sha) to one
//! commit sha and then fetches every file *at that sha*, so a branch that moves in the middle of
//! a download can never mix files from two commits. The files land in
//! `$HF_HOME/hub/models--Org--name/snapshots/<sha>/`, and `refs/<revision>` records the sha so
//! that offline runs (`HF_HUB_OFFLINE=1`) can find the snapshot again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use super::catalogue::{check_repo_id, check_revision, is_commit_sha, ModelSpec};
use super::local::{validate_model_dir, OPTIONAL_FILES, REQUIRED_FILES};
use super::{DownloadProgress, Result, SourceError};
use crate::marian::WEIGHT_FILES;

/// The Hub used when neither [`FetchOptions::endpoint`] nor `HF_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How [`fetch_model`] reaches the Hub. `None` fields fall back to the usual Hugging Face
/// environment variables, so the CLI can pass `FetchOptions::from_env()` and tests can pass
/// everything explicitly without touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
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
        SourceError::Cache(
            "cannot find the Hugging Face cache: neither HF_HUB_CACHE, HF_HOME nor HOME is set"
                .into(),
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

/// Returns a local directory with the files of `spec` (see the module docs): the Hugging Face
/// cache snapshot folder `…/models--Org--name/snapshots/<sha>/`.
///
/// Online, the revision is resolved to a commit sha and the missing files are downloaded at
/// that sha. Offline (`options.offline`), the revision is resolved through the cache's
/// `refs/` files. If the Hub cannot be reached but a complete snapshot of the revision is
/// cached, that snapshot is used, as Python's huggingface_hub does.
pub fn fetch_model(
    spec: &ModelSpec,
    options: &FetchOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf> {
    check_repo_id(&spec.repo)?;
    check_revision(&spec.revision)?;
    let cache_dir = match &options.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir()?,
    };
    if options.offline {
        return cached_snapshot(spec, &cache_dir)
            .map_err(|problem| SourceError::NotCached { problem });
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
        // Progress goes to the caller's `DownloadProgress`, not to hf-hub's own bar.
        .with_progress(false)
        .with_retries(2)
        .build()
        .map_err(|e| {
            SourceError::Download(format!("cannot set up the Hugging Face Hub client: {e}"))
        })?;

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
        return Err(SourceError::Download(format!(
            "{endpoint} answered an invalid commit sha {sha:?} for {spec}"
        )));
    }
    let available: HashSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let files = files_to_fetch(&available).map_err(|problem| SourceError::NotMarian {
        spec: format!("{spec} (commit {sha}) on {endpoint}"),
        problem,
    })?;

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
        let path = at_sha
            .download_with_progress(file, HubProgress(&mut *progress))
            .map_err(|e| describe_error(&e, &endpoint, spec, Some(file)))?;
        // hf-hub files the download under the commit the server names in x-repo-commit;
        // anything else would mean the server mixed commits.
        if path.parent() != Some(snapshot.as_path()) {
            return Err(SourceError::Download(format!(
                "{endpoint} served {file} of {spec} from another commit than {sha} (got {})",
                path.display()
            )));
        }
    }
    if spec.revision != sha {
        // Lets offline runs map the revision to this snapshot.
        cache_repo.create_ref(&sha).map_err(|e| {
            SourceError::Cache(format!(
                "cannot record revision {} in the cache {}: {e}",
                spec.revision,
                cache_dir.display()
            ))
        })?;
        // hf-hub also wrote refs/<sha> (it downloaded "revision" <sha>); Python never writes a
        // ref named by a sha, so drop it to keep the shared cache tidy. Failure is harmless.
        let folder = Repo::new(spec.repo.clone(), RepoType::Model).folder_name();
        let _ = std::fs::remove_file(cache_dir.join(folder).join("refs").join(&sha));
    }
    validate_model_dir(&snapshot)?;
    Ok(snapshot)
}

/// hf-hub's progress callbacks, forwarded to a [`DownloadProgress`].
struct HubProgress<'a>(&'a mut dyn DownloadProgress);

impl hf_hub::api::Progress for HubProgress<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        self.0.start(filename, size as u64);
    }

    fn update(&mut self, size: usize) {
        self.0.advance(size as u64);
    }

    fn finish(&mut self) {
        self.0.finish();
    }
}

/// The files to download given the files the revision has.
fn files_to_fetch(available: &HashSet<&str>) -> std::result::Result<Vec<String>, String> {
    let mut files = Vec::new();
    for file in REQUIRED_FILES {
        if !available.contains(file) {
            return Err(format!(
                "the model repo has no {file}, so it is not a Marian translation model"
            ));
        }
        files.push(file.to_string());
    }
    let weights = WEIGHT_FILES
        .iter()
        .find(|f| available.contains(*f))
        .ok_or("the model repo has neither model.safetensors nor pytorch_model.bin")?;
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

/// The cached, complete snapshot of `spec`, found without network (or what is missing).
fn cached_snapshot(spec: &ModelSpec, cache_dir: &Path) -> std::result::Result<PathBuf, String> {
    let repo_dir = cache_dir.join(Repo::new(spec.repo.clone(), RepoType::Model).folder_name());
    let sha = if is_commit_sha(&spec.revision) {
        spec.revision.clone()
    } else {
        let ref_file = repo_dir.join("refs").join(&spec.revision);
        let sha = std::fs::read_to_string(&ref_file).map_err(|_| {
            format!(
                "{spec} is not in the Hugging Face cache {}",
                cache_dir.display()
            )
        })?;
        sha.trim().to_string()
    };
    if !is_commit_sha(&sha) {
        return Err(format!(
            "the Hugging Face cache {} has a corrupt ref for {spec}: {sha:?}",
            cache_dir.display()
        ));
    }
    let snapshot = snapshot_dir(cache_dir, &spec.repo, &sha);
    validate_model_dir(&snapshot).map_err(|_| {
        format!(
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

/// Turns an hf-hub error into a [`SourceError`] of one line.
fn describe_error(
    e: &ApiError,
    endpoint: &str,
    spec: &ModelSpec,
    file: Option<&str>,
) -> SourceError {
    let what = match file {
        Some(file) => format!("{file} of {spec}"),
        None => spec.to_string(),
    };
    match ureq_error(e) {
        Some(ureq::Error::Transport(t)) => {
            // ureq prefixes the URL; the message already names the endpoint and repo.
            let full = t.to_string();
            let url_prefix = t.url().map(|u| format!("{u}: ")).unwrap_or_default();
            SourceError::Unreachable {
                endpoint: endpoint.to_string(),
                repo: spec.repo.clone(),
                cause: one_line(full.strip_prefix(&url_prefix).unwrap_or(&full)),
            }
        }
        Some(ureq::Error::Status(code, response)) => {
            let detail = response
                .header("x-error-message")
                .map(|m| format!(": {}", one_line(m)))
                .unwrap_or_default();
            match code {
                401 | 403 | 404 => SourceError::NotFound {
                    endpoint: endpoint.to_string(),
                    what,
                    status: *code,
                    detail,
                },
                _ => SourceError::Download(format!(
                    "{endpoint} answered HTTP {code}{detail} while downloading {what}"
                )),
            }
        }
        None => SourceError::Download(format!(
            "downloading {what} from {endpoint} failed: {}",
            one_line(&e.to_string())
        )),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
