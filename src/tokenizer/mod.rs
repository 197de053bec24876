//! Marian (Opus-MT) tokenizer, id for id with transformers' `MarianTokenizer`.
//!
//! Opus-MT checkpoints ship two SentencePiece models (`source.spm`, `target.spm`), a
//! model vocabulary (`vocab.json`, plus `target_vocab.json` when `separate_vocabs` is set)
//! and `tokenizer_config.json`, but no `tokenizer.json`. At load time the SentencePiece
//! unigram models are rebuilt: SentencePiece's normalizer (its precompiled charsmap and
//! whitespace rules, ported in [`normalizer`]) feeds a `tokenizers` `Unigram` model built
//! from the spm pieces and scores; the resulting piece *strings* are then mapped
//! to model ids through the vocabulary, exactly like `MarianTokenizer` does: a piece
//! missing from the vocabulary becomes `<unk>`, and `</s>` is appended.
//!
//! A checkpoint that does ship a `tokenizer.json` is used as is.

mod normalizer;
mod spm;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use tokenizers::{Model, Tokenizer};

use spm::SpmEncoder;

/// SentencePiece's whitespace marker.
const SPIECE_UNDERLINE: char = '▁';

/// What can go wrong loading or running a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not what it should be (not JSON, not a SentencePiece model, a special
    /// token missing, an unsupported model type).
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Encoding failed inside the tokenizer library.
    #[error("tokenizing: {0}")]
    Encode(String),
    /// An id outside the vocabulary, or decoding failed inside the tokenizer library.
    #[error("decoding: {0}")]
    Decode(String),
}

type Result<T, E = TokenizerError> = std::result::Result<T, E>;

/// Tokenizer for Marian translation models: encodes source text, decodes target ids.
///
/// Cheap to share between threads (`Send + Sync`); all methods take `&self`.
pub struct MarianTokenizer {
    backend: Backend,
    eos_id: u32,
    unk_id: u32,
    pad_id: u32,
    vocab_size: usize,
}

enum Backend {
    /// Converted from the `.spm` files and `vocab.json`.
    Spm(Box<SpmBackend>),
    /// A ready `tokenizer.json`.
    Json(Box<Tokenizer>),
}

struct SpmBackend {
    /// Source-side encoder (what `encode` uses).
    source: SpmEncoder,
    /// Target-side encoder (what `encode_target` uses).
    target: SpmEncoder,
    /// Source vocabulary: piece -> model id.
    encoder: HashMap<String, u32>,
    /// Target vocabulary when `separate_vocabs` is set.
    target_encoder: Option<HashMap<String, u32>>,
    /// Decoding vocabulary: model id -> piece.
    decoder: HashMap<u32, String>,
    /// The spm model `decode` joins pieces with. transformers uses the *source* spm unless
    /// `separate_vocabs` is set (its `use_source_tokenizer` default).
    decode_with_source: bool,
    /// Special token strings (eos, unk, pad): split out of the text before SentencePiece
    /// runs, skipped when decoding.
    special_tokens: Vec<String>,
    /// transformers' `clean_up_tokenization_spaces` (false unless the config says so).
    clean_up_tokenization_spaces: bool,
}

/// The subset of `tokenizer_config.json` that changes tokenization.
#[derive(serde::Deserialize, Default)]
struct TokenizerConfig {
    #[serde(default)]
    separate_vocabs: bool,
    #[serde(default)]
    clean_up_tokenization_spaces: bool,
    eos_token: Option<serde_json::Value>,
    unk_token: Option<serde_json::Value>,
    pad_token: Option<serde_json::Value>,
}

impl MarianTokenizer {
    /// Loads the tokenizer of the checkpoint in `dir`: `tokenizer.json` when present, else
    /// `source.spm`, `target.spm`, `vocab.json` (+ `target_vocab.json`) and the optional
    /// `tokenizer_config.json`. Errors name the file at fault.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let json_path = dir.join("tokenizer.json");
        if json_path.exists() {
            return Self::from_tokenizer_json(&json_path);
        }

        let config_path = dir.join("tokenizer_config.json");
        let config: TokenizerConfig = if config_path.exists() {
            read_json(&config_path)?
        } else {
            TokenizerConfig::default()
        };
        let token_name = |value: &Option<serde_json::Value>, default: &str| -> String {
            // transformers stores special tokens either as a string or as an AddedToken dict.
            match value {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Object(map)) => map
                    .get("content")
                    .and_then(|c| c.as_str())
                    .unwrap_or(default)
                    .to_string(),
                _ => default.to_string(),
            }
        };
        let eos = token_name(&config.eos_token, "</s>");
        let unk = token_name(&config.unk_token, "<unk>");
        let pad = token_name(&config.pad_token, "<pad>");

        let source = SpmEncoder::from_file(&dir.join("source.spm"))?;
        let target = SpmEncoder::from_file(&dir.join("target.spm"))?;
        let vocab_path = dir.join("vocab.json");
        let encoder = load_vocab(&vocab_path)?;
        let target_encoder = if config.separate_vocabs {
            Some(load_vocab(&dir.join("target_vocab.json"))?)
        } else {
            None
        };

        let lookup = |name: &str| {
            encoder
                .get(name)
                .copied()
                .ok_or_else(|| TokenizerError::Invalid {
                    path: vocab_path.clone(),
                    problem: format!("no `{name}` token"),
                })
        };
        let (eos_id, unk_id, pad_id) = (lookup(&eos)?, lookup(&unk)?, lookup(&pad)?);
        let decoder = target_encoder
            .as_ref()
            .unwrap_or(&encoder)
            .iter()
            .map(|(piece, &id)| (id, piece.clone()))
            .collect();
        let vocab_size = encoder.len();
        let backend = SpmBackend {
            source,
            target,
            encoder,
            target_encoder,
            decoder,
            decode_with_source: !config.separate_vocabs,
            special_tokens: vec![eos, unk, pad],
            clean_up_tokenization_spaces: config.clean_up_tokenization_spaces,
        };
        Ok(Self {
            backend: Backend::Spm(Box::new(backend)),
            eos_id,
            unk_id,
            pad_id,
            vocab_size,
        })
    }

    fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| TokenizerError::Invalid {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        let id = |name: &str| {
            tokenizer
                .token_to_id(name)
                .ok_or_else(|| TokenizerError::Invalid {
                    path: path.to_path_buf(),
                    problem: format!("no `{name}` token"),
                })
        };
        let (eos_id, unk_id, pad_id) = (id("</s>")?, id("<unk>")?, id("<pad>")?);
        let vocab_size = tokenizer.get_vocab_size(true);
        Ok(Self {
            backend: Backend::Json(Box::new(tokenizer)),
            eos_id,
            unk_id,
            pad_id,
            vocab_size,
        })
    }

    /// Source-side model ids for `text`, ending with `</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::Spm(b) => {
                b.encode(text, &b.source, &b.encoder, self.unk_id, self.eos_id, None)
            }
            Backend::Json(t) => {
                let encoding = t
                    .encode(text, true)
                    .map_err(|e| TokenizerError::Encode(e.to_string()))?;
                Ok(encoding.get_ids().to_vec())
            }
        }
    }

    /// [`Self::encode`], with the byte range in `text` of every token but the final `</s>`:
    /// the text the token stands for, without surrounding whitespace (a token of whitespace
    /// alone, or one the normalizer inserted, gets an empty range where it stands).
    pub fn encode_with_spans(&self, text: &str) -> Result<(Vec<u32>, Vec<Range<usize>>)> {
        match &self.backend {
            Backend::Spm(b) => {
                let mut spans = Vec::new();
                let ids = b.encode(
                    text,
                    &b.source,
                    &b.encoder,
                    self.unk_id,
                    self.eos_id,
                    Some(&mut spans),
                )?;
                Ok((ids, spans))
            }
            Backend::Json(t) => {
                let encoding = t
                    .encode(text, true)
                    .map_err(|e| TokenizerError::Encode(e.to_string()))?;
                let ids = encoding.get_ids().to_vec();
                let mut spans: Vec<Range<usize>> = encoding
                    .get_offsets()
                    .iter()
                    .map(|&(start, end)| {
                        trim_span(text, start.min(text.len())..end.min(text.len()))
                    })
                    .collect();
                spans.truncate(ids.len().saturating_sub(1));
                Ok((ids, spans))
            }
        }
    }

    /// Target-side model ids for `text` (transformers' `text_target=`), ending with `</s>`.
    /// Useful for scoring references; translation itself only needs [`Self::encode`].
    pub fn encode_target(&self, text: &str) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::Spm(b) => {
                let vocab = b.target_encoder.as_ref().unwrap_or(&b.encoder);
                let unk = vocab
                    .get(&b.special_tokens[1])
                    .copied()
                    .unwrap_or(self.unk_id);
                let eos = vocab
                    .get(&b.special_tokens[0])
                    .copied()
                    .unwrap_or(self.eos_id);
                b.encode(text, &b.target, vocab, unk, eos, None)
            }
            // A tokenizer.json has a single pipeline for both sides.
            Backend::Json(_) => self.encode(text),
        }
    }

    /// Encodes several source texts; see [`Self::encode`].
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts.iter().map(|text| self.encode(text)).collect()
    }

    /// [`Self::decode`], with the byte range in the text of each id: what the text gained
    /// when the id was decoded after the ones before it, without surrounding whitespace
    /// (empty for special tokens and for pieces that print nothing).
    pub fn decode_with_spans(&self, ids: &[u32]) -> Result<(String, Vec<Range<usize>>)> {
        let text = self.decode(ids)?;
        let mut spans = Vec::with_capacity(ids.len());
        let mut previous = 0;
        for end in 1..=ids.len() {
            // Decoding is not always prefix-stable (trimming, clean-up of spaces before
            // punctuation): a prefix counts for as much of the text as it shares with it.
            let prefix = if end == ids.len() {
                text.len()
            } else {
                common_prefix(&text, &self.decode(&ids[..end])?)
            };
            let reached = prefix.max(previous);
            spans.push(trim_span(&text, previous..reached));
            previous = reached;
        }
        Ok((text, spans))
    }

    /// Target ids -> text, skipping special tokens (`</s>`, `<pad>`, `<unk>`), like
    /// `tokenizer.decode(ids, skip_special_tokens=True)`. Errors on ids outside the
    /// vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.backend {
            Backend::Spm(b) => b.decode(ids, [self.eos_id, self.unk_id, self.pad_id]),
            Backend::Json(t) => {
                if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
                    return Err(TokenizerError::Decode(format!(
                        "token id {bad} is outside the vocabulary ({} ids)",
                        self.vocab_size
                    )));
                }
                t.decode(ids, true)
                    .map_err(|e| TokenizerError::Decode(e.to_string()))
            }
        }
    }

    /// Id of `</s>`, appended to every encoded text and ending generation.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Id of `<pad>`, used for batch padding (and as Marian's decoder start token).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Id of `<unk>`, given to pieces the vocabulary lacks.
    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// Number of entries in the (source) vocabulary, as transformers' `vocab_size`.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

impl SpmBackend {
    /// transformers' `tokenize` + `convert_tokens_to_ids` + `build_inputs_with_special_tokens`.
    /// With `spans`, also the byte range in `text` of each token but `</s>` (see
    /// [`MarianTokenizer::encode_with_spans`]).
    fn encode(
        &self,
        text: &str,
        spm: &SpmEncoder,
        vocab: &HashMap<String, u32>,
        unk_id: u32,
        eos_id: u32,
        mut spans: Option<&mut Vec<Range<usize>>>,
    ) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let to_id = |piece: &str| vocab.get(piece).copied().unwrap_or(unk_id);
        // Where a subslice of `text` starts in it.
        let offset_of = |part: &str| part.as_ptr() as usize - text.as_ptr() as usize;
        // Special tokens written in the text are tokens, not text to segment.
        for (chunk, is_special) in split_on_special_tokens(text, &self.special_tokens) {
            let start = offset_of(chunk);
            if is_special {
                ids.push(to_id(chunk));
                if let Some(spans) = spans.as_deref_mut() {
                    spans.push(start..start + chunk.len());
                }
                continue;
            }
            // `remove_language_code`: a leading `>>xx<<` is one token, even one the vocabulary
            // lacks (then it is `<unk>`).
            let mut rest = chunk;
            if let Some(end) = chunk.strip_prefix(">>").and_then(|_| chunk.find("<<")) {
                ids.push(to_id(&chunk[..end + 2]));
                if let Some(spans) = spans.as_deref_mut() {
                    spans.push(start..start + end + 2);
                }
                rest = &chunk[end + 2..];
            }
            let (normalized, offsets) = match spans {
                Some(_) => spm.normalizer.normalize_with_offsets(rest),
                None => (spm.normalizer.normalize(rest), Vec::new()),
            };
            if normalized.is_empty() {
                continue;
            }
            let pieces = spm
                .unigram
                .tokenize(&normalized)
                .map_err(|e| TokenizerError::Encode(e.to_string()))?;
            // Map piece strings, not spm ids: an unknown span comes back as its own text,
            // which the joint vocabulary may still know (from the other language's model).
            ids.extend(pieces.iter().map(|piece| to_id(&piece.value)));
            if let Some(spans) = spans.as_deref_mut() {
                let base = offset_of(rest);
                for piece in &pieces {
                    let (from, to) = piece.offsets;
                    let span = match (
                        offsets.get(from),
                        to.checked_sub(1).and_then(|l| offsets.get(l)),
                    ) {
                        (Some(first), Some(last)) if from < to => {
                            base + first.start..base + last.end.max(first.start)
                        }
                        _ => base + rest.len()..base + rest.len(),
                    };
                    spans.push(trim_span(text, span));
                }
            }
        }
        ids.push(eos_id);
        Ok(ids)
    }

    /// transformers' `_decode` with `skip_special_tokens=True`.
    fn decode(&self, ids: &[u32], skip: [u32; 3]) -> Result<String> {
        let spm = if self.decode_with_source {
            &self.source
        } else {
            &self.target
        };
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids {
            if skip.contains(&id) {
                continue;
            }
            // Ids the vocabulary lacks fall back to the spm's own piece, as transformers does.
            let piece = match self.decoder.get(&id) {
                Some(piece) => piece.as_str(),
                None => spm
                    .pieces
                    .get(id as usize)
                    .map(String::as_str)
                    .ok_or_else(|| {
                        TokenizerError::Decode(format!("token id {id} is outside the vocabulary"))
                    })?,
            };
            tokens.push(piece);
        }

        // `convert_tokens_to_string`: special tokens are kept verbatim, followed by a space.
        let mut out = String::new();
        let mut run: Vec<&str> = Vec::new();
        for token in tokens {
            if self.special_tokens.iter().any(|s| s == token) {
                out.push_str(&spm.decode_pieces(&run));
                out.push_str(token);
                out.push(' ');
                run.clear();
            } else {
                run.push(token);
            }
        }
        out.push_str(&spm.decode_pieces(&run));
        let out = out.replace(SPIECE_UNDERLINE, " ");
        let out = out.trim_matches(is_python_space).to_string();
        Ok(if self.clean_up_tokenization_spaces {
            clean_up_tokenization(&out)
        } else {
            out
        })
    }
}

/// `span` without the whitespace at its ends (an all-whitespace span becomes empty at its
/// end).
fn trim_span(text: &str, span: Range<usize>) -> Range<usize> {
    let Some(part) = text.get(span.clone()) else {
        return span.end.min(text.len())..span.end.min(text.len());
    };
    let start = span.start + (part.len() - part.trim_start().len());
    let end = span.start + part.trim_end().len();
    if start >= end {
        span.end..span.end
    } else {
        start..end
    }
}

/// The length in bytes of the longest common prefix of `a` and `b`, on a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

/// Reads a Marian vocabulary (`{"piece": id}`).
fn load_vocab(path: &Path) -> Result<HashMap<String, u32>> {
    read_json(path)
}

/// Reads and parses a JSON file, with errors naming it.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| TokenizerError::Invalid {
        path: path.to_path_buf(),
        problem: format!("not valid JSON: {e}"),
    })
}

/// transformers' added-token trie split: cuts `text` at every occurrence of a special token,
/// earliest first, and flags the token chunks. Empty chunks are dropped.
fn split_on_special_tokens<'t>(text: &'t str, specials: &[String]) -> Vec<(&'t str, bool)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        // Longest special token starting here, if any.
        let hit = specials
            .iter()
            .filter(|s| !s.is_empty() && rest.starts_with(s.as_str()))
            .map(String::len)
            .max();
        match hit {
            Some(len) => {
                if start < pos {
                    chunks.push((&text[start..pos], false));
                }
                chunks.push((&text[pos..pos + len], true));
                pos += len;
                start = pos;
            }
            None => pos += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if start < text.len() {
        chunks.push((&text[start..], false));
    }
    chunks
}

/// Python's `str.isspace`, which `str.strip()` uses: Rust's whitespace plus the ASCII
/// information separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// transformers' `clean_up_tokenization` (English-centric space fixes).
fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_special_tokens() {
        let specials = vec!["</s>".to_string(), "<unk>".to_string()];
        assert_eq!(
            split_on_special_tokens("a</s>b<unk></s>", &specials),
            vec![
                ("a", false),
                ("</s>", true),
                ("b", false),
                ("<unk>", true),
                ("</s>", true)
            ]
        );
        assert!(split_on_special_tokens("", &specials).is_empty());
    }

    #[test]
    fn python_strip_rules() {
        assert_eq!("\u{1f} a \u{85}".trim_matches(is_python_space), "a");
    }

    #[test]
    fn tokenizer_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MarianTokenizer>();
    }
}
