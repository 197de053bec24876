//! `traduire bench` on the tiny random checkpoint (speed itself is never asserted: it goes to
//! the README from real runs): defaults, forced lengths, alignments, the sweep's table, JSON
//! and chart, and option errors before any work.

mod common;

use common::cli::{assert_failure, assert_success, run, stdout, traduire};
use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    let mut cmd = traduire();
    cmd.arg("bench").args(args);
    run(&mut cmd, b"")
}

fn model() -> String {
    common::model_dir("tiny-swish").display().to_string()
}

#[test]
fn one_run_reports_its_lengths_and_alignments() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("workload.txt");
    std::fs::write(&workload, "Le chat dort.\nIl pleut sur Paris.\n\nOui.\n").unwrap();
    let workload = workload.to_str().unwrap();
    let out = bench(&[
        "--model-dir",
        &model,
        "--workload",
        workload,
        "--repeat",
        "1",
        "--json",
    ]);
    assert_success(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // A real model folder: lengths are the model's own unless forced.
    assert_eq!(report["force_length"], Value::Null);
    assert_eq!(report["alignments"], false);
    assert_eq!(report["sentences"], 3);
    let forced = bench(&[
        "--model-dir",
        &model,
        "--repeat",
        "1",
        "--workload",
        workload,
        "--force-length",
        "1.5",
        "--alignments",
    ]);
    assert_success(&forced);
    let table = stdout(&forced);
    assert!(table.contains("forced:"), "{table}");
    assert!(table.contains("round(1.5 x"), "{table}");
    assert!(table.contains(", alignments"), "{table}");
    assert!(table.contains("target tokens/s"), "{table}");
}

#[test]
fn the_sweep_prints_one_table_and_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("sweep.svg");
    let model = model();
    let args = [
        "--model-dir",
        &model,
        "--sweep",
        "--sweep-batches",
        "1,2,8",
        "--sweep-sentences",
        "6",
        "--sweep-dtypes",
        "f32,int8",
        "--sweep-threads",
        "1,2",
        "--repeat",
        "1",
        "--force-length",
        "1.0",
        "--chart",
        chart.to_str().unwrap(),
    ];
    let out = bench(&args);
    assert_success(&out);
    let table = stdout(&out);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| f32") || l.starts_with("| int8"))
        .collect();
    assert_eq!(rows.len(), 2 * 2 * 3, "{table}");
    assert!(rows[0].starts_with("| f32 | 1 | 1 | 6 |"), "{table}");
    // A batch larger than the sentences asked for runs one full batch.
    assert!(rows[2].starts_with("| f32 | 1 | 8 | 8 |"), "{table}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    // The chart is well-formed XML with one line per precision and thread count.
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut polylines = 0;
    let mut texts = String::new();
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == b"polyline" =>
            {
                polylines += 1
            }
            quick_xml::events::Event::Text(t) => texts.push_str(&t.decode().unwrap()),
            _ => {}
        }
    }
    for label in [
        "f32, 1 threads",
        "int8, 2 threads",
        "target tokens/s",
        "batch size",
    ] {
        assert!(texts.contains(label), "{label} missing from the chart");
    }
    // Per line: tokens/s, p50 and p95 (dashed lines are drawn as several segments), plus the
    // legend's samples.
    assert!(polylines >= 4 * 3, "{polylines} polylines");

    let json = bench(&[&args[..], &["--json"]].concat());
    assert_success(&json);
    let points: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(points.as_array().unwrap().len(), 12);
    assert_eq!(points[11]["precision"], "int8");
    assert_eq!(points[11]["threads"], 2);
    assert_eq!(points[11]["batch"], 8);
}

#[test]
fn bad_values_fail_before_any_work() {
    let model = model();
    for args in [
        &["--sweep", "--sweep-batches", "0"][..],
        &["--sweep", "--sweep-batches", "1,100000"],
        &["--sweep-batches", "4"],
        &["--sweep", "--sweep-threads", "0"],
        &["--sweep", "--sweep-dtypes", "bf16"],
        &["--force-length", "nan"],
        &["--force-length", "0"],
        &["--force-length", "-1"],
        &["--sweep", "--max-batch-sentences", "4"],
        &["--architecture", "opus-mt-tc-big-fr-en"],
    ] {
        let out = bench(&[&["--model-dir", &model][..], args].concat());
        let err = assert_failure(&out);
        assert!(err.starts_with("error"), "{args:?}: {err}");
    }
}
