//! `traduire eval` end to end, against numbers recorded from sacreBLEU 2.6.0
//! (`scripts/make_eval_fixtures.py`, `scripts/make_bootstrap_fixtures.py`).
//!
//! The translations come from the tiny random test checkpoints: they are nonsense, and their
//! scores near zero say nothing about translation quality. They prove that `eval` scores what
//! it translates exactly as sacreBLEU would.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{assert_failure, assert_success, run, stdout, traduire};
use serde_json::Value;

fn corpus(name: &str) -> PathBuf {
    common::root().join("scripts/corpus").join(name)
}

fn fixture() -> Value {
    let path = common::fixtures().join("eval/sacrebleu.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn case(name: &str) -> Value {
    fixture()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn eval(args: &[&str]) -> std::process::Output {
    run(traduire().arg("eval").args(args), b"")
}

fn json_eval(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = eval(&all);
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// Checks a system's four metrics against a recorded sacreBLEU case: the printed lines and
/// signatures exactly, the scores to the bit.
fn assert_matches_case(system: &Value, case: &Value) {
    let metrics = system["metrics"].as_array().unwrap();
    let names: Vec<&str> = metrics
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["BLEU", "chrF2", "chrF2++", "TER"]);
    for (metric, key) in metrics.iter().zip(["bleu", "chrf", "chrf++", "ter"]) {
        let want = &case[key];
        assert_eq!(metric["formatted"], want["formatted"], "{key}");
        assert_eq!(metric["signature"], want["signature"], "{key}");
        let score: f64 = want["score_repr"].as_str().unwrap().parse().unwrap();
        assert_eq!(metric["score"].as_f64().unwrap(), score, "{key}");
    }
}

#[test]
fn scoring_a_hypothesis_file_matches_sacrebleu() {
    let hyp = common::fixtures().join("eval/tiny-swish.greedy.en");
    let reference = corpus("en.txt");
    let args = [
        "--hyp",
        hyp.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
    ];
    let report = json_eval(&args);
    assert_eq!(report["sacrebleu_version"], "2.6.0");
    assert_eq!(report["segments"], 124);
    let systems = report["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 1);
    assert!(systems[0].get("speed").is_none(), "no model, no speed");
    assert_matches_case(&systems[0], &case("tiny-swish-greedy"));

    // The text report prints sacreBLEU's lines and signatures.
    let out = eval(&args);
    assert_success(&out);
    let text = stdout(&out);
    let want = case("tiny-swish-greedy");
    for key in ["bleu", "chrf", "chrf++", "ter"] {
        assert!(
            text.contains(want[key]["formatted"].as_str().unwrap()),
            "{key}:\n{text}"
        );
        assert!(
            text.contains(want[key]["signature"].as_str().unwrap()),
            "{key}:\n{text}"
        );
    }
}

/// Several references, and the tokenizer and case options, on recorded cases whose texts are
/// one line each.
#[test]
fn options_and_several_references_match_sacrebleu() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "fr-source-vs-en-3refs",
        "tiny-swish-greedy-first-40-intl-lc",
    ] {
        let want = case(name);
        let hyp = dir.path().join(format!("{name}.hyp"));
        write_lines(&hyp, &strings(&want["hyps"]));
        let mut args = vec!["--hyp".to_string(), hyp.display().to_string()];
        let options = &want["options"];
        args.extend([
            "--tokenize".into(),
            options["tokenize"].as_str().unwrap().into(),
        ]);
        if options["lowercase"].as_bool().unwrap() {
            args.push("--lowercase".into());
        }
        let refs = want["refs"].as_array().unwrap();
        for (r, stream) in refs.iter().enumerate() {
            let path = dir.path().join(format!("{name}.ref{r}"));
            write_lines(&path, &strings(stream));
            args.extend(["--ref".to_string(), path.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let report = json_eval(&args);
        let metrics = report["systems"][0]["metrics"].as_array().unwrap();
        let nrefs = format!("nrefs:{}|", refs.len());
        for (metric, key) in metrics.iter().zip(["bleu", "chrf", "chrf++", "ter"]) {
            if want.get(key).is_none() {
                continue;
            }
            assert_eq!(metric["formatted"], want[key]["formatted"], "{name} {key}");
            assert_eq!(metric["signature"], want[key]["signature"], "{name} {key}");
            assert!(metric["signature"].as_str().unwrap().starts_with(&nrefs));
        }
        if options["lowercase"].as_bool().unwrap() {
            let signature = metrics[0]["signature"].as_str().unwrap();
            assert!(signature.contains("|case:lc|") && signature.contains("|tok:intl|"));
        }
    }
}

#[test]
fn mismatched_line_counts_name_both_files_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.en");
    write_lines(&short, &["One.".to_string(), "Two.".to_string()]);
    let reference = corpus("en.txt");
    let err = assert_failure(&eval(&[
        "--hyp",
        short.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
    ]));
    assert!(err.contains("short.en has 2 lines"), "{err}");
    assert!(err.contains("en.txt has 124"), "{err}");

    // A second reference of the wrong length is refused before any model is looked for.
    let source = corpus("fr.txt");
    let err = assert_failure(&eval(&[
        "--src",
        source.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
        "--ref",
        short.to_str().unwrap(),
        "--model",
        "no-such/model",
    ]));
    assert!(err.contains("short.en has 2 lines"), "{err}");
    assert!(err.contains("124"), "{err}");

    let missing = dir.path().join("missing.en");
    let err = assert_failure(&eval(&[
        "--hyp",
        missing.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
    ]));
    assert!(err.contains("missing.en"), "{err}");

    let binary = dir.path().join("binary.en");
    std::fs::write(&binary, b"ok\n\xff\xfe\n").unwrap();
    let err = assert_failure(&eval(&[
        "--hyp",
        binary.to_str().unwrap(),
        "--ref",
        binary.to_str().unwrap(),
    ]));
    assert!(err.contains("binary.en:2"), "{err}");
}

#[test]
fn several_settings_need_compare_and_hyp_takes_no_settings() {
    let reference = corpus("en.txt");
    let source = corpus("fr.txt");
    let model = common::model_dir("tiny-swish");
    let err = assert_failure(&eval(&[
        "--src",
        source.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
        "--model-dir",
        model.to_str().unwrap(),
        "--beams",
        "1,2",
    ]));
    assert!(err.contains("--compare"), "{err}");
    let err = assert_failure(&eval(&[
        "--src",
        source.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
        "--model-dir",
        model.to_str().unwrap(),
        "--dtype",
        "f32,nope",
    ]));
    assert!(err.contains("nope"), "{err}");
}

/// Translating the test set with the tiny model gives exactly the committed greedy output
/// (`traduire translate --sentences`), so the scores are sacreBLEU's on that output.
#[test]
fn translating_and_scoring_with_the_tiny_model() {
    let source = corpus("fr.txt");
    let reference = corpus("en.txt");
    let model = common::model_dir("tiny-swish");
    let report = json_eval(&[
        "--src",
        source.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
        "--model-dir",
        model.to_str().unwrap(),
        "--beams",
        "1",
        "--max-new-tokens",
        "40",
        "-q",
    ]);
    let system = &report["systems"][0];
    assert_matches_case(system, &case("tiny-swish-greedy"));
    let speed = &system["speed"];
    assert_eq!(speed["sentences"], 124);
    assert!(speed["target_tokens"].as_u64().unwrap() > 124);
    assert!(speed["target_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(system["setting"]["beams"], 1);
    assert_eq!(system["setting"]["dtype"], "f32");
}

/// `--compare` runs every combination and tests each against the first row with the paired
/// bootstrap; the f32 greedy row is the same run as a plain `eval`.
#[test]
fn compare_runs_every_setting_with_p_values() {
    let source = corpus("fr.txt");
    let reference = corpus("en.txt");
    let model = common::model_dir("tiny-swish");
    let common_args = [
        "--src",
        source.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
        "--model-dir",
        model.to_str().unwrap(),
        "--max-new-tokens",
        "24",
        "-q",
    ];
    let mut args = common_args.to_vec();
    args.extend([
        "--compare",
        "--dtype",
        "f32,int8",
        "--beams",
        "1,2",
        "--bootstrap-samples",
        "200",
    ]);
    let report = json_eval(&args);
    let systems = report["systems"].as_array().unwrap();
    let labels: Vec<(String, u64)> = systems
        .iter()
        .map(|s| {
            (
                s["setting"]["dtype"].as_str().unwrap().to_string(),
                s["setting"]["beams"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("f32".into(), 1),
            ("f32".into(), 2),
            ("int8".into(), 1),
            ("int8".into(), 2)
        ]
    );
    assert!(systems[0]["compared_to_first"].is_null());
    for system in &systems[1..] {
        let comparisons = system["compared_to_first"].as_array().unwrap();
        let names: Vec<&str> = comparisons
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["BLEU", "chrF2"]);
        for (c, m) in comparisons
            .iter()
            .zip(system["metrics"].as_array().unwrap())
        {
            let p = c["p_value"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{c}");
            let baseline = systems[0]["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["name"] == m["name"])
                .unwrap();
            let delta = m["score"].as_f64().unwrap() - baseline["score"].as_f64().unwrap();
            assert_eq!(c["delta"].as_f64().unwrap(), delta);
        }
    }
    assert_eq!(report["bootstrap"]["samples"], 200);

    let mut single = common_args.to_vec();
    single.extend(["--beams", "1"]);
    let alone = json_eval(&single);
    assert_eq!(alone["systems"][0]["metrics"], systems[0]["metrics"]);

    // The table: one row per setting, the first as the baseline.
    args.retain(|a| *a != "--json");
    let out = eval(&args);
    assert_success(&out);
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 5, "header and four settings:\n{text}");
    assert!(rows[1].contains("baseline"), "{text}");
    assert!(text.contains("paired bootstrap"), "{text}");
}

/// sacreBLEU's `--paired-bs` on hypothesis files: the same p-values, means and confidence
/// intervals (recorded from sacreBLEU's own PairedTest by `scripts/make_bootstrap_fixtures.py`).
#[test]
fn paired_bootstrap_on_hypothesis_files_matches_sacrebleu() {
    let refs: Vec<String> = std::fs::read_to_string(corpus("en.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // The fixture script's `damage`: every `every`-th word of the corpus dropped, moved one
    // place left or replaced by "the".
    let damage = |every: usize, mode: &str| -> Vec<String> {
        let mut k = 0;
        refs.iter()
            .map(|line| {
                let mut kept: Vec<&str> = Vec::new();
                for w in line.split_whitespace() {
                    k += 1;
                    if k % every != 0 {
                        kept.push(w);
                    } else if mode == "drop" {
                    } else if mode == "swap" && !kept.is_empty() {
                        kept.insert(kept.len() - 1, w);
                    } else if mode == "replace" {
                        kept.push("the");
                    } else {
                        kept.push(w);
                    }
                }
                kept.join(" ")
            })
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let systems = [
        ("baseline", damage(7, "drop")),
        ("swapped", damage(8, "swap")),
        ("replaced", damage(7, "replace")),
        ("dropped", damage(8, "drop")),
    ];
    let reference = corpus("en.txt");
    let mut args = vec!["--ref".to_string(), reference.display().to_string()];
    for (name, lines) in &systems {
        let path = dir.path().join(format!("{name}.en"));
        write_lines(&path, lines);
        args.extend(["--hyp".to_string(), path.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = json_eval(&args);

    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("eval/bootstrap.json")).unwrap(),
    )
    .unwrap();
    let case = recorded["paired"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bleu-chrf-ter-124")
        .unwrap();
    assert_eq!(
        (case["seed"].as_u64(), case["n_samples"].as_u64()),
        (Some(12345), Some(1000))
    );
    let ours = report["systems"].as_array().unwrap();
    for metric in case["metrics"].as_array().unwrap().iter().take(2) {
        let name = metric["name"].as_str().unwrap();
        let name = if name == "chrF" { "chrF2" } else { name };
        for (system, want) in ours[1..].iter().zip(metric["systems"].as_array().unwrap()) {
            assert!(system["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{}.en", want["name"].as_str().unwrap())));
            let got = system["compared_to_first"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .unwrap();
            for key in ["p_value", "mean", "ci"] {
                let want: f64 = want[key].as_str().unwrap().parse().unwrap();
                let got = got[key].as_f64().unwrap();
                // sacreBLEU prints p to 4 places and mean/CI to 1 or 2: agree well beyond that.
                assert!((got - want).abs() < 1e-9, "{name} {key}: {got} vs {want}");
            }
        }
    }
}
