//! Greedy search: the best token of each row at every step, rows dropped as they finish.

use rayon::prelude::*;

use super::processors::Processor;
use super::Hypothesis;
use crate::marian::error::{MarianError, Result};
use crate::marian::model::Decoder;

/// One source being decoded.
struct Output {
    ids: Vec<u32>,
    log_prob: f32,
    attention: Vec<Vec<f32>>,
}

/// Greedy search; with `source_lens` (the decoder recording alignments), each output also
/// gets its tokens' alignment weights over its source's `source_lens[i]` tokens.
pub(super) fn search(
    decoder: &mut Decoder<'_>,
    processor: &Processor<'_>,
    limits: &[usize],
    start: u32,
    source_lens: Option<&[usize]>,
) -> Result<Vec<Vec<Hypothesis>>> {
    let eos = processor.eos;
    let mut outputs: Vec<Output> = limits
        .iter()
        .map(|_| Output {
            ids: Vec::new(),
            log_prob: 0.0,
            attention: Vec::new(),
        })
        .collect();
    let mut active: Vec<usize> = (0..limits.len()).collect();
    let mut tokens = vec![start; limits.len()];
    while !active.is_empty() {
        let logits = decoder.step(&tokens)?;
        let vocab = logits.len() / active.len();
        let picks: Vec<Result<(u32, f32)>> = active
            .par_iter()
            .enumerate()
            .map(|(row, &source)| {
                let rules = processor.rules(outputs[source].ids.len(), limits[source]);
                let logits = &logits[row * vocab..(row + 1) * vocab];
                Ok(processor.row(logits, rules, &outputs[source].ids)?.argmax())
            })
            .collect();
        if let Some(lens) = source_lens {
            let (weights, stride) = decoder.alignment()?;
            for (row, &source) in active.iter().enumerate() {
                let at = row * stride;
                outputs[source]
                    .attention
                    .push(weights[at..at + lens[source]].to_vec());
            }
        }
        let mut keep = Vec::with_capacity(active.len());
        for (row, (&source, pick)) in active.iter().zip(picks).enumerate() {
            let (best, log_prob) = pick.map_err(|e| with_source(e, source))?;
            let output = &mut outputs[source];
            output.ids.push(best);
            output.log_prob += log_prob;
            let done = best == eos || output.ids.len() >= limits[source];
            if !done {
                keep.push(row as u32);
            }
        }
        let next: Vec<usize> = keep.iter().map(|&r| active[r as usize]).collect();
        if next.len() != active.len() && !next.is_empty() {
            decoder.keep_sources(&keep)?;
        }
        active = next;
        tokens = active
            .iter()
            .map(|&s| *outputs[s].ids.last().expect("every active row has a token"))
            .collect();
    }
    let penalty = processor.options.length_penalty;
    Ok(outputs
        .into_iter()
        .zip(limits)
        .map(|(output, &limit)| {
            let score = output.log_prob / (output.ids.len() as f32).powf(penalty);
            let length_limited = output.ids.len() >= limit
                && (output.ids.last() != Some(&eos)
                    || processor.options.forced_eos_token_id.is_some());
            vec![Hypothesis {
                ids: output.ids,
                score,
                length_limited,
                attention: output.attention,
            }]
        })
        .collect())
}

/// Names the batch position of the source a numerical error came from.
pub(super) fn with_source(error: MarianError, source: usize) -> MarianError {
    match error {
        MarianError::NotFinite(_) => {
            MarianError::NotFinite(format!(" for sentence {} of its batch", source + 1))
        }
        other => other,
    }
}
