//! TER, the translation edit rate (Snover et al., 2006), as sacreBLEU 2.6.0 computes it with
//! its default options (`sacrebleu/metrics/ter.py` and `lib_ter.py`, Apache-2.0, Copyright 2020
//! Memsource): tercom's greedy block shifts, then a beam-limited word-level edit distance.
//!
//! The port keeps every heuristic that can change a result: the beam around the pseudo-diagonal,
//! the maximum shift size and distance, the ranking of shift candidates, the order of edit
//! operations on ties, and the cap of 1000 shift candidates per sentence pair. sacreBLEU's row
//! cache only saves time (a row depends on the hypothesis prefix alone, for a given pair), so
//! it is mirrored as a prefix trie without any effect on the numbers.

use std::collections::HashMap;

use super::metric::{fmt_fixed, stat, Metric, VERSION};
use super::tokenize::{py_rstrip, py_split, tokenize_tercom};

// lib_ter.py's constants.
const COST_INS: i64 = 1;
const COST_DEL: i64 = 1;
const COST_SUB: i64 = 1;
/// Tercom's longest shifted block, in words.
const MAX_SHIFT_SIZE: usize = 10;
/// Tercom's farthest shift, in words.
const MAX_SHIFT_DIST: usize = 50;
/// Half-width of the edit-distance beam around the pseudo-diagonal.
const BEAM_WIDTH: usize = 25;
/// sacreBLEU's own limits: cached rows per pair, and shift candidates evaluated per pair.
const MAX_CACHE_SIZE: usize = 10_000;
const MAX_SHIFT_CANDIDATES: usize = 1000;
/// An unreachable cell of the edit-distance matrix.
const INT_INFINITY: i64 = 10_000_000_000_000_000;

/// One edit operation, rewriting the hypothesis into the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `'i'`: a reference word inserted.
    Ins,
    /// `'d'`: a hypothesis word deleted.
    Del,
    /// `' '`: the words match.
    Nop,
    /// `'s'`: a word substituted.
    Sub,
    /// `'x'`: a cell the beam never reached.
    Undef,
}

impl Op {
    /// sacreBLEU `_flip_trace`: the recipe for rewriting the reference into the hypothesis.
    fn flip(self) -> Op {
        match self {
            Op::Ins => Op::Del,
            Op::Del => Op::Ins,
            other => other,
        }
    }
}

/// A matrix cell: the cost and the last operation of the best path to it.
type Cell = (i64, Op);

/// One row of the edit-distance matrix. Only the beam's columns `start..start + cells.len()`
/// are stored; every other column holds `(INT_INFINITY, Undef)`, as sacreBLEU's
/// pre-filled rows do outside the beam.
#[derive(Debug, Clone)]
struct Row {
    start: usize,
    cells: Vec<Cell>,
}

impl Row {
    fn get(&self, j: usize) -> Cell {
        j.checked_sub(self.start)
            .and_then(|k| self.cells.get(k))
            .copied()
            .unwrap_or((INT_INFINITY, Op::Undef))
    }
}

/// A node of the row cache: the row after one more hypothesis word, and the nodes below.
struct CacheNode {
    children: HashMap<u32, usize>,
    row: Option<Row>,
}

/// sacreBLEU `BeamEditDistance`: the word-level edit distance between one reference and any
/// hypothesis of a given length, with a beam and a cache of rows keyed by hypothesis prefix.
struct BeamEditDistance<'r> {
    words_ref: &'r [u32],
    /// Trie of hypothesis prefixes; node 0 is the root (the empty prefix).
    cache: Vec<CacheNode>,
}

impl<'r> BeamEditDistance<'r> {
    fn new(words_ref: &'r [u32]) -> Self {
        BeamEditDistance {
            words_ref,
            cache: vec![CacheNode {
                children: HashMap::new(),
                row: None,
            }],
        }
    }

    /// The first row: inserting the first j reference words costs j.
    fn initial_row(&self) -> Row {
        Row {
            start: 0,
            cells: (0..=self.words_ref.len())
                .map(|j| (j as i64 * COST_INS, Op::Ins))
                .collect(),
        }
    }

    /// sacreBLEU `BeamEditDistance.__call__`: the distance and the trace of operations.
    fn distance(&mut self, words_hyp: &[u32]) -> (i64, Vec<Op>) {
        let (start, mut dist) = self.find_cache(words_hyp);
        let (distance, trace) = self.edit_distance(words_hyp, start, &mut dist);
        self.add_cache(words_hyp, &dist[start + 1..]);
        (distance, trace)
    }

    /// sacreBLEU `BeamEditDistance._edit_distance`: fills rows `start_h + 1 ..= len` of `dist`
    /// (which holds rows `0 ..= start_h`) and traces the best path back.
    fn edit_distance(
        &self,
        words_h: &[u32],
        start_h: usize,
        dist: &mut Vec<Row>,
    ) -> (i64, Vec<Op>) {
        let n_words_h = words_h.len();
        let n_words_ref = self.words_ref.len();
        let length_ratio = if n_words_h > 0 {
            n_words_ref as f64 / n_words_h as f64
        } else {
            1.0
        };
        // With very different lengths, consecutive beams could fail to overlap: widen it.
        let beam_width = if (BEAM_WIDTH as f64) < length_ratio / 2.0 {
            (length_ratio / 2.0 + BEAM_WIDTH as f64).ceil() as i64
        } else {
            BEAM_WIDTH as i64
        };

        for i in start_h + 1..=n_words_h {
            let pseudo_diag = (i as f64 * length_ratio).floor() as i64;
            let min_j = (pseudo_diag - beam_width).max(0) as usize;
            let max_j = if i == n_words_h {
                n_words_ref + 1
            } else {
                (pseudo_diag + beam_width).clamp(0, n_words_ref as i64 + 1) as usize
            };
            let prev = &dist[i - 1];
            let mut row = Row {
                start: min_j,
                cells: Vec::with_capacity(max_j.saturating_sub(min_j)),
            };
            for j in min_j..max_j {
                let cell = if j == 0 {
                    (prev.get(0).0 + COST_DEL, Op::Del)
                } else {
                    let (cost_sub, op_sub) = if words_h[i - 1] == self.words_ref[j - 1] {
                        (0, Op::Nop)
                    } else {
                        (COST_SUB, Op::Sub)
                    };
                    let left = if j > min_j {
                        row.cells[j - 1 - min_j]
                    } else {
                        (INT_INFINITY, Op::Undef)
                    };
                    // Tercom prefers no-op/substitution, then insertion, then deletion; the
                    // trace is flipped afterwards, hence deletion before insertion here. Only a
                    // strictly lower cost replaces the cell.
                    let ops = [
                        (prev.get(j - 1).0 + cost_sub, op_sub),
                        (prev.get(j).0 + COST_DEL, Op::Del),
                        (left.0 + COST_INS, Op::Ins),
                    ];
                    let mut best = (INT_INFINITY, Op::Undef);
                    for (cost, op) in ops {
                        if best.0 > cost {
                            best = (cost, op);
                        }
                    }
                    best
                };
                row.cells.push(cell);
            }
            dist.push(row);
        }

        // Trace back from the last cell.
        let mut trace = Vec::new();
        let (mut i, mut j) = (n_words_h, n_words_ref);
        while i > 0 || j > 0 {
            let op = dist[i].get(j).1;
            trace.push(op);
            match op {
                Op::Sub | Op::Nop if i > 0 && j > 0 => {
                    i -= 1;
                    j -= 1;
                }
                Op::Ins if j > 0 => j -= 1,
                Op::Del if i > 0 => i -= 1,
                // sacreBLEU raises here; the beam's overlap makes it unreachable.
                _ => break,
            }
        }
        trace.reverse();
        (dist[n_words_h].get(n_words_ref).0, trace)
    }

    /// sacreBLEU `BeamEditDistance._find_cache`: the rows of the longest cached prefix, and its
    /// length.
    fn find_cache(&self, words_hyp: &[u32]) -> (usize, Vec<Row>) {
        let mut dist = vec![self.initial_row()];
        let mut node = 0;
        for word in words_hyp {
            match self.cache[node].children.get(word) {
                Some(&child) => {
                    node = child;
                    match &self.cache[child].row {
                        Some(row) => dist.push(row.clone()),
                        None => break,
                    }
                }
                None => break,
            }
        }
        (dist.len() - 1, dist)
    }

    /// sacreBLEU `BeamEditDistance._add_cache`: stores the newly computed rows (the last
    /// `rows.len()` words of the hypothesis), up to `MAX_CACHE_SIZE` rows per reference.
    fn add_cache(&mut self, words_hyp: &[u32], rows: &[Row]) {
        if self.cache.len() > MAX_CACHE_SIZE {
            return;
        }
        let skip = words_hyp.len() - rows.len();
        let mut node = 0;
        for word in &words_hyp[..skip] {
            match self.cache[node].children.get(word) {
                Some(&child) => node = child,
                None => return,
            }
        }
        for (word, row) in words_hyp[skip..].iter().zip(rows) {
            node = match self.cache[node].children.get(word) {
                Some(&child) => child,
                None => {
                    self.cache.push(CacheNode {
                        children: HashMap::new(),
                        row: Some(row.clone()),
                    });
                    let child = self.cache.len() - 1;
                    self.cache[node].children.insert(*word, child);
                    child
                }
            };
        }
    }
}

/// sacreBLEU `trace_to_alignment`: for each reference position the aligned hypothesis
/// position (-1 before the first), and the error flags of reference and hypothesis words.
fn trace_to_alignment(trace: &[Op]) -> (Vec<i64>, Vec<u8>, Vec<u8>) {
    let mut pos_hyp: i64 = -1;
    let mut align = Vec::new();
    let mut ref_err = Vec::new();
    let mut hyp_err = Vec::new();
    for &op in trace {
        match op {
            Op::Nop | Op::Sub => {
                let err = u8::from(op == Op::Sub);
                pos_hyp += 1;
                align.push(pos_hyp);
                hyp_err.push(err);
                ref_err.push(err);
            }
            Op::Ins => {
                pos_hyp += 1;
                hyp_err.push(1);
            }
            Op::Del => {
                align.push(pos_hyp);
                ref_err.push(1);
            }
            Op::Undef => {}
        }
    }
    (align, ref_err, hyp_err)
}

/// sacreBLEU `_perform_shift`: moves `words[start..start + length]` before position `target`.
fn perform_shift(words: &[u32], start: usize, length: usize, target: usize) -> Vec<u32> {
    let n = words.len();
    let clamp = |k: usize| k.min(n);
    let block = &words[start..start + length];
    let mut out = Vec::with_capacity(n);
    if target < start {
        out.extend_from_slice(&words[..target]);
        out.extend_from_slice(block);
        out.extend_from_slice(&words[target..start]);
        out.extend_from_slice(&words[start + length..]);
    } else if target > start + length {
        out.extend_from_slice(&words[..start]);
        out.extend_from_slice(&words[start + length..clamp(target)]);
        out.extend_from_slice(block);
        out.extend_from_slice(&words[clamp(target)..]);
    } else {
        // "Shift within the shifted string": Python's slices clamp at the end.
        out.extend_from_slice(&words[..start]);
        out.extend_from_slice(&words[start + length..clamp(length + target)]);
        out.extend_from_slice(block);
        out.extend_from_slice(&words[clamp(length + target)..]);
    }
    out
}

/// sacreBLEU `_find_shifted_pairs`: every `(start_h, start_r, length)` with equal word runs
/// `words_h[start_h..][..length] == words_r[start_r..][..length]`, lengths up to
/// `MAX_SHIFT_SIZE`, starts at most `MAX_SHIFT_DIST` apart, in sacreBLEU's order. Lazy like
/// sacreBLEU's generator, since the caller stops at the candidate cap.
fn shifted_pairs<'a>(
    words_h: &'a [u32],
    words_r: &'a [u32],
) -> impl Iterator<Item = (usize, usize, usize)> + 'a {
    (0..words_h.len()).flat_map(move |start_h| {
        (0..words_r.len())
            .filter(move |start_r| start_r.abs_diff(start_h) <= MAX_SHIFT_DIST)
            .flat_map(move |start_r| {
                // The generator yields each length of the matching run, up to the size cap
                // and the end of either sequence.
                let run = words_h[start_h..]
                    .iter()
                    .zip(&words_r[start_r..])
                    .take(MAX_SHIFT_SIZE)
                    .take_while(|(h, r)| h == r)
                    .count();
                (1..=run).map(move |length| (start_h, start_r, length))
            })
    })
}

/// sacreBLEU `_shift`: the shift that lowers the edit distance most (tercom's ranking), as
/// `(gain, shifted words)`, and the updated count of evaluated candidates.
fn best_shift(
    words_h: &[u32],
    words_r: &[u32],
    ed: &mut BeamEditDistance,
    mut checked: usize,
) -> (i64, Option<Vec<u32>>, usize) {
    let (pre_score, inv_trace) = ed.distance(words_h);
    let trace: Vec<Op> = inv_trace.iter().map(|op| op.flip()).collect();
    let (align, ref_err, hyp_err) = trace_to_alignment(&trace);
    let err_sum = |errs: &[u8], start: usize, length: usize| -> u32 {
        let end = (start + length).min(errs.len());
        errs.get(start.min(end)..end)
            .map_or(0, |s| s.iter().map(|&e| u32::from(e)).sum())
    };

    // (gain, length, -start_h, -target): the greatest wins, the first one on full ties.
    type Rank = (i64, usize, i64, i64);
    let mut best: Option<(Rank, Vec<u32>)> = None;
    for (start_h, start_r, length) in shifted_pairs(words_h, words_r) {
        // Only move words that are wrong to a place where the reference is not matched.
        if err_sum(&hyp_err, start_h, length) == 0 || err_sum(&ref_err, start_r, length) == 0 {
            continue;
        }
        // Do not shift within the block itself.
        let Some(&aligned) = align.get(start_r) else {
            continue;
        };
        if start_h as i64 <= aligned && aligned < (start_h + length) as i64 {
            continue;
        }

        let mut prev_idx: i64 = -1;
        for offset in -1..length as i64 {
            let r = start_r as i64 + offset;
            let idx = if r == -1 {
                0 // before the beginning
            } else if let Some(&a) = align.get(r as usize) {
                // Unlike tercom, which inserts after the index, sacreBLEU inserts before.
                a + 1
            } else {
                break;
            };
            if idx == prev_idx {
                continue;
            }
            prev_idx = idx;

            let target = (idx.max(0) as usize).min(words_h.len());
            let shifted = perform_shift(words_h, start_h, length, target);
            let key = (
                pre_score - ed.distance(&shifted).0,
                length,
                -(start_h as i64),
                -idx,
            );
            checked += 1;
            if best.as_ref().is_none_or(|(best_key, _)| key > *best_key) {
                best = Some((key, shifted));
            }
        }
        if checked >= MAX_SHIFT_CANDIDATES {
            break;
        }
    }
    match best {
        Some(((gain, ..), shifted)) => (gain, Some(shifted), checked),
        None => (0, None, checked),
    }
}

/// sacreBLEU `translation_edit_rate`: `(edits, reference length)` of one tokenized pair —
/// shifts applied greedily while they lower the edit distance, each costing one edit.
fn translation_edit_rate(words_hyp: &[u32], words_ref: &[u32]) -> (i64, usize) {
    if words_ref.is_empty() {
        return (words_hyp.len() as i64, 0);
    }
    let mut ed = BeamEditDistance::new(words_ref);
    let mut shifts = 0;
    let mut input = words_hyp.to_vec();
    let mut checked = 0;
    loop {
        let (delta, shifted, now_checked) = best_shift(&input, words_ref, &mut ed, checked);
        checked = now_checked;
        if checked >= MAX_SHIFT_CANDIDATES || delta <= 0 {
            break;
        }
        let Some(shifted) = shifted else { break };
        shifts += 1;
        input = shifted;
    }
    let (edit_distance, _) = ed.distance(&input);
    (shifts + edit_distance, words_ref.len())
}

/// The words of a line (`str.split()`) as ids, numbering new words in `vocab`.
fn word_ids<'a>(line: &'a str, vocab: &mut HashMap<&'a str, u32>) -> Vec<u32> {
    py_split(line)
        .map(|w| {
            let next = vocab.len() as u32;
            *vocab.entry(w).or_insert(next)
        })
        .collect()
}

/// sacreBLEU's `TER` metric with its default options: case-insensitive, tercom
/// tokenization without normalization, punctuation kept, no Asian-specific splitting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ter;

/// A corpus TER result (sacreBLEU `TERScore`).
#[derive(Debug, Clone, PartialEq)]
pub struct TerScore {
    /// The score, 0 to 100 (or more: edits can outnumber reference words).
    pub score: f64,
    /// Total edits.
    pub num_edits: f64,
    /// Total of the per-segment average reference lengths.
    pub ref_length: f64,
}

impl Ter {
    /// sacreBLEU `TER._preprocess_segment`: the tercom tokenizer on the right-stripped line.
    pub fn preprocess(&self, line: &str) -> String {
        tokenize_tercom(py_rstrip(line))
    }

    /// The statistics row of one segment (sacreBLEU `_compute_segment_statistics`):
    /// `[fewest edits over the references, average reference length]`. No reference at all
    /// counts as one empty reference.
    pub fn stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64> {
        let refs: Vec<String> = if refs.is_empty() {
            vec![String::new()]
        } else {
            refs.iter().map(|r| self.preprocess(r)).collect()
        };
        let hyp = self.preprocess(hyp);

        // Words as ids: comparisons and cache keys get cheap, equality is unchanged.
        let mut vocab: HashMap<&str, u32> = HashMap::new();
        let words_hyp = word_ids(&hyp, &mut vocab);
        let words_refs: Vec<Vec<u32>> = refs.iter().map(|r| word_ids(r, &mut vocab)).collect();

        let mut ref_lengths = 0usize;
        let mut best_num_edits = i64::MAX;
        for words_ref in &words_refs {
            let (num_edits, ref_len) = translation_edit_rate(&words_hyp, words_ref);
            ref_lengths += ref_len;
            best_num_edits = best_num_edits.min(num_edits);
        }
        vec![
            best_num_edits as f64,
            ref_lengths as f64 / refs.len() as f64,
        ]
    }

    /// The corpus result from summed statistics (sacreBLEU `_compute_score_from_stats`).
    pub fn score_stats(&self, stats: &[f64]) -> TerScore {
        let total_edits = stat(stats, 0);
        let sum_ref_lengths = stat(stats, 1);
        let score = if sum_ref_lengths > 0.0 {
            total_edits / sum_ref_lengths
        } else if total_edits > 0.0 {
            1.0 // empty reference(s), non-empty hypothesis
        } else {
            0.0 // both empty
        };
        TerScore {
            score: 100.0 * score,
            num_edits: total_edits,
            ref_length: sum_ref_lengths,
        }
    }
}

impl Metric for Ter {
    fn name(&self) -> String {
        "TER".to_string()
    }

    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Vec<f64> {
        self.stats(hyp, refs)
    }

    fn score_from_stats(&self, stats: &[f64]) -> f64 {
        self.score_stats(stats).score
    }

    /// `TER = 12.34`.
    fn format_from_stats(&self, stats: &[f64]) -> String {
        format!("TER = {}", fmt_fixed(self.score_from_stats(stats), 2))
    }

    /// `nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0`
    /// (`TERSignature`).
    fn signature(&self, nrefs: usize) -> String {
        format!("nrefs:{nrefs}|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:{VERSION}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(line: &str) -> Vec<u32> {
        line.split_whitespace()
            .map(|w| {
                w.bytes()
                    .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
            })
            .collect()
    }

    #[test]
    fn edits_and_shifts() {
        assert_eq!(translation_edit_rate(&ids("a b c"), &ids("a b c")), (0, 3));
        assert_eq!(translation_edit_rate(&ids("a b"), &ids("a b c")), (1, 3));
        // One block shift instead of four edits.
        assert_eq!(
            translation_edit_rate(&ids("c d a b"), &ids("a b c d")),
            (1, 4)
        );
        assert_eq!(translation_edit_rate(&ids("a b"), &[]), (2, 0));
        assert_eq!(translation_edit_rate(&[], &ids("a b")), (2, 2));
    }

    #[test]
    fn shift_cases_as_python_slices() {
        let w = [0, 1, 2, 3, 4, 5];
        assert_eq!(perform_shift(&w, 3, 2, 1), [0, 3, 4, 1, 2, 5]);
        assert_eq!(perform_shift(&w, 0, 2, 4), [2, 3, 0, 1, 4, 5]);
        assert_eq!(perform_shift(&w, 1, 2, 2), [0, 3, 1, 2, 4, 5]);
        assert_eq!(perform_shift(&w, 3, 2, 5), [0, 1, 2, 5, 3, 4]);
    }

    #[test]
    fn corpus_scores_and_signature() {
        let ter = Ter;
        let stats = ter.stats("The cat", &["the cat sat", "a cat"]);
        assert_eq!(stats, [1.0, 2.5]);
        assert_eq!(ter.format_from_stats(&[1.0, 0.0]), "TER = 100.00");
        assert_eq!(ter.format_from_stats(&[0.0, 0.0]), "TER = 0.00");
        assert_eq!(
            ter.signature(1),
            "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0"
        );
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let ter = Ter;
        let long_hyp = "a b ".repeat(400);
        for (h, r) in [
            ("", ""),
            ("a", ""),
            ("", "a"),
            ("\u{0}", "\u{1c}"),
            ("w", long_hyp.as_str()),
            (long_hyp.as_str(), "w"),
        ] {
            let stats = ter.stats(h, &[r]);
            let _ = ter.format_from_stats(&stats);
        }
        let _ = ter.format_from_stats(&[]);
        let _ = ter.stats("a", &[]);
    }
}
