//! Helpers shared by the integration tests: fixture paths, model folders assembled from the
//! single stored copy of each fixture file, the binary under test, and a fake Hugging Face Hub.
//!
//! Each fixture file is stored once: the SentencePiece models, `vocab.json` and
//! `tokenizer_config.json` live in `tests/fixtures/tokenizer/`; `tests/fixtures/marian/<name>/`
//! holds only what is particular to a checkpoint (config, weights, reference outputs).
//! [`model_dir`] joins the two into the folder layout a real checkpoint has.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cli;
pub mod formats;
pub mod hub_server;
pub mod serve;

use std::path::{Path, PathBuf};

/// The crate root: `TRADUIRE_TEST_ROOT` when set (a prebuilt test executable run elsewhere,
/// e.g. from the GPU bundle of `scripts/gpu_bundle.sh`, reads its fixtures there), else the
/// source folder the tests were built from.
pub fn root() -> PathBuf {
    match std::env::var_os("TRADUIRE_TEST_ROOT") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// Where assembled fixture folders go: `TRADUIRE_TEST_SCRATCH` when set, else cargo's scratch
/// folder for integration tests.
fn scratch() -> PathBuf {
    match std::env::var_os("TRADUIRE_TEST_SCRATCH") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    }
}

/// `tests/fixtures/`.
pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The seed article (`seeds/`), the one copy the tests read.
pub fn seed_path() -> PathBuf {
    root().join("seeds/000_63993c6b9a9c911d.txt")
}

/// The seed article's text.
pub fn seed_text() -> String {
    std::fs::read_to_string(seed_path()).expect("the seed article is readable")
}

/// The tokenizer files every tiny checkpoint shares (`tests/fixtures/tokenizer/`).
pub const TOKENIZER_FILES: [&str; 4] = [
    "source.spm",
    "target.spm",
    "vocab.json",
    "tokenizer_config.json",
];

/// Files of `tests/fixtures/marian/<name>/` that are test data, not part of the checkpoint.
const REFERENCE_FILES: [&str; 5] = [
    "reference.json",
    "score.json",
    "guards.json",
    "alignment.json",
    "copy.json",
];

/// The reference data folder of a tiny checkpoint: `tests/fixtures/marian/<name>/`.
pub fn reference_dir(name: &str) -> PathBuf {
    fixtures().join("marian").join(name)
}

/// A complete model folder for the tiny checkpoint `name` ("tiny-swish", "tiny-relu", or
/// "copy", the model trained to copy its input, see `scripts/train_copy_model.py`): its
/// own files plus the shared tokenizer files, assembled once under cargo's scratch folder.
/// Read-only by convention: tests that break a checkpoint use [`model_copy`].
pub fn model_dir(name: &str) -> PathBuf {
    let own = reference_dir(name);
    let mut sources: Vec<PathBuf> = TOKENIZER_FILES
        .iter()
        .map(|f| fixtures().join("tokenizer").join(f))
        .collect();
    for entry in std::fs::read_dir(&own).expect("the fixture folder is readable") {
        let entry = entry.expect("a fixture entry");
        let file_name = entry.file_name();
        if !REFERENCE_FILES.iter().any(|r| file_name == *r) {
            sources.push(entry.path());
        }
    }
    assemble(&format!("model-{name}"), &sources)
}

/// The separate-vocabularies tokenizer fixture: `tests/fixtures/tokenizer_separate/` plus the
/// SentencePiece models of `tests/fixtures/tokenizer/`.
pub fn separate_tokenizer_dir() -> PathBuf {
    let own = fixtures().join("tokenizer_separate");
    let mut sources: Vec<PathBuf> = ["source.spm", "target.spm"]
        .iter()
        .map(|f| fixtures().join("tokenizer").join(f))
        .collect();
    for entry in std::fs::read_dir(&own).expect("the fixture folder is readable") {
        sources.push(entry.expect("a fixture entry").path());
    }
    assemble("tokenizer-separate", &sources)
}

/// A writable copy of the tiny checkpoint `name`, to break in a test.
pub fn model_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    copy_dir(&model_dir(name), dir.path());
    dir
}

/// Copies every regular file of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("a readable folder") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copying a file");
        }
    }
}

/// Copies `files` into `<scratch>/fixtures/<label>-<content hash>/` unless that
/// folder already exists. The content hash keeps a folder from going stale when a fixture
/// changes; building in a temp folder and renaming keeps parallel test binaries from seeing a
/// half-built one.
fn assemble(label: &str, files: &[PathBuf]) -> PathBuf {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut contents = Vec::new();
    for file in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for byte in file
            .file_name()
            .unwrap()
            .as_encoded_bytes()
            .iter()
            .chain(&data)
        {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        contents.push((file.file_name().unwrap().to_owned(), data));
    }
    let parent = scratch().join("fixtures");
    let dest = parent.join(format!("{label}-{hash:016x}"));
    if dest.is_dir() {
        return dest;
    }
    std::fs::create_dir_all(&parent).expect("creating the scratch folder");
    let building = tempfile::tempdir_in(&parent).expect("a temp folder");
    for (name, data) in contents {
        std::fs::write(building.path().join(name), data).expect("writing a fixture copy");
    }
    let building = building.keep();
    if std::fs::rename(&building, &dest).is_err() {
        // Another test binary finished first: its folder has the same contents.
        let _ = std::fs::remove_dir_all(&building);
        assert!(dest.is_dir(), "cannot assemble {}", dest.display());
    }
    dest
}
