//! `traduire eval`'s plumbing: test-set files read and checked line by line, a system's
//! translations scored with the standard metrics, and systems compared with paired bootstrap
//! resampling, all as sacreBLEU does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::bleu::Bleu;
use super::bootstrap::{PairedBootstrap, PairedResult};
use super::chrf::Chrf;
use super::metric::{sum_stats, Metric};
use super::ter::Ter;
use super::tokenize::BleuTokenizer;
use crate::input::decode;

/// The sacreBLEU version whose numbers and signatures these metrics reproduce.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// The lines of a test-set file, without their line ends. Invalid UTF-8 is an error naming
/// the file and line (or replaced with U+FFFD when `lossy`).
pub fn read_lines(path: &Path, lossy: bool) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut lines = Vec::new();
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let mut line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(&[]);
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let at = format!("{}:{}", path.display(), lines.len() + 1);
        lines.push(decode(line.to_vec(), &at, lossy)?);
    }
    Ok(lines)
}

/// A test set: the source (when translating) and one or more reference streams, all the
/// same length.
#[derive(Debug, Clone)]
pub struct TestSet {
    /// The French source lines, if read.
    pub source: Option<(PathBuf, Vec<String>)>,
    /// Reference streams (`references[r][i]`: reference r of segment i), with their files.
    pub references: Vec<(PathBuf, Vec<String>)>,
}

impl TestSet {
    /// Reads the files and checks that they have the same number of lines.
    pub fn read(source: Option<&Path>, references: &[PathBuf], lossy: bool) -> Result<Self> {
        if references.is_empty() {
            bail!("no reference: give at least one --ref FILE");
        }
        let source = match source {
            Some(path) => Some((path.to_path_buf(), read_lines(path, lossy)?)),
            None => None,
        };
        let references = references
            .iter()
            .map(|path| Ok((path.clone(), read_lines(path, lossy)?)))
            .collect::<Result<Vec<_>>>()?;
        let set = Self { source, references };
        // Each file after the first is checked against the first, so the error names the
        // odd file first.
        let mut files = set.source.iter().chain(&set.references);
        if let Some((first, first_lines)) = files.next() {
            for (path, lines) in files {
                if lines.len() != first_lines.len() {
                    bail!(
                        "{} has {} lines but {} has {}: the files of a test set must be line-aligned",
                        path.display(),
                        lines.len(),
                        first.display(),
                        first_lines.len()
                    );
                }
            }
        }
        Ok(set)
    }

    /// Segments in the test set.
    pub fn len(&self) -> usize {
        self.references[0].1.len()
    }

    /// Whether the test set has no segment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that `lines` lines read from `path` match every file of the test set.
    pub fn check_length(&self, path: &Path, lines: usize) -> Result<()> {
        let files = self
            .source
            .iter()
            .chain(&self.references)
            .map(|(p, l)| (p, l.len()));
        for (other, count) in files {
            if count != lines {
                bail!(
                    "{} has {lines} lines but {} has {count}: the files of a test set must be line-aligned",
                    path.display(),
                    other.display()
                );
            }
        }
        Ok(())
    }

    /// The references as sacreBLEU takes them: one stream per reference file.
    pub fn reference_streams(&self) -> Vec<Vec<String>> {
        self.references.iter().map(|(_, r)| r.clone()).collect()
    }
}

/// Which metrics, with which options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricOptions {
    /// BLEU's tokenizer (`13a` by default, as sacreBLEU).
    pub tokenize: BleuTokenizer,
    /// Lowercase hypotheses and references for BLEU and chrF (TER is case-insensitive by
    /// default, as sacreBLEU).
    pub lowercase: bool,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            tokenize: BleuTokenizer::Thirteen,
            lowercase: false,
        }
    }
}

/// The metrics `eval` reports: BLEU, chrF, chrF++ and TER, with sacreBLEU's defaults.
pub fn standard_metrics(options: MetricOptions) -> Vec<Box<dyn Metric + Send + Sync>> {
    vec![
        Box::new(Bleu::new(options.tokenize, options.lowercase)),
        Box::new(Chrf::new(0, options.lowercase)),
        Box::new(Chrf::new(2, options.lowercase)),
        Box::new(Ter),
    ]
}

/// One metric's result, as sacreBLEU prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricScore {
    /// "BLEU", "chrF2", "chrF2++" or "TER".
    pub name: String,
    /// The score, full precision.
    pub score: f64,
    /// sacreBLEU's line, e.g. `BLEU = 34.12 65.1/40.2/27.0/19.1 (BP = ...)`.
    pub formatted: String,
    /// sacreBLEU's signature, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    pub signature: String,
}

/// A system's scores and the per-segment statistics behind them (for significance tests).
#[derive(Debug, Clone)]
pub struct ScoredSystem {
    /// One score per metric, in the metrics' order.
    pub scores: Vec<MetricScore>,
    /// Per metric, per segment: sufficient statistics.
    pub stats: Vec<Vec<Vec<f64>>>,
}

/// Scores `hypotheses` against `references` (one stream per reference) with every metric.
pub fn score_system(
    metrics: &[Box<dyn Metric + Send + Sync>],
    hypotheses: &[String],
    references: &[Vec<String>],
) -> Result<ScoredSystem> {
    for (r, stream) in references.iter().enumerate() {
        if stream.len() != hypotheses.len() {
            bail!(
                "{} hypotheses but reference {} has {} lines",
                hypotheses.len(),
                r + 1,
                stream.len()
            );
        }
    }
    let mut scores = Vec::with_capacity(metrics.len());
    let mut stats = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let rows: Vec<Vec<f64>> = hypotheses
            .iter()
            .enumerate()
            .map(|(i, hyp)| {
                let refs: Vec<&str> = references.iter().map(|r| r[i].as_str()).collect();
                metric.segment_stats(hyp, &refs)
            })
            .collect();
        let total = sum_stats(&rows);
        scores.push(MetricScore {
            name: metric.name(),
            score: metric.score_from_stats(&total),
            formatted: metric.format_from_stats(&total),
            signature: metric.signature(references.len()),
        });
        stats.push(rows);
    }
    Ok(ScoredSystem { scores, stats })
}

/// A system compared with the baseline on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The metric.
    pub name: String,
    /// The system's score minus the baseline's.
    pub delta: f64,
    /// Paired bootstrap p-value of the difference (sacreBLEU `--paired-bs`).
    pub p_value: f64,
    /// Mean of the system's score over the resamples.
    pub mean: f64,
    /// Half-width of its 95% confidence interval.
    pub ci: f64,
}

/// Compares `system` with `baseline` on the metrics sacreBLEU's paired test uses by default
/// (BLEU and chrF: the first two of [`standard_metrics`]), with the same resamples for every
/// system (`bootstrap`'s seed).
pub fn compare(
    metrics: &[Box<dyn Metric + Send + Sync>],
    baseline: &ScoredSystem,
    system: &ScoredSystem,
    bootstrap: &PairedBootstrap,
) -> Result<Vec<Comparison>> {
    let mut out = Vec::new();
    for (m, metric) in metrics.iter().enumerate().take(2) {
        let result: PairedResult = bootstrap
            .test(metric.as_ref(), &baseline.stats[m], &system.stats[m])
            .map_err(anyhow::Error::msg)?;
        out.push(Comparison {
            name: metric.name(),
            delta: system.scores[m].score - baseline.scores[m].score,
            p_value: result.p_value,
            mean: result.mean,
            ci: result.ci,
        });
    }
    Ok(out)
}
