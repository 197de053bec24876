//! The French segmentation test set: every case must come out exactly as expected, and the
//! boundary precision, recall and F1 over the whole set are printed.

use std::collections::BTreeSet;

use traduire::segment::split_sentences;

const CASES: &str = include_str!("fixtures/segment/cases.txt");

/// Expected sentences of each case; the input is them joined by a single space.
fn cases() -> Vec<Vec<&'static str>> {
    let mut cases = Vec::new();
    let mut current = Vec::new();
    for line in CASES.lines() {
        if line == "===" {
            if !current.is_empty() {
                cases.push(std::mem::take(&mut current));
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            current.push(line);
        }
    }
    if !current.is_empty() {
        cases.push(current);
    }
    cases
}

/// Inner boundaries: the offsets where one sentence ends and the next one starts.
fn boundaries(spans: &[std::ops::Range<usize>]) -> BTreeSet<usize> {
    spans.iter().skip(1).map(|s| s.start).collect()
}

#[test]
fn segmentation_cases() {
    let cases = cases();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let (mut true_pos, mut predicted, mut expected) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for sentences in &cases {
        let input = sentences.join(" ");
        let mut gold = Vec::new();
        let mut pos = 0;
        for s in sentences {
            gold.push(pos..pos + s.len());
            pos += s.len() + 1;
        }
        let got = split_sentences(&input);
        let (gold_b, got_b) = (boundaries(&gold), boundaries(&got));
        true_pos += gold_b.intersection(&got_b).count();
        predicted += got_b.len();
        expected += gold_b.len();
        let got_text: Vec<&str> = got.iter().map(|r| &input[r.clone()]).collect();
        if got_text != *sentences {
            failures.push(format!("expected {sentences:#?}\n     got {got_text:#?}"));
        }
    }
    let precision = true_pos as f64 / predicted.max(1) as f64;
    let recall = true_pos as f64 / expected.max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    println!(
        "{} cases, {expected} boundaries: precision {precision:.4}, recall {recall:.4}, F1 {f1:.4}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
