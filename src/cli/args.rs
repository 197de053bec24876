//! Options shared by the subcommands: where the model comes from and how it runs, how it
//! decodes, and the output formats. Every value is parsed by clap, so `--help` lists the
//! choices and a typo fails at once, before any model is resolved or downloaded.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, ValueEnum};
use traduire::batching::{BatchLimits, MAX_BATCH_SENTENCES, MAX_BATCH_TOKENS};
use traduire::device::{DeviceSpec, Precision};
use traduire::marian::config::LIMITS;
use traduire::marian::kernels::Isa;
use traduire::marian::{
    DecodeOptions, KernelChoice, ModelOptions, MAX_LENGTH_RATIO, MAX_REPETITION_PENALTY,
    MAX_THREADS,
};
use traduire::markup::InputFormat;
use traduire::source::{FetchOptions, ModelSource, ModelSpec};
use traduire::write::Format;

/// Where the model comes from and how it runs.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model: a short name (opus-mt-fr-en, opus-mt-tc-big-fr-en; see models/README.md) or a
    /// Hugging Face repo as ORG/NAME[@REVISION]. Downloaded once into the Hugging Face cache.
    /// `eval --compare` takes a comma-separated list.
    #[arg(
        long,
        default_value = "opus-mt-fr-en",
        conflicts_with = "model_dir",
        value_delimiter = ','
    )]
    pub model: Vec<String>,
    /// Use a local model folder instead of the Hub (config.json, *.spm, vocab.json, weights).
    /// `eval --compare` takes the flag more than once.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Vec<PathBuf>,
    /// Never use the network: take the model from the Hugging Face cache (as HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// How a model runs: device, precision, threads, kernels.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Device: cpu, cuda, cuda:N, metal or metal:N (GPUs need a build with --features cuda or
    /// --features metal).
    #[arg(long, default_value = "cpu", value_parser = DeviceParser)]
    pub device: DeviceSpec,
    /// Number format of weights and arithmetic. int8 quantizes the weights at load (CPU only);
    /// bf16 needs a GPU. `eval --compare` takes a comma-separated list.
    #[arg(long, value_enum, default_value = "f32", value_delimiter = ',')]
    pub dtype: Vec<PrecisionArg>,
    /// CPU threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS as i64))]
    pub threads: Option<u16>,
    /// CPU kernels: auto picks the widest instruction set this CPU has; avx512, avx2 and
    /// portable force one (to compare them); candle runs candle's operations (the GPU path).
    #[arg(long, value_enum, default_value_t = KernelArg::Auto)]
    pub kernels: KernelArg,
}

impl RuntimeArgs {
    /// The model options, checked against this build and CPU (no model is touched).
    pub fn options(&self) -> Result<ModelOptions> {
        let options = ModelOptions {
            device: self.device,
            precision: (*one(&self.dtype, "--dtype")?).into(),
            threads: self.threads.map(usize::from),
            kernels: self.kernels.into(),
        };
        options.validate()?;
        Ok(options)
    }
}

impl ModelArgs {
    /// Checks what clap cannot: one model outside `eval --compare`.
    pub fn check(&self) -> Result<()> {
        match self.model_dir.as_slice() {
            [] => one(&self.model, "--model").map(drop),
            dirs => one(dirs, "--model-dir").map(drop),
        }
    }

    /// A local folder with the model files, downloading them if needed (with a progress bar
    /// when `progress`).
    pub fn model_dir(&self, progress: bool) -> Result<PathBuf> {
        let source = match self.model_dir.as_slice() {
            [] => ModelSource::Hub(ModelSpec::parse(one(&self.model, "--model")?)?),
            dirs => ModelSource::Dir(one(dirs, "--model-dir")?.clone()),
        };
        let mut options = FetchOptions::from_env();
        options.offline |= self.offline;
        let mut bar = super::progress::DownloadBar::new(progress);
        Ok(source.resolve(&options, &mut bar)?)
    }
}

/// `--dtype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// 32-bit floats (exact parity with transformers).
    F32,
    /// 16-bit floats (candle's operations).
    F16,
    /// bfloat16 (GPUs).
    Bf16,
    /// 8-bit integers with f32 scales (CPU; at batch 32, 2.2-2.6x f32's speed with AVX-512
    /// VNNI, 1.3-1.6x with AVX2 only).
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

/// `--kernels` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// The widest instruction set of this CPU.
    Auto,
    /// AVX-512 (with VNNI for int8).
    Avx512,
    /// AVX2 and FMA.
    Avx2,
    /// Plain Rust.
    Portable,
    /// candle's operations.
    Candle,
}

impl From<KernelArg> for KernelChoice {
    fn from(k: KernelArg) -> Self {
        match k {
            KernelArg::Auto => KernelChoice::Auto,
            KernelArg::Avx512 => KernelChoice::Isa(Isa::Avx512),
            KernelArg::Avx2 => KernelChoice::Isa(Isa::Avx2),
            KernelArg::Portable => KernelChoice::Isa(Isa::Portable),
            KernelArg::Candle => KernelChoice::Candle,
        }
    }
}

/// Parses `--device`, listing the choices in `--help`.
#[derive(Clone)]
pub struct DeviceParser;

impl TypedValueParser for DeviceParser {
    type Value = DeviceSpec;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let text = value.to_string_lossy();
        text.parse::<DeviceSpec>().map_err(|e| {
            let mut err = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
            if let Some(arg) = arg {
                err.insert(
                    clap::error::ContextKind::InvalidArg,
                    clap::error::ContextValue::String(arg.to_string()),
                );
            }
            err.insert(
                clap::error::ContextKind::InvalidValue,
                clap::error::ContextValue::String(text.into_owned()),
            );
            err.insert(
                clap::error::ContextKind::Custom,
                clap::error::ContextValue::String(e.to_string()),
            );
            err
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            ["cpu", "cuda", "cuda:N", "metal", "metal:N"]
                .into_iter()
                .map(PossibleValue::new),
        ))
    }
}

/// The one value of an option that `eval --compare` accepts as a list.
pub fn one<'a, T>(values: &'a [T], flag: &str) -> Result<&'a T> {
    match values {
        [value] => Ok(value),
        [] => bail!("{flag} needs a value"),
        _ => bail!(
            "{flag} takes one value here ({} given); lists of settings are for `traduire eval --compare`",
            values.len()
        ),
    }
}

/// Parses `--max-length-ratio`: a number above 0 (at most 1000), or `off`.
fn parse_ratio(s: &str) -> Result<LengthRatio, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(LengthRatio(None));
    }
    let ratio: f32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number (or off)"))?;
    if !(ratio.is_finite() && ratio > 0.0 && ratio <= MAX_LENGTH_RATIO) {
        return Err(format!(
            "must be above 0 and at most {MAX_LENGTH_RATIO}, or off"
        ));
    }
    Ok(LengthRatio(Some(ratio)))
}

/// Parses `--repetition-penalty`: a number above 0 and at most 1000.
fn parse_repetition_penalty(s: &str) -> Result<f32, String> {
    let p: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(p.is_finite() && p > 0.0 && p <= MAX_REPETITION_PENALTY) {
        return Err(format!(
            "must be above 0 and at most {MAX_REPETITION_PENALTY} (1 is off)"
        ));
    }
    Ok(p)
}

/// A relative length limit, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthRatio(pub Option<f32>);

/// Parses a finite float.
fn parse_finite(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v.abs() > 1e6 {
        return Err("must be a finite number (at most 1e6 in size)".into());
    }
    Ok(v)
}

/// How translations are searched.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Beam width, 1 to 128 (default: the model's generation_config, 4 for opus-mt); 1 is
    /// greedy search. `eval --compare` takes a comma-separated list.
    #[arg(long, value_name = "N", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=LIMITS.num_beams as i64))]
    pub beams: Vec<u16>,
    /// Most tokens generated per sentence (default: the model's max_length - 1; at most the
    /// model's positions).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=LIMITS.max_position_embeddings as i64))]
    pub max_new_tokens: Option<u32>,
    /// Also limit output to ceil(R x source tokens) + 10 tokens; R above 0 and at most 1000,
    /// or off.
    #[arg(long, value_name = "R", default_value = "3", value_parser = parse_ratio, allow_negative_numbers = true)]
    pub max_length_ratio: LengthRatio,
    /// Length penalty exponent of beam scores (default: the model's, 1.0).
    #[arg(long, value_name = "X", value_parser = parse_finite, allow_negative_numbers = true)]
    pub length_penalty: Option<f32>,
    /// Never generate the same n-gram of N tokens twice in one sentence, as transformers'
    /// no_repeat_ngram_size (0 is off; default: the model's, 0 for opus-mt).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=LIMITS.max_position_embeddings as i64))]
    pub no_repeat_ngram_size: Option<u32>,
    /// Scale down the scores of tokens already generated, as transformers'
    /// repetition_penalty: above 1 discourages repetition, 1 is off (above 0, at most 1000;
    /// default: the model's, 1 for opus-mt).
    #[arg(long, value_name = "X", value_parser = parse_repetition_penalty)]
    pub repetition_penalty: Option<f32>,
    /// Most padded source tokens per batch, 1 to 16777216 (default: 4096 on the CPU, 16384
    /// on a GPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH_TOKENS as i64))]
    pub max_batch_tokens: Option<u32>,
    /// Most sentences per batch, 1 to 65536 (default: 64 on the CPU, 256 on a GPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH_SENTENCES as i64))]
    pub max_batch_sentences: Option<u32>,
    /// Sentences longer than this many tokens are split at clause boundaries (with a warning);
    /// 2 to the model's positions.
    #[arg(long, default_value_t = 200, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=LIMITS.max_position_embeddings as i64))]
    pub max_sentence_tokens: u32,
}

impl DecodeArgs {
    /// Checks what clap cannot: one `--beams` value outside `eval --compare`.
    pub fn check(&self) -> Result<()> {
        if !self.beams.is_empty() {
            one(&self.beams, "--beams")?;
        }
        Ok(())
    }

    /// The checkpoint's defaults with these options applied (one hypothesis per sentence;
    /// the first `--beams` value, see [`DecodeArgs::check`]).
    pub fn apply(&self, mut decode: DecodeOptions) -> DecodeOptions {
        if let Some(&beams) = self.beams.first() {
            decode.num_beams = beams.into();
        }
        decode.num_return_sequences = 1;
        if let Some(n) = self.max_new_tokens {
            decode.max_new_tokens = n as usize;
            decode.min_new_tokens = decode.min_new_tokens.min(decode.max_new_tokens);
        }
        if let Some(lp) = self.length_penalty {
            decode.length_penalty = lp;
        }
        decode.max_length_ratio = self.max_length_ratio.0;
        if let Some(n) = self.no_repeat_ngram_size {
            decode.no_repeat_ngram_size = n as usize;
        }
        if let Some(p) = self.repetition_penalty {
            decode.repetition_penalty = p;
        }
        decode
    }

    /// The batch limits: the options given, else the defaults for `device` (a GPU is only busy
    /// with large batches).
    pub fn batch(&self, device: DeviceSpec) -> BatchLimits {
        let defaults = if device.is_gpu() {
            BatchLimits::GPU_DEFAULT
        } else {
            BatchLimits::default()
        };
        BatchLimits {
            max_tokens: self
                .max_batch_tokens
                .map_or(defaults.max_tokens, |n| n as usize),
            max_sentences: self
                .max_batch_sentences
                .map_or(defaults.max_sentences, |n| n as usize),
        }
    }
}

/// `--format` values of `translate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Plain text, French then English (two columns on a wide terminal).
    Text,
    /// A Markdown table per paragraph.
    #[value(alias = "md")]
    Markdown,
    /// A standalone HTML page, side by side.
    Html,
    /// Tab-separated values with a header row.
    Tsv,
    /// JSON Lines, one object per sentence.
    Jsonl,
    /// TMX 1.4b translation memory.
    Tmx,
    /// Two line-aligned files, PREFIX.fr and PREFIX.en.
    Moses,
    /// The document in its own format, English in place of French (HTML in, HTML out).
    Same,
}

impl FormatArg {
    /// The side-by-side writer's format; `None` for `same`, which renders the document.
    pub fn writer_format(self) -> Option<Format> {
        Some(match self {
            FormatArg::Text => Format::Text,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Html => Format::Html,
            FormatArg::Tsv => Format::Tsv,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Tmx => Format::Tmx,
            FormatArg::Moses => Format::Moses,
            FormatArg::Same => return None,
        })
    }
}

/// `--input-format` values of `translate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormatArg {
    /// By extension (.html .htm .xhtml .md .markdown .srt .vtt), else by content (HTML,
    /// SRT, WebVTT), else plain text.
    Auto,
    /// Plain text.
    Text,
    /// Markdown (CommonMark, GitHub tables).
    #[value(alias = "md")]
    Markdown,
    /// An HTML page or fragment.
    Html,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
}

impl InputFormatArg {
    /// The format forced, or `None` for auto.
    pub fn forced(self) -> Option<InputFormat> {
        Some(match self {
            InputFormatArg::Auto => return None,
            InputFormatArg::Text => InputFormat::Text,
            InputFormatArg::Markdown => InputFormat::Markdown,
            InputFormatArg::Html => InputFormat::Html,
            InputFormatArg::Srt => InputFormat::Srt,
            InputFormatArg::Vtt => InputFormat::Vtt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("off"), Ok(LengthRatio(None)));
        assert_eq!(parse_ratio("2.5"), Ok(LengthRatio(Some(2.5))));
        for bad in ["inf", "nan", "0", "-1", "1001", "x", ""] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }
}
