//! Sentences in, translations out: deduplication, tokenisation, long-sentence splitting,
//! length-sorted batches, generation and detokenisation, with results in input order.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::batching::{plan_batches, BatchLimits};
use crate::flags::{length_ratio_out_of_range, output_flags, Flag, Flags};
use crate::long_sentence::split_long_sentence;
use crate::marian::{
    generate, generate_aligned, hard_alignment, DecodeOptions, Hypothesis, MarianModel,
    ModelOptions,
};
use crate::tokenizer::MarianTokenizer;

/// One translated sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The English text.
    pub text: String,
    /// Length-normalised log-probability of the best hypothesis (mean over the parts of a split
    /// sentence).
    pub score: f32,
    /// Source tokens the model read (all parts of a split sentence).
    pub source_tokens: usize,
    /// Target tokens it generated, `</s>` included.
    pub target_tokens: usize,
    /// Signs that the translation may be broken (a loop, a length out of proportion, the
    /// length limit reached).
    pub flags: Flags,
    /// The other hypotheses of the n-best list, best first, when more than one sequence
    /// was asked for (`DecodeOptions::num_return_sequences`); empty otherwise.
    pub alternatives: Vec<String>,
    /// Which source token each target token came from, when
    /// [`TranslatorOptions::alignments`] is set.
    pub alignment: Option<Alignment>,
}

/// The model's word alignment of one translated sentence: its last decoder layer's
/// cross-attention, head 0 (what Marian's guided-alignment training supervises), made hard.
///
/// Tokens are SentencePiece tokens, numbered from 0 without `</s>`; for a sentence translated
/// in parts, the parts' tokens are numbered on, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alignment {
    /// Byte range of each source token in the source sentence as given. A token that covers
    /// no text of its own (the normalizer inserted it) has an empty range at its position.
    pub source: Vec<Range<usize>>,
    /// Byte range of each target token in [`Translation::text`] (empty for tokens that
    /// print nothing).
    pub target: Vec<Range<usize>>,
    /// (source token, target token) pairs, sorted by target token: every target token is
    /// aligned to exactly one source token, the one its row of attention weighs most.
    pub pairs: Vec<(usize, usize)>,
}

impl Alignment {
    /// Marian's `--alignment hard` text: `"0-0 1-2 ..."`, source-target pairs.
    pub fn to_pharaoh(&self) -> String {
        let mut out = String::new();
        for (i, (s, t)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&format!("{s}-{t}"));
        }
        out
    }
}

/// What the translator reports while it works; the caller decides how to show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A sentence had more than `limit` tokens and was translated in `parts` pieces.
    LongSentenceSplit {
        /// The sentence, as given.
        sentence: String,
        /// Its token count.
        tokens: usize,
        /// The limit it exceeded.
        limit: usize,
        /// How many parts it was cut into.
        parts: usize,
    },
    /// `sentences` more input sentences are translated (every occurrence of a repeated
    /// sentence, once all parts of a split one are): over one call the events add up to
    /// exactly the number of sentences given.
    Progress {
        /// Sentences finished by the last batch.
        sentences: usize,
    },
}

/// Settings of a [`Translator`].
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatorOptions {
    /// Search settings.
    pub decode: DecodeOptions,
    /// Batch limits.
    pub batch: BatchLimits,
    /// Sentences with more source tokens than this are split at clause boundaries.
    pub max_sentence_tokens: usize,
    /// Also compute each translation's [`Alignment`] (one teacher-forced pass per batch).
    pub alignments: bool,
}

/// A loaded model and tokenizer, ready to translate sentences.
pub struct Translator {
    model: MarianModel,
    tokenizer: MarianTokenizer,
}

/// The pieces of a unique sentence sent to the model.
struct Unit {
    sentence: usize,
    ids: Vec<u32>,
    /// With alignments: the byte range of each token but `</s>` in the sentence.
    spans: Vec<Range<usize>>,
}

impl Translator {
    /// Loads the model and tokenizer files of a checkpoint folder.
    pub fn load(dir: &Path, options: &ModelOptions) -> Result<Self> {
        let tokenizer = MarianTokenizer::from_dir(dir)?;
        let model = MarianModel::load(dir, options)?;
        Self::new(model, tokenizer).with_context(|| dir.display().to_string())
    }

    /// Pairs a model with its tokenizer, checking that their vocabularies agree.
    pub fn new(model: MarianModel, tokenizer: MarianTokenizer) -> Result<Self> {
        if tokenizer.vocab_size() > model.config().vocab_size {
            bail!(
                "the tokenizer has {} ids but the model only {}",
                tokenizer.vocab_size(),
                model.config().vocab_size
            );
        }
        Ok(Self { model, tokenizer })
    }

    /// The model.
    pub fn model(&self) -> &MarianModel {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &MarianTokenizer {
        &self.tokenizer
    }

    /// The checkpoint's decoding defaults as options.
    pub fn default_decode_options(&self) -> DecodeOptions {
        DecodeOptions::from_generation(self.model.generation_config())
    }

    /// Checks `options` against this model before any work.
    pub fn validate(&self, options: &TranslatorOptions) -> Result<()> {
        options.decode.validate(self.model.config())?;
        options.batch.validate()?;
        let positions = self.model.config().max_position_embeddings;
        if !(2..=positions).contains(&options.max_sentence_tokens) {
            bail!(
                "max_sentence_tokens = {} is out of range (2 to {positions}, the model's positions)",
                options.max_sentence_tokens
            );
        }
        Ok(())
    }

    /// Translates sentences; returns one translation per input, in order. A sentence that
    /// occurs several times is translated once.
    pub fn translate(
        &self,
        sentences: &[&str],
        options: &TranslatorOptions,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<Translation>> {
        let mut out: Vec<Option<Translation>> = vec![None; sentences.len()];
        self.translate_each(sentences, options, on_event, &mut |index, translation| {
            out[index] = Some(translation);
            Ok(())
        })?;
        out.into_iter()
            .map(|t| t.context("a batch left a sentence untranslated"))
            .collect()
    }

    /// Translates sentences, handing each translation to `on_done` (with the sentence's
    /// index in `sentences`) as soon as the batch that finishes it is done, so that a caller
    /// can store results while the rest is being translated. Every occurrence of a repeated
    /// sentence is handed over; the order is the batches', not the input's.
    pub fn translate_each(
        &self,
        sentences: &[&str],
        options: &TranslatorOptions,
        on_event: &mut dyn FnMut(Event),
        on_done: &mut dyn FnMut(usize, Translation) -> Result<()>,
    ) -> Result<()> {
        self.validate(options)?;
        // Unique sentences, in first-occurrence order, and where each occurs.
        let mut unique: Vec<&str> = Vec::new();
        let mut occurrences: Vec<Vec<usize>> = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        for (index, &s) in sentences.iter().enumerate() {
            let slot = *index_of.entry(s).or_insert_with(|| {
                unique.push(s);
                occurrences.push(Vec::new());
                unique.len() - 1
            });
            occurrences[slot].push(index);
        }

        let units = self.make_units(
            &unique,
            options.max_sentence_tokens,
            options.alignments,
            on_event,
        )?;
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); unique.len()];
        for (u, unit) in units.iter().enumerate() {
            parts[unit.sentence].push(u);
        }
        let mut parts_left: Vec<usize> = parts.iter().map(Vec::len).collect();
        let lengths: Vec<usize> = units.iter().map(|u| u.ids.len()).collect();
        let mut outputs: Vec<Option<Vec<Hypothesis>>> = vec![None; units.len()];
        for batch in plan_batches(&lengths, options.batch)? {
            let sources: Vec<Vec<u32>> = batch.iter().map(|&i| units[i].ids.clone()).collect();
            let hypotheses = if options.alignments {
                generate_aligned(&self.model, &sources, &options.decode)?
            } else {
                generate(&self.model, &sources, &options.decode)?
            };
            let mut finished = 0;
            for (&unit, hyps) in batch.iter().zip(hypotheses) {
                if hyps.is_empty() {
                    bail!("the search returned no hypothesis");
                }
                outputs[unit] = Some(hyps);
                let sentence = units[unit].sentence;
                parts_left[sentence] -= 1;
                if parts_left[sentence] > 0 {
                    continue;
                }
                let translation =
                    self.join_parts(&units, &parts[sentence], &mut outputs, options.alignments)?;
                finished += occurrences[sentence].len();
                for &index in &occurrences[sentence] {
                    on_done(index, translation.clone())?;
                }
            }
            on_event(Event::Progress {
                sentences: finished,
            });
        }
        Ok(())
    }

    /// The translation of a sentence from the outputs of its parts (taken out of `outputs`):
    /// the parts' best hypotheses joined, and the n-best alternatives joined rank by rank (a
    /// part with fewer hypotheses gives its last one).
    fn join_parts(
        &self,
        units: &[Unit],
        parts: &[usize],
        outputs: &mut [Option<Vec<Hypothesis>>],
        alignments: bool,
    ) -> Result<Translation> {
        let eos = self.model.config().eos_token_id;
        let without_eos = |ids: &[u32]| ids.strip_suffix(&[eos]).map_or(ids.len(), <[u32]>::len);
        let mut nbest: Vec<Vec<Hypothesis>> = Vec::with_capacity(parts.len());
        for &u in parts {
            nbest.push(
                outputs[u]
                    .take()
                    .context("a batch left a sentence untranslated")?,
            );
        }
        let mut texts = Vec::with_capacity(parts.len());
        let mut target_spans = Vec::with_capacity(parts.len());
        let mut score = 0f32;
        let mut flags = Flags::NONE;
        let (mut source_tokens, mut target_tokens) = (0, 0);
        // Token counts without the end tokens, for the length-ratio flag.
        let (mut source_words, mut target_words) = (0, 0);
        for (&u, hyps) in parts.iter().zip(&nbest) {
            let hypothesis = &hyps[0];
            let ids = &hypothesis.ids;
            if alignments {
                let (text, spans) = self.tokenizer.decode_with_spans(ids)?;
                texts.push(text);
                target_spans.push(spans);
            } else {
                texts.push(self.tokenizer.decode(ids)?);
            }
            score += hypothesis.score;
            let generated = &ids[..without_eos(ids)];
            flags = flags.union(output_flags(generated, hypothesis.length_limited));
            source_tokens += units[u].ids.len();
            target_tokens += ids.len();
            source_words += without_eos(&units[u].ids);
            target_words += generated.len();
        }
        if length_ratio_out_of_range(source_words, target_words) {
            flags = flags.with(Flag::LengthRatio);
        }
        let ranks = nbest.iter().map(Vec::len).max().unwrap_or(1);
        let mut alternatives = Vec::with_capacity(ranks.saturating_sub(1));
        for rank in 1..ranks {
            let mut pieces = Vec::with_capacity(parts.len());
            for hyps in &nbest {
                let hypothesis = &hyps[rank.min(hyps.len() - 1)];
                pieces.push(self.tokenizer.decode(&hypothesis.ids)?);
            }
            alternatives.push(join_texts(&pieces));
        }
        let alignment = alignments.then(|| {
            let hypotheses: Vec<&Hypothesis> = nbest.iter().map(|h| &h[0]).collect();
            let units: Vec<&Unit> = parts.iter().map(|&u| &units[u]).collect();
            join_alignments(&units, &hypotheses, &texts, &target_spans, eos)
        });
        Ok(Translation {
            text: join_texts(&texts),
            score: score / parts.len().max(1) as f32,
            source_tokens,
            target_tokens,
            flags,
            alternatives,
            alignment,
        })
    }

    fn make_units(
        &self,
        unique: &[&str],
        limit: usize,
        alignments: bool,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<Unit>> {
        // Ids, and with alignments the token spans shifted by `offset`.
        let encode = |text: &str, offset: usize| -> Result<(Vec<u32>, Vec<Range<usize>>)> {
            if alignments {
                let (ids, spans) = self.tokenizer.encode_with_spans(text)?;
                let spans = spans
                    .into_iter()
                    .map(|s| s.start + offset..s.end + offset)
                    .collect();
                Ok((ids, spans))
            } else {
                Ok((self.tokenizer.encode(text)?, Vec::new()))
            }
        };
        let positions = self.model.config().max_position_embeddings;
        let limit = limit.clamp(2, positions);
        let mut units = Vec::with_capacity(unique.len());
        for (sentence, &text) in unique.iter().enumerate() {
            let (ids, spans) = encode(text, 0)?;
            if ids.len() <= limit {
                units.push(Unit {
                    sentence,
                    ids,
                    spans,
                });
                continue;
            }
            let mut count =
                |piece: &str| -> Result<usize> { Ok(self.tokenizer.encode(piece)?.len()) };
            let parts = split_long_sentence(text, limit, &mut count)?;
            on_event(Event::LongSentenceSplit {
                sentence: text.to_string(),
                tokens: ids.len(),
                limit,
                parts: parts.len(),
            });
            for range in parts {
                let (ids, spans) = encode(&text[range.clone()], range.start)?;
                // A single character can still exceed a tiny limit; never drop text, but never
                // exceed the model's positions either.
                if ids.len() > positions {
                    bail!("a piece of a long sentence still has {} tokens", ids.len());
                }
                units.push(Unit {
                    sentence,
                    ids,
                    spans,
                });
            }
        }
        Ok(units)
    }
}

/// The texts of a sentence's parts as one text: trimmed, empty parts dropped, one space
/// between parts.
fn join_texts(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One sentence's alignment from its parts: the parts' tokens numbered on, and their target
/// spans moved to where [`join_texts`] puts each part's text.
fn join_alignments(
    units: &[&Unit],
    hypotheses: &[&Hypothesis],
    texts: &[String],
    target_spans: &[Vec<Range<usize>>],
    eos: u32,
) -> Alignment {
    let mut alignment = Alignment::default();
    let mut at = 0usize; // where the next part's text starts in the joined text
    let mut written = false;
    for (((unit, hypothesis), text), spans) in
        units.iter().zip(hypotheses).zip(texts).zip(target_spans)
    {
        let ids = &hypothesis.ids;
        let tokens = if ids.last() == Some(&eos) {
            ids.len() - 1
        } else {
            ids.len()
        };
        let (source_base, target_base) = (alignment.source.len(), alignment.target.len());
        alignment.source.extend(unit.spans.iter().cloned());
        let trimmed = text.trim();
        let lead = text.len() - text.trim_start().len();
        if !trimmed.is_empty() && written {
            at += 1;
        }
        let inside = lead..lead + trimmed.len();
        alignment
            .target
            .extend(spans[..tokens.min(spans.len())].iter().map(|span| {
                let start = span.start.clamp(inside.start, inside.end) - lead + at;
                let end = span.end.clamp(inside.start, inside.end) - lead + at;
                start..end
            }));
        let rows = &hypothesis.attention[..tokens.min(hypothesis.attention.len())];
        alignment.pairs.extend(
            hard_alignment(rows)
                .into_iter()
                .map(|(s, t)| (s + source_base, t + target_base)),
        );
        if !trimmed.is_empty() {
            at += trimmed.len();
            written = true;
        }
    }
    alignment
}
