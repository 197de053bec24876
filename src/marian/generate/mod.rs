//! Greedy and beam search over a batch of sources, reproducing transformers' `generate`.
//!
//! The search runs on plain `f32` rows: the model returns one row of logits per beam, and the
//! selection (logits processors, log-softmax, top-k, finished hypotheses) follows transformers
//! 5's vectorised `_beam_search` and `_sample` step for step, including its `-1e9` masking
//! arithmetic, so that the same checkpoint yields the same ids and scores.

mod beam;
mod greedy;
mod options;
mod processors;

pub use options::{DecodeOptions, MAX_LENGTH_RATIO, MAX_REPETITION_PENALTY};

use super::error::Result;
use super::model::MarianModel;
use processors::{Processor, Space};

/// One output of the search: generated ids (without the decoder start token, with the final
/// EOS when one was generated) and score = sum of log-probs / len(ids)^length_penalty.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Generated token ids.
    pub ids: Vec<u32>,
    /// Length-normalised log-probability, as transformers' `sequences_scores`.
    pub score: f32,
    /// Whether generation stopped at the length limit rather than by choosing EOS (a forced
    /// EOS at the limit counts as stopped by the limit).
    pub length_limited: bool,
    /// With [`generate_aligned`]: for each generated token, the model's alignment weights
    /// over the source's tokens (see [`crate::marian::align`]; the same values a
    /// teacher-forced pass over `ids` gives). Empty otherwise.
    pub attention: Vec<Vec<f32>>,
}

/// Translates a batch of tokenised sources (each ending with EOS): returns, per source,
/// `num_return_sequences` hypotheses, best first. Options are validated first.
pub fn generate(
    model: &MarianModel,
    sources: &[Vec<u32>],
    options: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    search(model, sources, options, false)
}

/// [`generate`], with every hypothesis's [`Hypothesis::attention`]: the alignment weights are
/// read off the search's own decoder steps (one head's softmax per row and step), so no
/// second pass over the hypotheses is needed. The ids and scores are those of [`generate`].
pub fn generate_aligned(
    model: &MarianModel,
    sources: &[Vec<u32>],
    options: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    search(model, sources, options, true)
}

fn search(
    model: &MarianModel,
    sources: &[Vec<u32>],
    options: &DecodeOptions,
    alignment: bool,
) -> Result<Vec<Vec<Hypothesis>>> {
    options.validate(model.config())?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let limits: Vec<usize> = sources.iter().map(|s| options.limit_for(s.len())).collect();
    let capacity = limits.iter().copied().max().unwrap_or(1);
    let processor = Processor {
        options,
        eos: model.config().eos_token_id,
        start: model.config().decoder_start_token_id,
        space: if options.num_beams == 1 {
            Space::Logits
        } else {
            Space::LogProbs
        },
        isa: model.float_isa(),
    };
    model.run(|| {
        let encoded = model.encode(sources)?;
        let mut decoder = model.start_decoding(&encoded, options.num_beams, capacity)?;
        let start = model.config().decoder_start_token_id;
        let source_lens: Option<Vec<usize>> = alignment.then(|| {
            decoder.record_alignment();
            sources.iter().map(Vec::len).collect()
        });
        let source_lens = source_lens.as_deref();
        if options.num_beams == 1 {
            greedy::search(&mut decoder, &processor, &limits, start, source_lens)
        } else {
            beam::search(&mut decoder, &processor, &limits, start, source_lens)
        }
    })
}
