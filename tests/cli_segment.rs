//! Runs the real `traduire segment` binary on the seed article and on bad inputs.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::cli::{run, stderr, stdout, traduire};

/// The seed article (the one copy, in `seeds/`).
const SEED: &str = include_str!("../seeds/000_63993c6b9a9c911d.txt");

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("traduire-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn segment(args: &[&str], stdin: &[u8]) -> Output {
    run(traduire().arg("segment").args(args), stdin)
}

#[test]
fn seed_article_as_text() {
    let dir = scratch("seed");
    let path = dir.join("seed.txt");
    std::fs::write(&path, SEED).expect("write seed");
    let out = segment(&[path.to_str().expect("path")], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let paragraphs: Vec<&str> = text.trim_end().split("\n\n").collect();
    assert_eq!(paragraphs.len(), 15);
    assert!(paragraphs[0].starts_with("Poutine : la Russie"));
    assert!(text.contains("de chacun. », Il Souligné.\n"));
}

#[test]
fn seed_article_as_jsonl_from_stdin() {
    let out = segment(&["--format", "jsonl"], SEED.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect();
    assert_eq!(records.len(), 15);
    for record in &records {
        let (start, end) = (
            record["start"].as_u64().unwrap_or(0),
            record["end"].as_u64().unwrap_or(0),
        );
        assert_eq!(record["doc"], "-");
        assert_eq!(record["sentence"], 0);
        assert_eq!(
            &SEED[start as usize..end as usize],
            record["text"].as_str().unwrap_or("")
        );
    }
    assert_eq!(records[14]["paragraph"], 14);
}

#[test]
fn directory_inputs_are_sorted_and_separated() {
    let dir = scratch("dir");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("b.txt"), "Deux. Trois.").expect("write");
    std::fs::write(dir.join("sub/a.md"), "Quatre.").expect("write");
    std::fs::write(dir.join("a.txt"), "Un.").expect("write");
    std::fs::write(dir.join("notes.json"), "{}").expect("write");
    let out = segment(&[dir.to_str().expect("path")], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Un.\n\nDeux.\nTrois.\n\nQuatre.\n");
}

#[test]
fn missing_file_is_named() {
    let out = segment(&["/nonexistent/article.txt"], b"");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/article.txt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn directory_without_text_files_is_an_error() {
    let dir = scratch("empty-dir");
    std::fs::write(dir.join("data.bin"), [0u8, 1, 2]).expect("write");
    let out = segment(&[dir.to_str().expect("path")], b"");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(dir.to_str().expect("path")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_utf8_reports_offset_and_lossy_replaces() {
    let dir = scratch("utf8");
    let path = dir.join("bad.txt");
    let mut bytes = b"\xEF\xBB\xBFLe texte. Il ".to_vec();
    bytes.extend_from_slice(b"\xFF est mauvais.");
    std::fs::write(&path, &bytes).expect("write");
    let name = path.to_str().expect("path");
    let out = segment(&[name], b"");
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains(name), "{message}");
    assert!(message.contains("invalid UTF-8 at byte 16"), "{message}");
    assert!(message.contains("--lossy"), "{message}");

    let out = segment(&["--lossy", name], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Le texte.\nIl \u{FFFD} est mauvais.\n");
}

#[test]
fn empty_and_binary_inputs() {
    let out = segment(&[], b"");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let out = segment(&["--format", "jsonl"], b"  \n\n \t\n");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let out = segment(&[], b"\0\0abc.\0 D\0\n\0");
    assert!(out.status.success(), "{}", stderr(&out));
}
