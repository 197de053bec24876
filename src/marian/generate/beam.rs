//! Beam search, as transformers 5's vectorised `_beam_search`: each step, the `2 × beams` best
//! continuations of a source's running beams; those that end (EOS or the length limit) among
//! the top `beams` compete for the finished slots, the best others become the next running
//! beams.

use rayon::prelude::*;

use super::greedy::with_source;
use super::processors::{Candidate, Processor, TopK};
use super::Hypothesis;
use crate::marian::config::EarlyStopping;
use crate::marian::error::{MarianError, Result};
use crate::marian::model::Decoder;

/// transformers' "very negative" score for impossible beams.
const NEG: f32 = -1.0e9;

/// A running beam: its tokens, the decoder row that predicted each of them (to find its
/// alignment weights), and its accumulated log-probability.
#[derive(Clone, Debug)]
struct Beam {
    tokens: Vec<u32>,
    rows: Vec<u32>,
    score: f32,
}

/// A finished slot: a hypothesis (length-normalised score), or an empty slot (`real` false).
#[derive(Clone, Debug)]
struct Finished {
    tokens: Vec<u32>,
    rows: Vec<u32>,
    score: f32,
    real: bool,
    length_limited: bool,
}

/// The search state of one source.
struct SourceSearch {
    /// Running beams, best first.
    running: Vec<Beam>,
    /// Finished slots, best first.
    finished: Vec<Finished>,
    /// transformers' `is_early_stop_heuristic_unsatisfied`: false once the source can no
    /// longer improve, after which it is dropped from the batch.
    improvable: bool,
}

/// Indices of the `k` largest values, sorted descending; ties keep the lower index first.
fn top_k_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// Beam search; with `source_lens` (the decoder recording alignments), each hypothesis also
/// gets its tokens' alignment weights over its source's `source_lens[i]` tokens.
pub(super) fn search(
    decoder: &mut Decoder<'_>,
    processor: &Processor<'_>,
    limits: &[usize],
    start: u32,
    source_lens: Option<&[usize]>,
) -> Result<Vec<Vec<Hypothesis>>> {
    let options = processor.options;
    let nb = options.num_beams;
    let eos = processor.eos;
    let lp = options.length_penalty;
    let mut sources: Vec<SourceSearch> = limits
        .iter()
        .map(|_| SourceSearch {
            running: (0..nb)
                .map(|b| Beam {
                    tokens: Vec::new(),
                    rows: Vec::new(),
                    score: if b == 0 { 0.0 } else { NEG },
                })
                .collect(),
            finished: vec![
                Finished {
                    tokens: Vec::new(),
                    rows: Vec::new(),
                    score: NEG,
                    real: false,
                    length_limited: false,
                };
                nb
            ],
            improvable: true,
        })
        .collect();
    let mut active: Vec<usize> = (0..limits.len()).collect();
    let mut tokens = vec![start; limits.len() * nb];
    let mut step = 0usize;
    // With alignments: every step's weights (rows × stride), which the beams' `rows` index.
    let mut step_weights: Vec<(Vec<f32>, usize)> = Vec::new();
    while !active.is_empty() {
        let logits = decoder.step(&tokens)?;
        let vocab = logits.len() / (active.len() * nb);
        let all_candidates: Vec<Result<Vec<Candidate>>> = active
            .par_iter()
            .enumerate()
            .map(|(slot, &source)| {
                let rules = processor.rules(step, limits[source]);
                let mut top = TopK::new(2 * nb);
                for (b, beam) in sources[source].running.iter().enumerate() {
                    let r = slot * nb + b;
                    processor
                        .row(&logits[r * vocab..(r + 1) * vocab], rules, &beam.tokens)
                        .map_err(|e| with_source(e, source))?
                        .push_candidates(b, beam.score, &mut top);
                }
                if top.best.len() != 2 * nb {
                    return Err(MarianError::Input(format!(
                        "beam search found {} candidates, expected {}",
                        top.best.len(),
                        2 * nb
                    )));
                }
                Ok(top.best)
            })
            .collect();
        if source_lens.is_some() {
            let (weights, stride) = decoder.alignment()?;
            step_weights.push((weights.to_vec(), stride));
        }
        let mut parents = Vec::with_capacity(active.len() * nb);
        let mut keep = Vec::with_capacity(active.len());
        for ((slot, &source), candidates) in active.iter().enumerate().zip(all_candidates) {
            let candidates = candidates?;
            let search = &mut sources[source];
            let limit = limits[source];
            let advanced = advance(
                search,
                &candidates,
                (slot * nb) as u32,
                step,
                limit,
                eos,
                lp,
                options.early_stopping,
            );
            parents.extend(advanced.parents.iter().map(|&b| (slot * nb + b) as u32));
            if !advanced.done {
                keep.push(slot as u32);
            }
        }
        decoder.reorder_rows(&parents)?;
        let next: Vec<usize> = keep.iter().map(|&s| active[s as usize]).collect();
        if next.len() != active.len() && !next.is_empty() {
            decoder.keep_sources(&keep)?;
        }
        active = next;
        tokens = active
            .iter()
            .flat_map(|&s| {
                sources[s]
                    .running
                    .iter()
                    .map(|beam| *beam.tokens.last().expect("a running beam has a token"))
            })
            .collect();
        step += 1;
    }
    Ok(sources
        .into_iter()
        .enumerate()
        .map(|(source, search)| {
            search
                .finished
                .into_iter()
                .take(options.num_return_sequences)
                .map(|f| {
                    let attention = match source_lens {
                        Some(lens) => f
                            .rows
                            .iter()
                            .zip(&step_weights)
                            .map(|(&row, (weights, stride))| {
                                let at = row as usize * stride;
                                weights[at..at + lens[source]].to_vec()
                            })
                            .collect(),
                        None => Vec::new(),
                    };
                    Hypothesis {
                        ids: f.tokens,
                        score: f.score,
                        length_limited: f.length_limited,
                        attention,
                    }
                })
                .collect()
        })
        .collect())
}

/// What one step did to a source.
struct Advanced {
    /// For each new running beam, the beam it continues.
    parents: Vec<usize>,
    /// Whether the source is done.
    done: bool,
}

/// One step of one source: picks the next running beams and merges the candidates that end
/// into the finished slots.
#[allow(clippy::too_many_arguments)]
fn advance(
    search: &mut SourceSearch,
    candidates: &[Candidate],
    first_row: u32,
    step: usize,
    limit: usize,
    eos: u32,
    lp: f32,
    early_stopping: EarlyStopping,
) -> Advanced {
    let nb = search.running.len();
    // A candidate "hits the stopping criteria" when it ends with EOS or reaches the limit.
    let at_limit = step + 1 >= limit;
    let hits: Vec<bool> = candidates
        .iter()
        .map(|c| c.token == eos || at_limit)
        .collect();

    // Next running beams: the best candidates that did not stop.
    let running_scores: Vec<f32> = candidates
        .iter()
        .zip(&hits)
        .map(|(c, &hit)| c.score + if hit { NEG } else { 0.0 })
        .collect();
    let chosen = top_k_indices(&running_scores, nb);
    let next_running: Vec<Beam> = chosen
        .iter()
        .map(|&i| {
            let c = candidates[i];
            let parent = &search.running[c.beam];
            Beam {
                tokens: extended(&parent.tokens, c.token),
                rows: extended(&parent.rows, first_row + c.beam as u32),
                score: running_scores[i],
            }
        })
        .collect();
    let parents = chosen.iter().map(|&i| candidates[i].beam).collect();

    // Finished hypotheses: merge the top-`nb` candidates that stopped.
    let length_norm = ((step + 1) as f32).powf(lp);
    let full = search.finished.iter().all(|f| f.real) && early_stopping == EarlyStopping::Always;
    let mut merged: Vec<Finished> = search.finished.clone();
    for (i, c) in candidates.iter().enumerate() {
        let just_finished = hits[i] && i < nb;
        let mut score = c.score / length_norm;
        if full {
            score += NEG;
        }
        if !search.improvable {
            score += NEG;
        }
        if !just_finished {
            score += NEG;
        }
        let parent = &search.running[c.beam];
        merged.push(Finished {
            tokens: extended(&parent.tokens, c.token),
            rows: extended(&parent.rows, first_row + c.beam as u32),
            score,
            real: just_finished,
            length_limited: at_limit,
        });
    }
    let merged_scores: Vec<f32> = merged.iter().map(|m| m.score).collect();
    search.finished = top_k_indices(&merged_scores, nb)
        .into_iter()
        .map(|i| merged[i].clone())
        .collect();
    search.running = next_running;

    // transformers' early-stop heuristic, evaluated at the new length.
    let best_length = if early_stopping == EarlyStopping::Never && lp > 0.0 {
        limit
    } else {
        step + 1
    };
    let best_running = search.running[0].score / (best_length as f32).powf(lp);
    let min_finished = search
        .finished
        .iter()
        .map(|f| f.score)
        .fold(f32::INFINITY, f32::min);
    let can_improve = search
        .finished
        .iter()
        .any(|f| best_running > if f.real { min_finished } else { NEG });
    search.improvable &= can_improve;
    let all_finished = search.finished.iter().all(|f| f.real);
    Advanced {
        parents,
        done: !search.improvable
            || (early_stopping == EarlyStopping::Always && all_finished)
            || at_limit,
    }
}

/// `list` with `last` appended.
fn extended(list: &[u32], last: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(list.len() + 1);
    out.extend_from_slice(list);
    out.push(last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_stable() {
        assert_eq!(top_k_indices(&[1.0, 3.0, 3.0, 2.0], 3), vec![1, 2, 3]);
    }
}
