//! Typed views of a Marian checkpoint's `config.json` and `generation_config.json`.
//!
//! Every field that changes the model's arithmetic is read and checked: a value this engine does
//! not implement is an error naming the field, never a silently different model. Sizes are
//! checked against [`LIMITS`] before anything is allocated, so a hostile `config.json` cannot
//! make the process allocate without bound or reach a panic.

use std::path::Path;

use serde_json::Value;

use super::error::{MarianError, Result};

/// The largest sizes a checkpoint may declare. They are far above every published Marian
/// model (opus-mt-tc-big: d_model 1024, 12+12 layers, ffn 4096, vocabulary 57k) and keep every
/// size computation far from overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `d_model`.
    pub d_model: usize,
    /// Most layers on either side.
    pub layers: usize,
    /// Most attention heads.
    pub heads: usize,
    /// Largest feed-forward size.
    pub ffn_dim: usize,
    /// Largest vocabulary.
    pub vocab_size: usize,
    /// Most positions (the longest sequence).
    pub max_position_embeddings: usize,
    /// Most beams.
    pub num_beams: usize,
}

/// The limits every checkpoint and decoding option is checked against.
pub const LIMITS: Limits = Limits {
    d_model: 16_384,
    layers: 256,
    heads: 1024,
    ffn_dim: 262_144,
    vocab_size: 4_194_304,
    max_position_embeddings: 65_536,
    num_beams: 128,
};

/// The feed-forward activation of a Marian checkpoint (`activation_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `swish` / `silu`: x * sigmoid(x), the opus-mt default.
    Swish,
    /// `relu`.
    Relu,
    /// `gelu`: the exact, erf-based GELU (PyTorch's default).
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast`: the tanh approximation.
    GeluTanh,
}

impl Activation {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "swish" | "silu" => Self::Swish,
            "relu" => Self::Relu,
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            other => {
                return Err(MarianError::config(
                    "activation_function",
                    format!(
                        "= {other:?} is not supported (expected swish, silu, relu, gelu, gelu_new)"
                    ),
                ))
            }
        })
    }
}

/// The architecture of a Marian checkpoint, from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct MarianConfig {
    /// Hidden size of every layer.
    pub d_model: usize,
    /// Number of encoder layers.
    pub encoder_layers: usize,
    /// Number of decoder layers.
    pub decoder_layers: usize,
    /// Attention heads in each encoder layer.
    pub encoder_attention_heads: usize,
    /// Attention heads in each decoder layer.
    pub decoder_attention_heads: usize,
    /// Inner size of the encoder feed-forward block.
    pub encoder_ffn_dim: usize,
    /// Inner size of the decoder feed-forward block.
    pub decoder_ffn_dim: usize,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Whether token embeddings are multiplied by sqrt(d_model).
    pub scale_embedding: bool,
    /// Rows of the sinusoidal position table: the longest sequence the model accepts.
    pub max_position_embeddings: usize,
    /// Source (and, when shared, target) vocabulary size.
    pub vocab_size: usize,
    /// Target vocabulary size (equal to `vocab_size` when embeddings are shared).
    pub decoder_vocab_size: usize,
    /// Padding token id.
    pub pad_token_id: u32,
    /// End-of-sentence token id.
    pub eos_token_id: u32,
    /// First token fed to the decoder.
    pub decoder_start_token_id: u32,
}

/// Decoding defaults a checkpoint ships, from `generation_config.json` (or, for older
/// checkpoints, the same keys in `config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Beam width; 1 means greedy search.
    pub num_beams: usize,
    /// Total length limit including the decoder start token, as transformers counts it.
    pub max_length: usize,
    /// Limit on generated tokens; overrides `max_length` when set.
    pub max_new_tokens: Option<usize>,
    /// Generated tokens before EOS is allowed.
    pub min_new_tokens: usize,
    /// Exponent of the length normalisation of beam scores.
    pub length_penalty: f32,
    /// When beam search stops (transformers' `early_stopping`).
    pub early_stopping: EarlyStopping,
    /// Single tokens that may never be generated (transformers' `bad_words_ids`).
    pub bad_words_ids: Vec<u32>,
    /// Token forced at the last allowed step, so that every output ends with it.
    pub forced_eos_token_id: Option<u32>,
    /// Whether log-probabilities are normalised again after the logits processors.
    pub renormalize_logits: bool,
    /// Hypotheses returned per input.
    pub num_return_sequences: usize,
    /// transformers' `no_repeat_ngram_size` (0: off).
    pub no_repeat_ngram_size: usize,
    /// transformers' `repetition_penalty` (1.0: off).
    pub repetition_penalty: f32,
}

/// transformers' `early_stopping`: when a beam search row may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// `true`: as soon as `num_beams` hypotheses are finished.
    Always,
    /// `false` (the default): when the best running beam, scored at its current length, cannot
    /// beat the worst finished hypothesis.
    Heuristic,
    /// `"never"`: only when no running beam can possibly beat the finished ones.
    Never,
}

/// The `config.json` of Helsinki-NLP/opus-mt-fr-en (architecture and generation keys), for
/// benchmarks that need the exact architecture without the checkpoint.
pub const OPUS_MT_FR_EN_CONFIG: &str = r#"{
  "activation_function": "swish", "d_model": 512, "decoder_attention_heads": 8,
  "decoder_ffn_dim": 2048, "decoder_layers": 6, "decoder_start_token_id": 59513,
  "decoder_vocab_size": 59514, "encoder_attention_heads": 8, "encoder_ffn_dim": 2048,
  "encoder_layers": 6, "eos_token_id": 0, "forced_eos_token_id": 0,
  "max_position_embeddings": 512, "model_type": "marian", "normalize_before": false,
  "normalize_embedding": false, "num_beams": 4, "pad_token_id": 59513,
  "scale_embedding": true, "share_encoder_decoder_embeddings": true,
  "static_position_embeddings": true, "vocab_size": 59514, "bad_words_ids": [[59513]],
  "max_length": 512, "renormalize_logits": true
}"#;

/// The `config.json` of Helsinki-NLP/opus-mt-tc-big-fr-en (Marian's transformer-big from the
/// Tatoeba Challenge): d_model 1024, 16 heads, ffn 4096, relu, 1024 positions, a vocabulary of
/// 53,017 whose `</s>` is 43,311 (not 0) and whose pad (the decoder start) is the last id.
pub const OPUS_MT_TC_BIG_FR_EN_CONFIG: &str = r#"{
  "activation_function": "relu", "d_model": 1024, "decoder_attention_heads": 16,
  "decoder_ffn_dim": 4096, "decoder_layers": 6, "decoder_start_token_id": 53016,
  "decoder_vocab_size": 53017, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
  "encoder_layers": 6, "eos_token_id": 43311, "forced_eos_token_id": 43311,
  "max_position_embeddings": 1024, "model_type": "marian", "normalize_before": false,
  "normalize_embedding": false, "num_beams": 4, "pad_token_id": 53016,
  "scale_embedding": true, "share_encoder_decoder_embeddings": true,
  "static_position_embeddings": true, "vocab_size": 53017, "bad_words_ids": [[53016]],
  "max_length": 512, "renormalize_logits": true
}"#;

/// The architecture and decoding defaults of opus-mt-fr-en.
pub fn opus_mt_fr_en() -> (MarianConfig, GenerationConfig) {
    built_in(OPUS_MT_FR_EN_CONFIG)
}

/// The architecture and decoding defaults of opus-mt-tc-big-fr-en.
pub fn opus_mt_tc_big_fr_en() -> (MarianConfig, GenerationConfig) {
    built_in(OPUS_MT_TC_BIG_FR_EN_CONFIG)
}

fn built_in(text: &str) -> (MarianConfig, GenerationConfig) {
    let json: Value = serde_json::from_str(text).expect("valid built-in JSON");
    let config = MarianConfig::from_json(&json).expect("supported built-in config");
    let generation =
        GenerationConfig::from_json(&json, &config).expect("supported built-in config");
    (config, generation)
}

/// Reads a JSON file, with errors naming it.
fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| MarianError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| MarianError::Config {
        path: Some(path.to_path_buf()),
        field: "the file".to_string(),
        problem: format!("is not valid JSON: {e}"),
    })
}

impl MarianConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_json(&read_json(path)?).map_err(|e| e.in_file(path))
    }

    /// Builds the config from parsed `config.json`, rejecting what this engine cannot run and
    /// sizes beyond [`LIMITS`].
    pub fn from_json(json: &Value) -> Result<Self> {
        let fields = Fields(json);
        if !json.is_object() {
            return Err(MarianError::config("config.json", "must be a JSON object"));
        }
        if let Some(model_type) = fields.str_opt("model_type")? {
            if model_type != "marian" {
                return Err(MarianError::config(
                    "model_type",
                    format!("= {model_type:?} is not supported: traduire runs Marian checkpoints"),
                ));
            }
        }
        // Legacy BART-style switches that opus-mt configs carry: they must keep Marian's layout.
        fields.require_bool("normalize_before", false)?;
        fields.require_bool("normalize_embedding", false)?;
        fields.require_bool("add_final_layer_norm", false)?;
        fields.require_bool("static_position_embeddings", true)?;
        fields.require_bool("add_bias_logits", false)?;
        fields.require_bool("is_encoder_decoder", true)?;
        fields.require_bool("tie_word_embeddings", true)?;
        fields.require_bool("share_encoder_decoder_embeddings", true)?;

        let l = LIMITS;
        let vocab_size = fields.size("vocab_size", 2, l.vocab_size)?;
        let decoder_vocab_size = fields
            .size_opt("decoder_vocab_size", 2, l.vocab_size)?
            .unwrap_or(vocab_size);
        if decoder_vocab_size != vocab_size {
            return Err(MarianError::config(
                "decoder_vocab_size",
                format!(
                    "= {decoder_vocab_size} differs from vocab_size = {vocab_size}: separate target embeddings are not supported"
                ),
            ));
        }
        let config = Self {
            d_model: fields.size("d_model", 1, l.d_model)?,
            encoder_layers: fields.size("encoder_layers", 1, l.layers)?,
            decoder_layers: fields.size("decoder_layers", 1, l.layers)?,
            encoder_attention_heads: fields.size("encoder_attention_heads", 1, l.heads)?,
            decoder_attention_heads: fields.size("decoder_attention_heads", 1, l.heads)?,
            encoder_ffn_dim: fields.size("encoder_ffn_dim", 1, l.ffn_dim)?,
            decoder_ffn_dim: fields.size("decoder_ffn_dim", 1, l.ffn_dim)?,
            activation: Activation::parse(
                fields.str_opt("activation_function")?.unwrap_or("gelu"),
            )?,
            scale_embedding: fields.bool_opt("scale_embedding")?.unwrap_or(false),
            max_position_embeddings: fields.size(
                "max_position_embeddings",
                2,
                l.max_position_embeddings,
            )?,
            vocab_size,
            decoder_vocab_size,
            pad_token_id: fields.id("pad_token_id")?,
            eos_token_id: fields.id("eos_token_id")?,
            decoder_start_token_id: fields.id("decoder_start_token_id")?,
        };
        for (name, heads) in [
            ("encoder_attention_heads", config.encoder_attention_heads),
            ("decoder_attention_heads", config.decoder_attention_heads),
        ] {
            if !config.d_model.is_multiple_of(heads) {
                return Err(MarianError::config(
                    name,
                    format!("= {heads} does not divide d_model = {}", config.d_model),
                ));
            }
        }
        for (name, id) in [
            ("pad_token_id", config.pad_token_id),
            ("eos_token_id", config.eos_token_id),
            ("decoder_start_token_id", config.decoder_start_token_id),
        ] {
            check_id(name, id, vocab_size)?;
        }
        Ok(config)
    }

    /// Parameters of the checkpoint (tied embedding counted once), for memory estimates.
    pub fn parameters(&self) -> u128 {
        let d = self.d_model as u128;
        let attention = 4 * (d * d + d);
        let norm = 2 * d;
        let ffn = |inner: usize| 2 * d * inner as u128 + inner as u128 + d;
        let encoder =
            self.encoder_layers as u128 * (attention + ffn(self.encoder_ffn_dim) + 2 * norm);
        let decoder =
            self.decoder_layers as u128 * (2 * attention + ffn(self.decoder_ffn_dim) + 3 * norm);
        encoder + decoder + self.vocab_size as u128 * (d + 1)
    }
}

fn check_id(name: &str, id: u32, vocab_size: usize) -> Result<()> {
    if id as usize >= vocab_size {
        return Err(MarianError::config(
            name,
            format!("= {id} is outside the vocabulary (vocab_size = {vocab_size})"),
        ));
    }
    Ok(())
}

impl GenerationConfig {
    /// Reads the decoding defaults: `generation_config.json` when it exists, with `config.json`
    /// supplying keys it lacks (older checkpoints keep them there). Ids are checked against
    /// `model`'s vocabulary.
    pub fn from_files(
        config_json: &Path,
        generation_config_json: Option<&Path>,
        model: &MarianConfig,
    ) -> Result<Self> {
        let mut merged = read_json(config_json)?;
        let mut source = config_json;
        if let Some(path) = generation_config_json {
            let generation = read_json(path)?;
            match (&mut merged, generation) {
                (Value::Object(base), Value::Object(over)) => base.extend(over),
                _ => {
                    return Err(MarianError::Config {
                        path: Some(path.to_path_buf()),
                        field: "the file".to_string(),
                        problem: "must hold a JSON object".to_string(),
                    })
                }
            }
            source = path;
        }
        Self::from_json(&merged, model).map_err(|e| e.in_file(source))
    }

    /// Builds the decoding defaults from merged config JSON, rejecting options we do not
    /// implement (sampling, diversity penalties, ...) and ids outside `model`'s vocabulary.
    pub fn from_json(json: &Value, model: &MarianConfig) -> Result<Self> {
        let fields = Fields(json);
        fields.require_bool("do_sample", false)?;
        fields.require_f64("diversity_penalty", 0.0)?;
        fields.require_usize("encoder_no_repeat_ngram_size", 0)?;
        fields.require_usize("num_beam_groups", 1)?;
        if let Some(v) = fields.get("forced_bos_token_id") {
            return Err(MarianError::config(
                "forced_bos_token_id",
                format!("= {v} is not supported"),
            ));
        }
        let mut bad_words_ids = Vec::new();
        if let Some(v) = fields.get("bad_words_ids") {
            let lists: Vec<Vec<u32>> = serde_json::from_value(v.clone()).map_err(|_| {
                MarianError::config("bad_words_ids", "must be a list of lists of token ids")
            })?;
            for list in lists {
                match list.as_slice() {
                    [id] => {
                        check_id("bad_words_ids", *id, model.vocab_size)?;
                        bad_words_ids.push(*id)
                    }
                    _ => {
                        return Err(MarianError::config(
                            "bad_words_ids",
                            format!("entry {list:?}: only single-token bad words are supported"),
                        ))
                    }
                }
            }
        }
        let early_stopping = match json.get("early_stopping") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => EarlyStopping::Heuristic,
            Some(Value::Bool(true)) => EarlyStopping::Always,
            Some(Value::String(s)) if s == "never" => EarlyStopping::Never,
            Some(other) => {
                return Err(MarianError::config(
                    "early_stopping",
                    format!("= {other} is not supported (true, false or \"never\")"),
                ))
            }
        };
        let positions = model.max_position_embeddings;
        let num_beams = fields
            .size_opt("num_beams", 1, LIMITS.num_beams)?
            .unwrap_or(1);
        let max_length = fields.size_opt("max_length", 1, usize::MAX)?.unwrap_or(20);
        let length_penalty = fields.f64_opt("length_penalty")?.unwrap_or(1.0);
        if !length_penalty.is_finite() || length_penalty.abs() > 1e6 {
            return Err(MarianError::config(
                "length_penalty",
                format!("= {length_penalty} must be a finite number"),
            ));
        }
        let repetition_penalty = fields.f64_opt("repetition_penalty")?.unwrap_or(1.0);
        if !(repetition_penalty.is_finite()
            && repetition_penalty > 0.0
            && repetition_penalty <= f64::from(crate::marian::MAX_REPETITION_PENALTY))
        {
            return Err(MarianError::config(
                "repetition_penalty",
                format!(
                    "= {repetition_penalty} must be a number above 0 and at most {}",
                    crate::marian::MAX_REPETITION_PENALTY
                ),
            ));
        }
        let forced_eos_token_id = fields.id_opt("forced_eos_token_id")?;
        if let Some(id) = forced_eos_token_id {
            check_id("forced_eos_token_id", id, model.vocab_size)?;
        }
        Ok(Self {
            num_beams,
            max_length,
            max_new_tokens: fields.size_opt("max_new_tokens", 1, positions)?,
            // transformers' min_length counts the decoder start token.
            min_new_tokens: fields
                .size_opt("min_new_tokens", 0, positions)?
                .unwrap_or(0)
                .max(
                    fields
                        .size_opt("min_length", 0, positions)?
                        .unwrap_or(0)
                        .saturating_sub(1),
                ),
            length_penalty: length_penalty as f32,
            early_stopping,
            bad_words_ids,
            forced_eos_token_id,
            renormalize_logits: fields.bool_opt("renormalize_logits")?.unwrap_or(false),
            num_return_sequences: fields
                .size_opt("num_return_sequences", 1, LIMITS.num_beams)?
                .unwrap_or(1),
            no_repeat_ngram_size: fields
                .size_opt("no_repeat_ngram_size", 0, positions)?
                .unwrap_or(0),
            repetition_penalty: repetition_penalty as f32,
        })
    }
}

/// Typed access to JSON fields, with errors that name the field.
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn usize_opt(&self, name: &str) -> Result<Option<usize>> {
        self.get(name)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        MarianError::config(
                            name,
                            format!("must be a non-negative integer, found {v}"),
                        )
                    })
            })
            .transpose()
    }

    /// An integer within `min..=max`, when present.
    fn size_opt(&self, name: &str, min: usize, max: usize) -> Result<Option<usize>> {
        match self.usize_opt(name)? {
            Some(n) if n < min || n > max => Err(MarianError::config(
                name,
                format!("= {n} is out of range ({min} to {max})"),
            )),
            other => Ok(other),
        }
    }

    fn size(&self, name: &str, min: usize, max: usize) -> Result<usize> {
        self.size_opt(name, min, max)?
            .ok_or_else(|| MarianError::config(name, "is missing"))
    }

    fn id_opt(&self, name: &str) -> Result<Option<u32>> {
        // Some configs write a list of ids; traduire supports a single one.
        match self.get(name) {
            Some(Value::Array(items)) if items.len() == 1 => {
                Fields(&serde_json::json!({ name: items[0].clone() })).id_opt(name)
            }
            Some(Value::Array(items)) => Err(MarianError::config(
                name,
                format!("= {items:?}: only one id is supported"),
            )),
            _ => self
                .usize_opt(name)?
                .map(|n| {
                    u32::try_from(n)
                        .map_err(|_| MarianError::config(name, format!("= {n} is not a token id")))
                })
                .transpose(),
        }
    }

    fn id(&self, name: &str) -> Result<u32> {
        self.id_opt(name)?
            .ok_or_else(|| MarianError::config(name, "is missing"))
    }

    fn bool_opt(&self, name: &str) -> Result<Option<bool>> {
        self.get(name)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    MarianError::config(name, format!("must be true or false, found {v}"))
                })
            })
            .transpose()
    }

    fn f64_opt(&self, name: &str) -> Result<Option<f64>> {
        self.get(name)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    MarianError::config(name, format!("must be a number, found {v}"))
                })
            })
            .transpose()
    }

    fn str_opt(&self, name: &str) -> Result<Option<&str>> {
        self.get(name)
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    MarianError::config(name, format!("must be a string, found {v}"))
                })
            })
            .transpose()
    }

    fn require_bool(&self, name: &str, supported: bool) -> Result<()> {
        match self.bool_opt(name)? {
            Some(v) if v != supported => Err(MarianError::config(
                name,
                format!("= {v} is not supported (only {supported})"),
            )),
            _ => Ok(()),
        }
    }

    fn require_f64(&self, name: &str, supported: f64) -> Result<()> {
        match self.f64_opt(name)? {
            Some(v) if v != supported => Err(MarianError::config(
                name,
                format!("= {v} is not supported (only {supported})"),
            )),
            _ => Ok(()),
        }
    }

    fn require_usize(&self, name: &str, supported: usize) -> Result<()> {
        match self.usize_opt(name)? {
            Some(v) if v != supported => Err(MarianError::config(
                name,
                format!("= {v} is not supported (only {supported})"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_outside_the_limits_name_the_field_and_the_limit() {
        for (field, value, limit) in [
            ("d_model", json!(0), "1 to 16384"),
            ("d_model", json!(1u64 << 40), "1 to 16384"),
            ("max_position_embeddings", json!(10_000_000), "2 to 65536"),
            ("vocab_size", json!(u64::MAX), "2 to 4194304"),
            ("encoder_layers", json!(0), "1 to 256"),
            ("decoder_ffn_dim", json!(0), "1 to 262144"),
        ] {
            let mut c = opus_config();
            c[field] = value;
            let err = MarianConfig::from_json(&c).unwrap_err().to_string();
            assert!(err.starts_with(field) && err.contains(limit), "{err}");
        }
    }

    #[test]
    fn special_ids_must_be_in_the_vocabulary() {
        let model = MarianConfig::from_json(&opus_config()).unwrap();
        for (field, value) in [
            ("forced_eos_token_id", json!(59514)),
            ("bad_words_ids", json!([[70000]])),
            ("bad_words_ids", json!([[1, 2]])),
            ("num_beams", json!(129)),
            ("num_beams", json!(0)),
            ("length_penalty", json!(1e300)),
        ] {
            let mut c = opus_config();
            c[field] = value;
            let err = GenerationConfig::from_json(&c, &model)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(field), "{err}");
        }
        let mut c = opus_config();
        c["eos_token_id"] = json!(59514);
        assert!(MarianConfig::from_json(&c)
            .unwrap_err()
            .to_string()
            .contains("outside the vocabulary"));
        c["eos_token_id"] = json!(1u64 << 33);
        assert!(MarianConfig::from_json(&c).is_err());
    }

    fn opus_config() -> Value {
        serde_json::from_str(OPUS_MT_FR_EN_CONFIG).unwrap()
    }

    #[test]
    fn reads_opus_mt_fr_en() {
        let c = MarianConfig::from_json(&opus_config()).unwrap();
        assert_eq!(c.d_model, 512);
        assert_eq!(c.activation, Activation::Swish);
        assert_eq!(c.pad_token_id, 59513);
        let g = GenerationConfig::from_json(&opus_config(), &c).unwrap();
        assert_eq!(g.num_beams, 4);
        assert_eq!(g.bad_words_ids, vec![59513]);
        assert_eq!(g.forced_eos_token_id, Some(0));
        assert_eq!(g.early_stopping, EarlyStopping::Heuristic);
        assert!(g.renormalize_logits);
        assert_eq!(opus_mt_fr_en().0, c);
    }

    #[test]
    fn reads_opus_mt_tc_big_fr_en() {
        let (c, g) = opus_mt_tc_big_fr_en();
        assert_eq!((c.d_model, c.encoder_attention_heads), (1024, 16));
        assert_eq!((c.encoder_ffn_dim, c.decoder_ffn_dim), (4096, 4096));
        assert_eq!(c.activation, Activation::Relu);
        assert_eq!((c.eos_token_id, c.pad_token_id), (43311, 53016));
        assert_eq!(c.decoder_start_token_id, 53016);
        assert_eq!((c.vocab_size, c.max_position_embeddings), (53017, 1024));
        assert_eq!(g.forced_eos_token_id, Some(43311));
        assert_eq!(g.bad_words_ids, vec![53016]);
        // About 230 M parameters: 461 MB in float16, as the checkpoint stores them.
        assert_eq!(c.parameters() / 10_000_000, 23);
    }

    #[test]
    fn unsupported_values_name_the_field() {
        for (field, value) in [
            ("normalize_before", json!(true)),
            ("activation_function", json!("tanh")),
            ("model_type", json!("bart")),
            ("encoder_attention_heads", json!(7)),
            ("d_model", json!("big")),
        ] {
            let mut c = opus_config();
            c[field] = value;
            let err = format!("{:#}", MarianConfig::from_json(&c).unwrap_err());
            assert!(err.contains(field), "{err}");
        }
        for (field, value) in [
            ("do_sample", json!(true)),
            ("encoder_no_repeat_ngram_size", json!(3)),
            ("no_repeat_ngram_size", json!(-1)),
            ("no_repeat_ngram_size", json!(100_000)),
            ("repetition_penalty", json!(0.0)),
            ("repetition_penalty", json!(-1.5)),
            ("repetition_penalty", json!("high")),
            ("bad_words_ids", json!([[1, 2]])),
            ("early_stopping", json!("sometimes")),
        ] {
            let mut c = opus_config();
            c[field] = value;
            let model = MarianConfig::from_json(&c).unwrap();
            let err = format!("{:#}", GenerationConfig::from_json(&c, &model).unwrap_err());
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn repetition_guards_load_from_generation_config() {
        let mut c = opus_config();
        c["no_repeat_ngram_size"] = json!(3);
        c["repetition_penalty"] = json!(1.2);
        let model = MarianConfig::from_json(&c).unwrap();
        let g = GenerationConfig::from_json(&c, &model).unwrap();
        assert_eq!(g.no_repeat_ngram_size, 3);
        assert_eq!(g.repetition_penalty, 1.2);
        let d = crate::marian::DecodeOptions::from_generation(&g);
        assert_eq!((d.no_repeat_ngram_size, d.repetition_penalty), (3, 1.2));
        let plain = GenerationConfig::from_json(&opus_config(), &model).unwrap();
        assert_eq!(
            (plain.no_repeat_ngram_size, plain.repetition_penalty),
            (0, 1.0)
        );
    }

    #[test]
    fn missing_field_is_named() {
        let mut c = opus_config();
        c.as_object_mut().unwrap().remove("d_model");
        let err = format!("{:#}", MarianConfig::from_json(&c).unwrap_err());
        assert!(err.contains("d_model is missing"), "{err}");
    }
}
