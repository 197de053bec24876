//! `traduire::source` against a loopback fake of the Hugging Face Hub (tests/common/hub_server.rs).
//! Every test passes its cache dir and endpoint explicitly, so the process environment
//! (HF_HOME, HF_HUB_OFFLINE, HF_ENDPOINT) never matters and tests can run in parallel.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::hub_server::{closed_endpoint, serve_dir, serve_files};
use traduire::source::{
    catalogue, fetch_model, validate_model_dir, FetchOptions, ModelSource, ModelSpec,
};

const REPO: &str = "Helsinki-NLP/opus-mt-fr-en";

/// Small, distinguishable stand-ins for the files of a Marian repo (plus one we must not fetch).
fn fixture(with_safetensors: bool) -> BTreeMap<String, Vec<u8>> {
    let mut names = vec![
        "config.json",
        "generation_config.json",
        "source.spm",
        "target.spm",
        "vocab.json",
        "tokenizer_config.json",
        "pytorch_model.bin",
        "README.md",
        "tf_model.h5",
    ];
    if with_safetensors {
        names.push("model.safetensors");
    }
    names
        .into_iter()
        .map(|n| (n.to_string(), format!("fake {n} contents").into_bytes()))
        .collect()
}

fn options(endpoint: &str, cache: &Path) -> FetchOptions {
    FetchOptions {
        offline: false,
        cache_dir: Some(cache.to_path_buf()),
        endpoint: Some(endpoint.to_string()),
        // Never the developer's HF_TOKEN / token file: "" means no token.
        token: Some(String::new()),
    }
}

fn offline(cache: &Path) -> FetchOptions {
    FetchOptions {
        offline: true,
        endpoint: Some("http://127.0.0.1:9".into()),
        ..options("", cache)
    }
}

fn snapshot(cache: &Path, sha: &str) -> PathBuf {
    cache
        .join("models--Helsinki-NLP--opus-mt-fr-en")
        .join("snapshots")
        .join(sha)
}

/// Library errors are one line and name no command-line flag (the CLI adds its hints).
fn assert_one_line_without_flags(message: &str) {
    assert_eq!(message.lines().count(), 1, "more than one line: {message}");
    assert!(!message.contains("--"), "names a flag: {message}");
}

/// Records the download callbacks.
#[derive(Default)]
struct Recorder {
    started: Vec<(String, u64)>,
    bytes: u64,
    finished: usize,
}

impl traduire::source::DownloadProgress for Recorder {
    fn start(&mut self, file: &str, bytes: u64) {
        self.started.push((file.to_string(), bytes));
    }
    fn advance(&mut self, bytes: u64) {
        self.bytes += bytes;
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}

#[test]
fn downloads_pr_revision_into_snapshot_named_by_sha() {
    let cache = tempfile::tempdir().unwrap();
    let files = fixture(true);
    let server = serve_files(REPO, "refs/pr/4", files.clone());
    let spec = ModelSpec::parse("Helsinki-NLP/opus-mt-fr-en@refs/pr/4").unwrap();

    let dir = fetch_model(&spec, &options(&server.endpoint, cache.path()), &mut ()).unwrap();

    assert_eq!(dir, snapshot(cache.path(), &server.sha));
    for name in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "source.spm",
        "target.spm",
        "vocab.json",
        "tokenizer_config.json",
    ] {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            files[name],
            "{name}"
        );
    }
    // Only what the translator needs: safetensors wins over the pickle, no README / TF weights.
    for name in ["pytorch_model.bin", "README.md", "tf_model.h5"] {
        assert!(!dir.join(name).exists(), "{name} should not be fetched");
    }
    // The revision is recorded for offline use, in Python's layout (refs/refs/pr/4).
    let ref_file = cache
        .path()
        .join("models--Helsinki-NLP--opus-mt-fr-en/refs/refs/pr/4");
    assert_eq!(std::fs::read_to_string(ref_file).unwrap(), server.sha);
    // Files were requested by sha, never by the moving revision.
    let requests = server.requests.lock().unwrap().clone();
    let resolves: Vec<_> = requests
        .iter()
        .filter(|r| r.contains("/resolve/"))
        .collect();
    assert!(!resolves.is_empty());
    assert!(
        resolves.iter().all(|r| r.contains(&server.sha)),
        "{requests:?}"
    );
    assert!(
        requests[0].contains("/api/models/Helsinki-NLP/opus-mt-fr-en/revision/refs%2Fpr%2F4"),
        "{requests:?}"
    );

    // A second online call downloads nothing new.
    let before = server.requests.lock().unwrap().len();
    assert_eq!(
        fetch_model(&spec, &options(&server.endpoint, cache.path()), &mut ()).unwrap(),
        dir
    );
    assert_eq!(
        server.requests.lock().unwrap().len(),
        before + 1,
        "only the info request"
    );

    // Offline, with the server gone: found through refs/ in the cache.
    drop(server);
    assert_eq!(
        fetch_model(&spec, &offline(cache.path()), &mut ()).unwrap(),
        dir
    );
    // Online but unreachable: falls back to the complete cached snapshot.
    assert_eq!(
        fetch_model(
            &spec,
            &options(&closed_endpoint().endpoint, cache.path()),
            &mut ()
        )
        .unwrap(),
        dir
    );
}

#[test]
fn short_name_is_the_pinned_default() {
    let spec = ModelSpec::parse("opus-mt-fr-en").unwrap();
    assert_eq!(
        spec,
        ModelSpec {
            repo: REPO.into(),
            revision: "refs/pr/4".into()
        }
    );
    assert_eq!(ModelSpec::default_model().unwrap(), spec);
    // The full repo id of a catalogued model gets the same pin; an explicit revision wins.
    assert_eq!(ModelSpec::parse(REPO).unwrap(), spec);
    assert_eq!(
        ModelSpec::parse("opus-mt-fr-en@main").unwrap().revision,
        "main"
    );
    let big = ModelSpec::parse("opus-mt-tc-big-fr-en").unwrap();
    assert_eq!(big.repo, "Helsinki-NLP/opus-mt-tc-big-fr-en");
    // Other repos default to main, as on the Hub.
    assert_eq!(
        ModelSpec::parse("someone/marian-x").unwrap().revision,
        "main"
    );
    assert_eq!(spec.to_string(), "Helsinki-NLP/opus-mt-fr-en@refs/pr/4");

    let cat = catalogue().unwrap();
    assert_eq!(cat.default, "opus-mt-fr-en");
    assert!(cat
        .models
        .iter()
        .all(|m| !m.license.is_empty() && m.approx_bytes() > 0));
}

#[test]
fn bad_specs_are_errors_not_panics() {
    for bad in [
        "",
        "@main",
        "no-such-model",
        "a/b/c",
        "../etc@main",
        "org/name@../../x",
        "org/name@",
        "org/na me",
    ] {
        let err = ModelSpec::parse(bad).expect_err(bad);
        assert!(!err.to_string().is_empty());
    }
    let err = ModelSpec::parse("no-such-model").unwrap_err().to_string();
    assert!(err.contains("opus-mt-fr-en"), "lists known names: {err}");
}

#[test]
fn falls_back_to_pytorch_model_bin() {
    let cache = tempfile::tempdir().unwrap();
    let files = fixture(false);
    let server = serve_files(REPO, "main", files.clone());
    let spec = ModelSpec::parse("Helsinki-NLP/opus-mt-fr-en@main").unwrap();

    let dir = fetch_model(&spec, &options(&server.endpoint, cache.path()), &mut ()).unwrap();

    assert_eq!(dir, snapshot(cache.path(), &server.sha));
    assert_eq!(
        std::fs::read(dir.join("pytorch_model.bin")).unwrap(),
        files["pytorch_model.bin"]
    );
    assert!(!dir.join("model.safetensors").exists());
    assert_eq!(
        traduire::marian::weights_file(&dir).unwrap(),
        dir.join("pytorch_model.bin")
    );
}

#[test]
fn serves_a_fixture_dir_with_progress_and_token() {
    let model = tempfile::tempdir().unwrap();
    for (name, data) in fixture(true) {
        std::fs::write(model.path().join(name), data).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let (endpoint, server) = serve_dir(REPO, "refs/pr/4", model.path());
    let spec = ModelSpec::parse("opus-mt-fr-en").unwrap();
    let opts = FetchOptions {
        token: Some("hf_test".into()),
        ..options(&endpoint, cache.path())
    };

    let mut progress = Recorder::default();
    let dir = ModelSource::Hub(spec)
        .resolve(&opts, &mut progress)
        .unwrap();
    // Every downloaded file is started (hf-hub may announce a file twice: once per attempt
    // and once more for the transfer itself) and finished, and every byte is reported once.
    let fetched = [
        "config.json",
        "source.spm",
        "target.spm",
        "vocab.json",
        "tokenizer_config.json",
        "model.safetensors",
        "generation_config.json",
    ];
    let mut started: Vec<&str> = progress.started.iter().map(|(f, _)| f.as_str()).collect();
    started.sort();
    started.dedup();
    let mut want = fetched.to_vec();
    want.sort();
    assert_eq!(started, want);
    let total: u64 = fetched.iter().map(|f| fixture(true)[*f].len() as u64).sum();
    assert_eq!(progress.bytes, total);
    assert!(progress.finished >= fetched.len());

    assert_eq!(dir, snapshot(cache.path(), &server.sha));
    assert_eq!(
        std::fs::read(dir.join("vocab.json")).unwrap(),
        b"fake vocab.json contents"
    );
    let auth = server.auth_headers.lock().unwrap().clone();
    assert!(
        !auth.is_empty() && auth.iter().all(|a| a == "Bearer hf_test"),
        "{auth:?}"
    );
}

#[test]
fn offline_with_empty_cache_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let spec = ModelSpec::parse("opus-mt-fr-en").unwrap();
    let err = format!(
        "{:#}",
        fetch_model(&spec, &offline(cache.path()), &mut ()).unwrap_err()
    );
    assert_one_line_without_flags(&err);
    assert!(
        err.starts_with(
            "offline mode: Helsinki-NLP/opus-mt-fr-en@refs/pr/4 is not in the Hugging Face cache"
        ),
        "{err}"
    );
}

#[test]
fn unreachable_endpoint_is_a_two_line_error() {
    let cache = tempfile::tempdir().unwrap();
    let closed = closed_endpoint();
    let endpoint = &closed.endpoint;
    let spec = ModelSpec::parse("opus-mt-fr-en").unwrap();
    let err = format!(
        "{:#}",
        fetch_model(&spec, &options(endpoint, cache.path()), &mut ()).unwrap_err()
    );
    assert_one_line_without_flags(&err);
    assert!(
        err.starts_with(&format!(
            "cannot reach {endpoint} to download Helsinki-NLP/opus-mt-fr-en: "
        )),
        "{err}"
    );
}

#[test]
fn missing_repo_or_revision_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let server = serve_files(REPO, "refs/pr/4", fixture(true));
    let opts = options(&server.endpoint, cache.path());

    let err = format!(
        "{:#}",
        fetch_model(&ModelSpec::parse("Nobody/nothing").unwrap(), &opts, &mut ()).unwrap_err()
    );
    assert_one_line_without_flags(&err);
    assert!(
        err.contains("Nobody/nothing@main") && err.contains("HTTP 404"),
        "{err}"
    );

    let err = format!(
        "{:#}",
        fetch_model(
            &ModelSpec::parse("opus-mt-fr-en@v9").unwrap(),
            &opts,
            &mut ()
        )
        .unwrap_err()
    );
    assert_one_line_without_flags(&err);
    assert!(
        err.contains("opus-mt-fr-en@v9") && err.contains("HTTP 404"),
        "{err}"
    );
}

#[test]
fn repo_without_marian_files_is_an_error() {
    let cache = tempfile::tempdir().unwrap();
    let mut files = fixture(true);
    files.remove("source.spm");
    let server = serve_files(REPO, "refs/pr/4", files);
    let err = format!(
        "{:#}",
        fetch_model(
            &ModelSpec::parse("opus-mt-fr-en").unwrap(),
            &options(&server.endpoint, cache.path()),
            &mut ()
        )
        .unwrap_err()
    );
    assert!(err.contains("source.spm"), "{err}");
}

#[test]
fn model_dir_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in fixture(true) {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    let source = ModelSource::Dir(dir.path().to_path_buf());
    assert_eq!(
        source.resolve(&FetchOptions::default(), &mut ()).unwrap(),
        dir.path()
    );

    std::fs::remove_file(dir.path().join("target.spm")).unwrap();
    let err = format!("{:#}", validate_model_dir(dir.path()).unwrap_err());
    assert!(
        err.contains(&dir.path().display().to_string()) && err.contains("has no target.spm"),
        "{err}"
    );
    assert_one_line_without_flags(&err);

    let missing = dir.path().join("nope");
    let err = format!(
        "{:#}",
        ModelSource::Dir(missing.clone())
            .resolve(&FetchOptions::default(), &mut ())
            .unwrap_err()
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");

    // Weights: either file will do, neither is an error.
    std::fs::write(dir.path().join("target.spm"), b"x").unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    validate_model_dir(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("pytorch_model.bin")).unwrap();
    let err = format!("{:#}", validate_model_dir(dir.path()).unwrap_err());
    assert!(err.contains("model.safetensors"), "{err}");
}

/// The cache is laid out as Python's huggingface_hub lays it out, so both can share it:
/// content-addressed blobs, a snapshot folder of relative links named by the commit sha, and a
/// ref file for the revision (none for the sha itself).
#[test]
fn cache_layout_is_huggingface_hubs() {
    let cache = tempfile::tempdir().unwrap();
    let spec = ModelSpec::parse("opus-mt-fr-en").unwrap();
    let server = serve_files(REPO, "refs/pr/4", fixture(true));
    let dir = fetch_model(&spec, &options(&server.endpoint, cache.path()), &mut ()).unwrap();
    let repo = cache.path().join("models--Helsinki-NLP--opus-mt-fr-en");
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/refs/pr/4")).unwrap(),
        server.sha
    );
    assert!(!repo.join("refs").join(&server.sha).exists());
    let mut linked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let target = std::fs::read_link(&path).unwrap();
        let blob = target.strip_prefix("../../blobs").unwrap();
        let name = blob.to_str().unwrap();
        assert!(
            (name.len() == 40 || name.len() == 64) && name.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        assert_eq!(
            std::fs::read(repo.join("blobs").join(blob)).unwrap(),
            fixture(true)[path.file_name().unwrap().to_str().unwrap()]
        );
        linked.push(path.file_name().unwrap().to_str().unwrap().to_string());
    }
    linked.sort();
    assert_eq!(
        linked,
        [
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "source.spm",
            "target.spm",
            "tokenizer_config.json",
            "vocab.json"
        ]
    );
}
