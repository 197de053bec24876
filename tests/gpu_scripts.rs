//! The GPU check runs where there is no Rust toolchain and no network: `scripts/gpu_check.sh`
//! must never build or download anything, and the bundle `scripts/gpu_bundle.sh` builds must
//! stay under its size limit. (The check itself runs on GPU machines; CI runs its CPU steps
//! from a bundle in a clean environment, see `.ci/run`.)

mod common;

/// Commands that build or fetch: none may run on the GPU machine.
const FORBIDDEN: [&str; 12] = [
    "cargo", "rustc", "rustup", "pip", "pip3", "curl", "wget", "apt-get", "apt", "nvcc", "make",
    "git",
];

/// The words of `line` that are command names (outside comments and strings' prose this is
/// conservative: every word counts).
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
}

#[test]
fn the_gpu_check_never_builds_or_downloads() {
    let script = std::fs::read_to_string(common::root().join("scripts/gpu_check.sh")).unwrap();
    let mut code_lines = 0;
    for (number, line) in script.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with('#') || code.is_empty() {
            continue;
        }
        code_lines += 1;
        for word in words(code) {
            assert!(
                !FORBIDDEN.contains(&word),
                "scripts/gpu_check.sh:{}: `{word}` would build or download: {line}",
                number + 1
            );
        }
        for python_fetch in [
            "urllib",
            "requests",
            "http.client",
            "hf_hub_download",
            "from_pretrained",
        ] {
            assert!(
                !code.contains(python_fetch),
                "scripts/gpu_check.sh:{}: {python_fetch}",
                number + 1
            );
        }
    }
    assert!(code_lines > 50, "{code_lines} lines of code");
}

/// The limit is enforced by the bundle script itself; a bundle already built here is checked
/// too (CI builds one before this runs only when asked to; otherwise this checks the script).
#[test]
fn the_bundle_stays_under_its_limit() {
    let script = std::fs::read_to_string(common::root().join("scripts/gpu_bundle.sh")).unwrap();
    assert!(
        script.contains("limit_mib=60"),
        "the bundle script enforces 60 MiB"
    );
    let bundle = common::root().join("target/gpu-bundle");
    let Ok(entries) = std::fs::read_to_string(bundle.join("MANIFEST.json")) else {
        eprintln!("no bundle in target/gpu-bundle: only the script's limit was checked");
        return;
    };
    let manifest: serde_json::Value = serde_json::from_str(&entries).unwrap();
    let bytes = manifest["bytes"].as_u64().unwrap();
    assert!(bytes <= 60 << 20, "the bundle holds {bytes} bytes");
    // Every file the manifest lists is there, with its size.
    for file in manifest["files"].as_array().unwrap() {
        let path = bundle.join(file["path"].as_str().unwrap());
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, file["bytes"].as_u64().unwrap(), "{}", path.display());
    }
}
