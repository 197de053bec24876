//! The models known by short name (`models/known.json`), each pinned to a repo and revision,
//! and the `ORG/NAME[@REVISION]` syntax for any other Hub model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Result, SourceError};

/// The model catalogue shipped with the crate (`models/known.json`).
const KNOWN_JSON: &str = include_str!("../../models/known.json");

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
    serde_json::from_str(KNOWN_JSON).map_err(|e| {
        SourceError::InvalidSpec(format!("the embedded models/known.json is not valid: {e}"))
    })
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
            return Err(SourceError::InvalidSpec(format!(
                "empty model name in {text:?}; expected a short name such as opus-mt-fr-en or a Hub repo such as Helsinki-NLP/opus-mt-fr-en[@REVISION]"
            )));
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
                return Err(SourceError::UnknownModel {
                    name: name.to_string(),
                    known: catalogue.models.iter().map(|m| m.name.clone()).collect(),
                })
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
    type Err = SourceError;
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
pub(crate) fn check_repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let valid_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if parts.len() != 2 || !parts.iter().all(|p| valid_part(p)) {
        return Err(SourceError::InvalidSpec(format!(
            "invalid Hub repo id {repo:?}: expected ORG/NAME made of letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Revisions become paths under `refs/`, so `..`, empty segments and odd characters are refused.
pub(crate) fn check_revision(revision: &str) -> Result<()> {
    let valid = !revision.is_empty()
        && revision
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !valid {
        return Err(SourceError::InvalidSpec(format!(
            "invalid revision {revision:?}: expected a branch, tag, refs/pr/N or commit sha"
        )));
    }
    Ok(())
}

pub(crate) fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}
