//! Decoding options, in the spirit of transformers' `generate` and CTranslate2's
//! `TranslationOptions`: one plain struct, checked once before any work.

use crate::marian::config::{EarlyStopping, GenerationConfig, MarianConfig, LIMITS};
use crate::marian::error::{MarianError, Result};

/// Largest `max_length_ratio` accepted: beyond it the relative limit never binds anyway.
pub const MAX_LENGTH_RATIO: f32 = 1000.0;

/// Largest `repetition_penalty` accepted: beyond it every seen token is as good as banned.
pub const MAX_REPETITION_PENALTY: f32 = 1000.0;

/// Decoding options. Build them from the checkpoint with [`DecodeOptions::from_generation`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Beam width, 1 to [`LIMITS`]`.num_beams`; 1 selects greedy search.
    pub num_beams: usize,
    /// Exponent of the length normalisation: score = sum of log-probs / length^penalty.
    pub length_penalty: f32,
    /// When a beam search row stops.
    pub early_stopping: EarlyStopping,
    /// Most tokens generated per source, EOS included (1 to the model's positions).
    pub max_new_tokens: usize,
    /// Optional limit relative to the source: at most ⌈ratio × source tokens⌉ + 10 new tokens
    /// (and never more than `max_new_tokens`). `None` turns it off.
    pub max_length_ratio: Option<f32>,
    /// Fewest tokens generated before EOS may be chosen (at most `max_new_tokens`).
    pub min_new_tokens: usize,
    /// Hypotheses returned per source (1 to `num_beams`).
    pub num_return_sequences: usize,
    /// Tokens never generated (the padding token for opus-mt).
    pub bad_words_ids: Vec<u32>,
    /// Token forced at the last allowed step.
    pub forced_eos_token_id: Option<u32>,
    /// Whether log-probabilities are normalised again after the processors.
    pub renormalize_logits: bool,
    /// Never generate an n-gram of this size twice in one output (0: off), as transformers'
    /// `no_repeat_ngram_size`.
    pub no_repeat_ngram_size: usize,
    /// Divides positive and multiplies negative scores of tokens already in the output
    /// (1.0: off; above 1 discourages repetition), as transformers' `repetition_penalty`.
    pub repetition_penalty: f32,
}

impl DecodeOptions {
    /// The checkpoint's defaults (`generation_config.json`), as transformers would apply them.
    pub fn from_generation(g: &GenerationConfig) -> Self {
        Self {
            num_beams: g.num_beams,
            length_penalty: g.length_penalty,
            early_stopping: g.early_stopping,
            max_new_tokens: g
                .max_new_tokens
                .unwrap_or(g.max_length.saturating_sub(1))
                .max(1),
            max_length_ratio: None,
            min_new_tokens: g.min_new_tokens,
            num_return_sequences: g.num_return_sequences.min(g.num_beams),
            bad_words_ids: g.bad_words_ids.clone(),
            forced_eos_token_id: g.forced_eos_token_id,
            renormalize_logits: g.renormalize_logits,
            no_repeat_ngram_size: g.no_repeat_ngram_size,
            repetition_penalty: g.repetition_penalty,
        }
    }

    /// Every output exactly `n` tokens long (benchmarks): EOS is banned before the last step
    /// and, with a forced EOS, forced at it (`min_new_tokens = max_new_tokens = n`).
    pub fn with_exact_length(mut self, n: usize) -> Self {
        self.max_new_tokens = n;
        self.min_new_tokens = n;
        self.max_length_ratio = None;
        self
    }

    /// The number of new tokens allowed for a source of `source_len` tokens.
    pub fn limit_for(&self, source_len: usize) -> usize {
        let mut limit = self.max_new_tokens;
        if let Some(ratio) = self.max_length_ratio {
            // In f64 and compared before converting, so no ratio or length can overflow.
            let relative = (f64::from(ratio) * source_len as f64).ceil() + 10.0;
            if relative < limit as f64 {
                limit = (relative as usize).max(1);
            }
        }
        limit
    }

    /// Checks every option against its range and against `model` (vocabulary, positions).
    pub fn validate(&self, model: &MarianConfig) -> Result<()> {
        let range = |option: &'static str, value: usize, min: usize, max: usize, why: &str| {
            if value < min || value > max {
                return Err(MarianError::option(
                    option,
                    value,
                    format!("is out of range ({min} to {max}{why})"),
                ));
            }
            Ok(())
        };
        let positions = model.max_position_embeddings;
        range("num_beams", self.num_beams, 1, LIMITS.num_beams, "")?;
        range(
            "num_return_sequences",
            self.num_return_sequences,
            1,
            self.num_beams,
            ", at most num_beams",
        )?;
        range(
            "max_new_tokens",
            self.max_new_tokens,
            1,
            positions,
            ": the model's positions",
        )?;
        range(
            "min_new_tokens",
            self.min_new_tokens,
            0,
            self.max_new_tokens,
            ", at most max_new_tokens",
        )?;
        if !self.length_penalty.is_finite() {
            return Err(MarianError::option(
                "length_penalty",
                self.length_penalty,
                "must be a finite number",
            ));
        }
        range(
            "no_repeat_ngram_size",
            self.no_repeat_ngram_size,
            0,
            positions,
            ": the model's positions",
        )?;
        if !(self.repetition_penalty.is_finite()
            && self.repetition_penalty > 0.0
            && self.repetition_penalty <= MAX_REPETITION_PENALTY)
        {
            return Err(MarianError::option(
                "repetition_penalty",
                self.repetition_penalty,
                format!("must be a number above 0 and at most {MAX_REPETITION_PENALTY} (1 is off)"),
            ));
        }
        if let Some(ratio) = self.max_length_ratio {
            if !(ratio.is_finite() && ratio > 0.0 && ratio <= MAX_LENGTH_RATIO) {
                return Err(MarianError::option(
                    "max_length_ratio",
                    ratio,
                    format!("must be a number above 0 and at most {MAX_LENGTH_RATIO} (or off)"),
                ));
            }
        }
        let vocab = model.vocab_size;
        for (option, id) in self
            .bad_words_ids
            .iter()
            .map(|&id| ("bad_words_ids", id))
            .chain(
                self.forced_eos_token_id
                    .map(|id| ("forced_eos_token_id", id)),
            )
        {
            if id as usize >= vocab {
                return Err(MarianError::option(
                    option,
                    id,
                    format!("is outside the vocabulary ({vocab} ids)"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marian::config::opus_mt_fr_en;

    fn options() -> DecodeOptions {
        DecodeOptions::from_generation(&opus_mt_fr_en().1)
    }

    #[test]
    fn relative_limit_never_overflows() {
        let mut o = options();
        o.max_new_tokens = 100;
        o.max_length_ratio = Some(2.0);
        assert_eq!(o.limit_for(5), 20);
        assert_eq!(o.limit_for(80), 100);
        o.max_length_ratio = Some(f32::MAX);
        assert_eq!(o.limit_for(usize::MAX), 100);
        o.max_length_ratio = Some(f32::MIN_POSITIVE);
        assert_eq!(o.limit_for(3), 11);
        o.max_length_ratio = None;
        assert_eq!(o.limit_for(400), 100);
        assert_eq!(o.clone().with_exact_length(7).limit_for(80), 7);
    }

    #[test]
    fn out_of_range_options_name_the_option() {
        let config = opus_mt_fr_en().0;
        assert!(options().validate(&config).is_ok());
        type Change = Box<dyn Fn(&mut DecodeOptions)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "max_length_ratio",
                Box::new(|o| o.max_length_ratio = Some(f32::INFINITY)),
            ),
            (
                "max_length_ratio",
                Box::new(|o| o.max_length_ratio = Some(f32::NAN)),
            ),
            (
                "max_length_ratio",
                Box::new(|o| o.max_length_ratio = Some(0.0)),
            ),
            (
                "max_length_ratio",
                Box::new(|o| o.max_length_ratio = Some(-1.0)),
            ),
            ("num_beams", Box::new(|o| o.num_beams = 100_000_000)),
            ("num_beams", Box::new(|o| o.num_beams = 0)),
            (
                "num_return_sequences",
                Box::new(|o| o.num_return_sequences = 5),
            ),
            ("max_new_tokens", Box::new(|o| o.max_new_tokens = 513)),
            ("max_new_tokens", Box::new(|o| o.max_new_tokens = 0)),
            ("min_new_tokens", Box::new(|o| o.min_new_tokens = 600)),
            ("length_penalty", Box::new(|o| o.length_penalty = f32::NAN)),
            (
                "repetition_penalty",
                Box::new(|o| o.repetition_penalty = 0.0),
            ),
            (
                "repetition_penalty",
                Box::new(|o| o.repetition_penalty = f32::INFINITY),
            ),
            (
                "repetition_penalty",
                Box::new(|o| o.repetition_penalty = -1.2),
            ),
            (
                "no_repeat_ngram_size",
                Box::new(|o| o.no_repeat_ngram_size = 513),
            ),
            ("bad_words_ids", Box::new(|o| o.bad_words_ids = vec![59514])),
            (
                "forced_eos_token_id",
                Box::new(|o| o.forced_eos_token_id = Some(u32::MAX)),
            ),
        ];
        for (option, change) in cases {
            let mut o = options();
            change(&mut o);
            let err = o.validate(&config).unwrap_err().to_string();
            assert!(err.starts_with(option), "{option}: {err}");
        }
    }
}
