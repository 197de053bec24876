//! The metric interface shared by traduire's evaluation metrics, ports of sacreBLEU 2.6.0
//! (Apache-2.0) that reproduce its scores exactly:
//!
//! - `tokenize`: BLEU's tokenizers (`none`, `13a`, `intl`, `char`), TER's tercom
//!   normalisation, and the Python string primitives they rest on;
//! - `bleu`: BLEU with sacreBLEU's smoothings and multiple references;
//! - `chrf`: chrF and chrF++;
//! - `ter`: TER with tercom's block shifts;
//! - `metric` (this module): the [`Metric`] trait, statistics sums, the corpus score, and
//!   Python-compatible number formatting.
//!
//! Like sacreBLEU, every metric reduces a segment to a row of sufficient statistics; a corpus
//! score is computed from the column sums, which is what paired bootstrap resampling needs.

/// The sacreBLEU version whose numbers these metrics reproduce (the signatures' `version:`).
pub const VERSION: &str = "2.6.0";

/// A corpus-level metric computed from per-sentence sufficient statistics (as sacreBLEU's `Metric`).
pub trait Metric {
    /// sacreBLEU's name: "BLEU", "chrF2", "chrF2++", "TER".
    fn name(&self) -> String;
    /// Sufficient statistics of one segment (sacreBLEU `_extract_corpus_statistics` row).
    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64>;
    /// The score (0-100 scale as sacreBLEU's `.score`) from statistics summed over segments.
    fn score_from_stats(&self, stats: &[f64]) -> f64;
    /// The formatted result from summed statistics (sacreBLEU `str(score)` without the signature).
    fn format_from_stats(&self, stats: &[f64]) -> String;
    /// sacreBLEU's signature for `nrefs` references.
    fn signature(&self, nrefs: usize) -> String;
}

/// Sums per-segment statistics column by column, in segment order, in f64.
///
/// Mirrors sacreBLEU's `sum_of_lists` (additions from zero in segment order; the statistics
/// are whole numbers except TER's averaged reference lengths). Rows shorter than the widest
/// one count as zeros there.
pub fn sum_stats(rows: &[Vec<f64>]) -> Vec<f64> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut total = vec![0.0; width];
    for row in rows {
        for (sum, &x) in total.iter_mut().zip(row) {
            *sum += x;
        }
    }
    total
}

/// The corpus score: all segments' statistics summed, then scored. `refs[r][i]` is reference stream r, segment i (sacreBLEU's layout). Errors (as `String`) when a reference stream's length differs from the hypotheses'.
///
/// Also errors when there is no reference stream or no segment, which sacreBLEU cannot score
/// either.
pub fn corpus_stats(
    metric: &dyn Metric,
    hyps: &[String],
    refs: &[Vec<String>],
) -> Result<Vec<f64>, String> {
    if refs.is_empty() {
        return Err(format!("{}: no reference stream given", metric.name()));
    }
    for (r, stream) in refs.iter().enumerate() {
        if stream.len() != hyps.len() {
            return Err(format!(
                "{}: reference stream {} has {} segments but there are {} hypotheses",
                metric.name(),
                r + 1,
                stream.len(),
                hyps.len()
            ));
        }
    }
    if hyps.is_empty() {
        return Err(format!("{}: no segment to score", metric.name()));
    }
    let rows: Vec<Vec<f64>> = hyps
        .iter()
        .enumerate()
        .map(|(i, hyp)| {
            let segment_refs: Vec<&str> = refs.iter().map(|stream| stream[i].as_str()).collect();
            metric.segment_stats(hyp, &segment_refs)
        })
        .collect();
    Ok(sum_stats(&rows))
}

/// Column `i` of a statistics row, 0 when missing (scoring never panics on a short row).
pub(crate) fn stat(stats: &[f64], i: usize) -> f64 {
    stats.get(i).copied().unwrap_or(0.0)
}

/// Python's `f"{x:.{precision}f}"`: fixed-point, correctly rounded from the exact binary value
/// (ties to even), as Rust's `{:.N}` also rounds; `nan` and `inf` spelled as Python does.
pub(crate) fn fmt_fixed(x: f64, precision: usize) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else {
        format!("{x:.precision$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_columns_in_order() {
        assert_eq!(
            sum_stats(&[vec![1.0, 0.5], vec![2.0, 0.25], vec![3.0]]),
            [6.0, 0.75]
        );
        assert!(sum_stats(&[]).is_empty());
    }

    #[test]
    fn python_fixed_point_formatting() {
        assert_eq!(fmt_fixed(0.125, 2), "0.12");
        assert_eq!(fmt_fixed(0.375, 2), "0.38");
        assert_eq!(fmt_fixed(2.675, 2), "2.67");
        assert_eq!(fmt_fixed(100.0, 2), "100.00");
        assert_eq!(fmt_fixed(f64::NAN, 2), "nan");
        assert_eq!(fmt_fixed(f64::INFINITY, 2), "inf");
    }

    #[test]
    fn corpus_stats_checks_stream_lengths() {
        let bleu = super::super::bleu::Bleu::default();
        let hyps = vec!["a b".to_string(), "c".to_string()];
        let short = vec![vec!["a b".to_string()]];
        let err = corpus_stats(&bleu, &hyps, &short).unwrap_err();
        assert!(
            err.contains("stream 1") && err.contains("1 segments"),
            "{err}"
        );
        assert!(corpus_stats(&bleu, &hyps, &[]).is_err());
        assert!(corpus_stats(&bleu, &[], &[vec![]]).is_err());
        let ok = vec![vec!["a b".to_string(), "c".to_string()]];
        assert_eq!(
            bleu.score_from_stats(&corpus_stats(&bleu, &hyps, &ok).unwrap()),
            0.0
        );
    }
}

/// Parity with sacreBLEU 2.6.0 on `tests/fixtures/eval/sacrebleu.json`, written by
/// `scripts/make_eval_fixtures.py`.
#[cfg(test)]
mod sacrebleu_parity {
    use super::super::bleu::{Bleu, Smooth};
    use super::super::chrf::Chrf;
    use super::super::ter::Ter;
    use super::super::tokenize::BleuTokenizer;
    use super::*;
    use serde_json::Value;

    fn fixture() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/eval/sacrebleu.json"
        );
        let text = std::fs::read_to_string(path).expect("read the sacreBLEU fixture");
        serde_json::from_str(&text).expect("parse the sacreBLEU fixture")
    }

    /// A float recorded as Python's `repr`: `str::parse` rounds correctly, so the value is
    /// exactly Python's (serde_json's own float parsing may be one ulp off).
    fn exact(repr: &Value) -> f64 {
        let text = repr.as_str().expect("a repr string");
        text.parse()
            .unwrap_or_else(|_| panic!("bad float repr {text:?}"))
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .expect("a list of strings")
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    }

    fn bleu_of(options: &Value) -> Bleu {
        let value = options["smooth_value"].as_f64();
        Bleu {
            tokenizer: BleuTokenizer::parse(options["tokenize"].as_str().unwrap()).unwrap(),
            lowercase: options["lowercase"].as_bool().unwrap(),
            smooth: match options["smooth_method"].as_str().unwrap() {
                "exp" => Smooth::Exp,
                "floor" => Smooth::Floor(value.unwrap_or(0.1)),
                "add-k" => Smooth::AddK(value.unwrap_or(1.0)),
                "none" => Smooth::None,
                other => panic!("unknown smoothing {other}"),
            },
            effective_order: options["effective_order"].as_bool().unwrap(),
            max_ngram_order: options["max_ngram_order"].as_u64().unwrap() as usize,
        }
    }

    fn chrf_of(options: &Value, word_order: usize) -> Chrf {
        Chrf {
            word_order,
            lowercase: options["lowercase"].as_bool().unwrap(),
            eps_smoothing: options["chrf_eps_smoothing"].as_bool().unwrap(),
            ..Chrf::chrf2()
        }
    }

    /// Compares one metric on one case; returns the failures as text.
    fn check(
        case: &str,
        metric: &dyn Metric,
        expected: &Value,
        hyps: &[String],
        refs: &[Vec<String>],
        bit_mismatches: &mut Vec<String>,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        let label = format!("{case} / {}", metric.name());

        // Per-segment statistics: integers exactly; TER's floats through their repr.
        let expected_rows: Vec<Vec<f64>> = match expected.get("stats_repr") {
            Some(rows) => rows
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row.as_array().unwrap().iter().map(exact).collect())
                .collect(),
            None => expected["stats"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_i64().expect("integer statistic") as f64)
                        .collect()
                })
                .collect(),
        };
        for (i, hyp) in hyps.iter().enumerate() {
            let segment_refs: Vec<&str> = refs.iter().map(|s| s[i].as_str()).collect();
            let row = metric.segment_stats(hyp, &segment_refs);
            if row != expected_rows[i] {
                failures.push(format!(
                    "{label}: segment {i} stats {row:?} != sacreBLEU {:?}",
                    expected_rows[i]
                ));
            }
        }

        let stats = corpus_stats(metric, hyps, refs).expect("corpus statistics");
        let score = metric.score_from_stats(&stats);
        let want = exact(&expected["score_repr"]);
        if fmt_fixed(score, 2) != fmt_fixed(want, 2) || (score - want).abs() > 1e-9 {
            failures.push(format!("{label}: score {score:?} != sacreBLEU {want:?}"));
        } else if score.to_bits() != want.to_bits() {
            bit_mismatches.push(format!("{label}: score {score:?} vs sacreBLEU {want:?}"));
        }
        let formatted = metric.format_from_stats(&stats);
        if formatted != expected["formatted"].as_str().unwrap() {
            failures.push(format!(
                "{label}: formatted {formatted:?} != sacreBLEU {:?}",
                expected["formatted"]
            ));
        }
        let signature = metric.signature(refs.len());
        if signature != expected["signature"].as_str().unwrap() {
            failures.push(format!(
                "{label}: signature {signature:?} != sacreBLEU {:?}",
                expected["signature"]
            ));
        }
        failures
    }

    #[test]
    fn every_case_matches_sacrebleu() {
        let fixture = fixture();
        assert_eq!(fixture["sacrebleu_version"], VERSION);
        let cases = fixture["cases"].as_array().expect("cases");
        assert!(cases.len() >= 50, "only {} cases", cases.len());
        let mut failures = Vec::new();
        let mut bit_mismatches = Vec::new();
        let mut checked = 0;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let hyps = strings(&case["hyps"]);
            let refs: Vec<Vec<String>> = case["refs"]
                .as_array()
                .unwrap()
                .iter()
                .map(strings)
                .collect();
            let options = &case["options"];
            let metrics: Vec<(&str, Box<dyn Metric>)> = vec![
                ("bleu", Box::new(bleu_of(options))),
                ("chrf", Box::new(chrf_of(options, 0))),
                ("chrf++", Box::new(chrf_of(options, 2))),
                ("ter", Box::new(Ter)),
            ];
            for (key, metric) in &metrics {
                if let Some(expected) = case.get(*key) {
                    checked += 1;
                    failures.extend(check(
                        name,
                        metric.as_ref(),
                        expected,
                        &hyps,
                        &refs,
                        &mut bit_mismatches,
                    ));
                }
            }
        }
        assert!(checked >= 200, "only {checked} metric results checked");
        assert!(
            failures.is_empty(),
            "{} mismatches with sacreBLEU:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // The port is meant to be bit-for-bit: any difference in the last bits is a bug too.
        assert!(
            bit_mismatches.is_empty(),
            "scores equal to 1e-9 but not bit for bit:\n{}",
            bit_mismatches.join("\n")
        );
    }

    #[test]
    fn number_formatting_matches_python() {
        let fixture = fixture();
        let rows = fixture["format_checks"].as_array().expect("format_checks");
        assert!(rows.len() > 100);
        for row in rows {
            let x = exact(&row[0]);
            for (precision, want) in [(1, &row[1]), (2, &row[2]), (3, &row[3])] {
                assert_eq!(
                    fmt_fixed(x, precision),
                    want.as_str().unwrap(),
                    "f\"{{{x:?}:.{precision}f}}\""
                );
            }
        }
    }
}
