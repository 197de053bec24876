//! A loaded Marian model: the checkpoint's architecture and decoding defaults, the engine that
//! runs it, and the threads it runs on.
//!
//! Two engines share one interface ([`Encoded`], [`Decoder`]):
//! - the CPU engine (`cpu/`): traduire's own kernels, f32 or int8, chosen once at load;
//! - the generic engine (`generic/`): candle's operations, for GPUs and f16/bf16.
//!
//! The model owns its thread pool; nothing here touches process-wide state.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use candle_core::DType;

use super::config::{GenerationConfig, MarianConfig, LIMITS};
use super::cpu::{CpuEncoded, CpuModel, DecoderCache, Workspace};
use super::error::{human_bytes, MarianError, Result};
use super::generic::{GenericDecoder, GenericEncoded, GenericModel};
use super::kernels::{Isa, Kernels};
use super::weights::{weights_file, Weights};
use crate::device::{DeviceSpec, Precision};

/// Most CPU threads a model may use.
pub const MAX_THREADS: usize = 1024;

/// Which kernels run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// traduire's CPU kernels with the widest instruction set the CPU has (f32, int8), candle's
    /// operations otherwise (GPUs, f16, bf16).
    #[default]
    Auto,
    /// traduire's CPU kernels with this instruction set (to compare them).
    Isa(Isa),
    /// candle's operations, also on the CPU: the path GPUs take.
    Candle,
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelChoice::Auto => f.write_str("auto"),
            KernelChoice::Isa(isa) => write!(f, "{isa}"),
            KernelChoice::Candle => f.write_str("candle"),
        }
    }
}

impl FromStr for KernelChoice {
    type Err = MarianError;

    /// `auto`, `avx512`, `avx2`, `portable` or `candle`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => KernelChoice::Auto,
            "avx512" => KernelChoice::Isa(Isa::Avx512),
            "avx2" => KernelChoice::Isa(Isa::Avx2),
            "portable" => KernelChoice::Isa(Isa::Portable),
            "candle" => KernelChoice::Candle,
            _ => {
                return Err(MarianError::option(
                    "kernels",
                    s,
                    "is not a kernel choice (auto, avx512, avx2, portable or candle)",
                ))
            }
        })
    }
}

/// How a model is loaded and run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelOptions {
    /// Where the model runs.
    pub device: DeviceSpec,
    /// Number format of weights and arithmetic.
    pub precision: Precision,
    /// CPU threads (`None`: one per core), 1 to [`MAX_THREADS`].
    pub threads: Option<usize>,
    /// Which kernels run it.
    pub kernels: KernelChoice,
}

/// The engine a set of options resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineChoice {
    Cpu { kernels: Kernels, int8: bool },
    Generic { dtype: DType },
}

impl ModelOptions {
    /// Checks the options without loading anything: thread count, precision on the device,
    /// and kernels this CPU and precision can run.
    pub fn validate(&self) -> Result<()> {
        self.engine().map(|_| ())
    }

    fn engine(&self) -> Result<EngineChoice> {
        if let Some(threads) = self.threads {
            if threads == 0 || threads > MAX_THREADS {
                return Err(MarianError::option(
                    "threads",
                    threads,
                    format!("is out of range (1 to {MAX_THREADS})"),
                ));
            }
        }
        self.device.check_built()?;
        self.precision.check_on(self.device)?;
        let generic = |dtype| Ok(EngineChoice::Generic { dtype });
        let float_dtype = match self.precision {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
            Precision::Int8 => DType::F32,
        };
        let int8 = self.precision == Precision::Int8;
        match (self.device, self.kernels) {
            (device, KernelChoice::Isa(isa)) if device.is_gpu() => Err(MarianError::Unsupported(
                format!("{isa} kernels run on the CPU, not on {}", device.describe()),
            )),
            (device, _) if device.is_gpu() => generic(float_dtype),
            (_, KernelChoice::Candle) if int8 => Err(MarianError::Unsupported(
                "int8 runs on traduire's CPU kernels only, not on candle's operations".into(),
            )),
            (_, KernelChoice::Candle) => generic(float_dtype),
            (_, choice) if matches!(self.precision, Precision::F16 | Precision::Bf16) => {
                match choice {
                    KernelChoice::Isa(isa) => Err(MarianError::Unsupported(format!(
                        "{} runs on candle's operations; the {isa} kernels compute in f32 or int8",
                        self.precision
                    ))),
                    _ => generic(float_dtype),
                }
            }
            (_, KernelChoice::Isa(isa)) => {
                let kernels = Kernels::with_isa(isa).ok_or_else(|| {
                    MarianError::Unsupported(format!("this CPU cannot run the {isa} kernels"))
                })?;
                Ok(EngineChoice::Cpu { kernels, int8 })
            }
            (_, _) => Ok(EngineChoice::Cpu {
                kernels: Kernels::detect(),
                int8,
            }),
        }
    }
}

enum Engine {
    Cpu(Box<CpuModel>),
    Generic(Box<GenericModel>),
}

/// A Marian encoder-decoder translation model loaded from a Hugging Face checkpoint.
pub struct MarianModel {
    config: MarianConfig,
    generation: GenerationConfig,
    options: ModelOptions,
    engine: Engine,
    pool: rayon::ThreadPool,
}

impl fmt::Debug for MarianModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarianModel")
            .field("config", &self.config)
            .field("engine", &self.describe())
            .finish()
    }
}

impl MarianModel {
    /// Loads a checkpoint folder: `config.json`, optional `generation_config.json`, and
    /// `model.safetensors` or `pytorch_model.bin`. Options, config and the weight file's index
    /// are all checked before any tensor is read.
    pub fn load(dir: &Path, options: &ModelOptions) -> Result<Self> {
        let engine = options.engine()?;
        let config_file = dir.join("config.json");
        let config = MarianConfig::from_file(&config_file)?;
        let generation_file = dir.join("generation_config.json");
        let generation = GenerationConfig::from_files(
            &config_file,
            generation_file
                .is_file()
                .then_some(generation_file.as_path()),
            &config,
        )?;
        check_memory(&config, options.precision)?;
        let weights = Weights::open(&weights_file(dir)?)?;
        check_tensors(&config, &weights)?;
        Self::build(config, generation, &weights, options, engine)
    }

    /// A model with the given architecture and random weights, for speed measurements only:
    /// it translates into nonsense.
    pub fn random(
        config: MarianConfig,
        generation: GenerationConfig,
        options: &ModelOptions,
    ) -> Result<Self> {
        let engine = options.engine()?;
        check_memory(&config, options.precision)?;
        Self::build(config, generation, &Weights::random(), options, engine)
    }

    fn build(
        config: MarianConfig,
        generation: GenerationConfig,
        weights: &Weights,
        options: &ModelOptions,
        engine: EngineChoice,
    ) -> Result<Self> {
        let threads = options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("traduire-{i}"))
            .build()
            .map_err(|e| {
                MarianError::option("threads", threads, format!("could not be started: {e}"))
            })?;
        let engine = pool.install(|| -> Result<Engine> {
            Ok(match engine {
                EngineChoice::Cpu { kernels, int8 } => {
                    Engine::Cpu(Box::new(CpuModel::load(&config, weights, kernels, int8)?))
                }
                EngineChoice::Generic { dtype } => {
                    let device = options.device.open()?;
                    Engine::Generic(Box::new(GenericModel::load(
                        &config, weights, &device, dtype,
                    )?))
                }
            })
        })?;
        Ok(Self {
            config,
            generation,
            options: ModelOptions {
                threads: Some(threads),
                ..options.clone()
            },
            engine,
            pool,
        })
    }

    /// The checkpoint's architecture.
    pub fn config(&self) -> &MarianConfig {
        &self.config
    }

    /// The checkpoint's decoding defaults.
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation
    }

    /// The options the model runs with (threads resolved).
    pub fn options(&self) -> &ModelOptions {
        &self.options
    }

    /// CPU threads of the model's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The instruction set of the float kernels the search runs on this model's logits: the
    /// CPU engine's (so `--kernels avx2` measures AVX2 throughout), else the widest this CPU
    /// has. Every instruction set gives the same bits.
    pub fn float_isa(&self) -> crate::marian::kernels::Isa {
        match &self.engine {
            Engine::Cpu(cpu) => cpu.kernels().float,
            Engine::Generic(_) => Kernels::detect().float,
        }
    }

    /// What runs the model, e.g. `cpu int8 (avx512)` or `candle f16 on cuda:0`.
    pub fn describe(&self) -> String {
        match &self.engine {
            Engine::Cpu(cpu) => format!("cpu {} ({})", self.options.precision, cpu.kernels()),
            Engine::Generic(_) => {
                format!(
                    "candle {} on {}",
                    self.options.precision, self.options.device
                )
            }
        }
    }

    /// Runs `f` on the model's threads.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Runs the encoder over a batch of token-id sequences (each ending with EOS), padded to
    /// the longest.
    pub fn encode(&self, sources: &[Vec<u32>]) -> Result<Encoded> {
        self.check_sources(sources)?;
        self.run(|| {
            Ok(Encoded(match &self.engine {
                Engine::Cpu(cpu) => {
                    EncodedInner::Cpu(cpu.encode(sources, self.config.pad_token_id)?)
                }
                Engine::Generic(generic) => EncodedInner::Generic(generic.encode(sources)?),
            }))
        })
    }

    fn check_sources(&self, sources: &[Vec<u32>]) -> Result<()> {
        let c = &self.config;
        if sources.is_empty() || sources.iter().any(Vec::is_empty) {
            return Err(MarianError::Input(
                "cannot encode an empty batch or an empty sequence (it must at least hold </s>)"
                    .into(),
            ));
        }
        for source in sources {
            if source.len() > c.max_position_embeddings {
                return Err(MarianError::Input(format!(
                    "a source of {} tokens exceeds the model's {} positions",
                    source.len(),
                    c.max_position_embeddings
                )));
            }
            if let Some(&bad) = source.iter().find(|&&id| id as usize >= c.vocab_size) {
                return Err(MarianError::Input(format!(
                    "token id {bad} is outside the vocabulary ({} ids)",
                    c.vocab_size
                )));
            }
        }
        Ok(())
    }

    /// Prepares decoding of an encoded batch with `group` rows per source (beams) for up to
    /// `capacity` steps.
    pub fn start_decoding(
        &self,
        encoded: &Encoded,
        group: usize,
        capacity: usize,
    ) -> Result<Decoder<'_>> {
        let positions = self.config.max_position_embeddings;
        if capacity == 0 || capacity > positions {
            return Err(MarianError::Input(format!(
                "cannot decode {capacity} tokens: the model has {positions} positions"
            )));
        }
        if group == 0 || group > LIMITS.num_beams {
            return Err(MarianError::option(
                "num_beams",
                group,
                format!("is out of range (1 to {})", LIMITS.num_beams),
            ));
        }
        let state = self.run(|| -> Result<DecoderState> {
            Ok(match (&self.engine, &encoded.0) {
                (Engine::Cpu(cpu), EncodedInner::Cpu(e)) => DecoderState::Cpu {
                    cache: Box::new(cpu.start_decoding(e, group, capacity)?),
                    work: Box::default(),
                },
                (Engine::Generic(g), EncodedInner::Generic(e)) => {
                    DecoderState::Generic(Box::new(g.start_decoding(e, group, capacity)?))
                }
                _ => {
                    return Err(MarianError::Input(
                        "this batch was encoded by another model".into(),
                    ))
                }
            })
        })?;
        Ok(Decoder {
            model: self,
            state,
            host_logits: Vec::new(),
            host_alignment: Vec::new(),
            steps: 0,
            capacity,
        })
    }

    /// Vocabulary size (the width of a row of logits).
    pub fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }
}

/// An encoded batch, ready for [`MarianModel::start_decoding`].
pub struct Encoded(EncodedInner);

enum EncodedInner {
    Cpu(CpuEncoded),
    Generic(GenericEncoded),
}

impl Encoded {
    /// The encoder's output as (sources, padded length, d_model) values, copied to the host
    /// (for tests and inspection).
    pub fn states(&self) -> Result<(Vec<f32>, [usize; 3])> {
        match &self.0 {
            EncodedInner::Cpu(e) => {
                let d = e.states.len() / (e.lens.len() * e.len).max(1);
                Ok((e.states.clone(), [e.lens.len(), e.len, d]))
            }
            EncodedInner::Generic(e) => {
                let (b, l, d) = e.states.dims3()?;
                let values = e
                    .states
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                Ok((values, [b, l, d]))
            }
        }
    }
}

enum DecoderState {
    Cpu {
        cache: Box<DecoderCache>,
        work: Box<Workspace>,
    },
    Generic(Box<GenericDecoder>),
}

/// Step-by-step decoding of one batch: feed a token per row, read a row of logits per row;
/// reorder rows (beam search) and drop finished sources between steps.
pub struct Decoder<'m> {
    model: &'m MarianModel,
    state: DecoderState,
    host_logits: Vec<f32>,
    host_alignment: Vec<f32>,
    steps: usize,
    capacity: usize,
}

impl Decoder<'_> {
    /// Current rows (sources still decoded × rows per source).
    pub fn rows(&self) -> usize {
        match &self.state {
            DecoderState::Cpu { cache, .. } => cache.rows(),
            DecoderState::Generic(g) => g.rows(),
        }
    }

    /// Steps decoded so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// From the next step on, also keep each step's alignment weights (see
    /// [`Decoder::alignment`]). Costs one head's softmax per row and step, no matrix product.
    pub fn record_alignment(&mut self) {
        match &mut self.state {
            DecoderState::Cpu { work, .. } => work.record_alignment = true,
            DecoderState::Generic(g) => g.record_alignment = true,
        }
    }

    /// The last step's alignment weights, once [`Decoder::record_alignment`] is on: the last
    /// decoder layer's cross-attention weights of head 0 (the head Marian's guided alignment
    /// trains, and what CTranslate2's `return_attention` returns), one row per current row
    /// over the batch's padded source length (zeros past a row's own source). Row `r` of step
    /// `t` is the alignment of the token that step predicts for row `r`.
    pub fn alignment(&mut self) -> Result<(&[f32], usize)> {
        let rows = self.rows();
        let weights: &[f32] = match &self.state {
            DecoderState::Cpu { work, .. } if work.record_alignment => &work.alignment,
            DecoderState::Generic(g) if g.record_alignment => {
                let tensor = g
                    .alignment
                    .as_ref()
                    .ok_or_else(|| MarianError::Input("no step has been decoded yet".into()))?;
                self.host_alignment = tensor.flatten_all()?.to_vec1::<f32>()?;
                &self.host_alignment
            }
            _ => {
                return Err(MarianError::Input(
                    "alignment weights were not recorded (record_alignment)".into(),
                ))
            }
        };
        if self.steps == 0 || rows == 0 || !weights.len().is_multiple_of(rows) {
            return Err(MarianError::Input(format!(
                "no alignment weights for {rows} rows after {} steps",
                self.steps
            )));
        }
        Ok((weights, weights.len() / rows))
    }

    /// Runs one step: `tokens` holds the last token of each row (the decoder start token at
    /// the first step). Returns the logits, `rows × vocab`, row-major, `final_logits_bias`
    /// added.
    pub fn step(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.step_with_exact(tokens, None)
    }

    /// [`Decoder::step`], with the logit of `exact[r]` in row `r` computed at full precision
    /// where the engine approximates (int8 weights): what scoring a known target needs.
    pub fn step_exact(&mut self, tokens: &[u32], exact: &[u32]) -> Result<&[f32]> {
        if exact.len() != tokens.len() {
            return Err(MarianError::Input(format!(
                "{} exact tokens for {} rows",
                exact.len(),
                tokens.len()
            )));
        }
        self.step_with_exact(tokens, Some(exact))
    }

    fn step_with_exact(&mut self, tokens: &[u32], exact: Option<&[u32]>) -> Result<&[f32]> {
        if self.steps >= self.capacity {
            return Err(MarianError::Input(format!(
                "the decoder was started for {} steps",
                self.capacity
            )));
        }
        let vocab = self.model.config.vocab_size;
        if let Some(&bad) = tokens
            .iter()
            .chain(exact.into_iter().flatten())
            .find(|&&t| t as usize >= vocab)
        {
            return Err(MarianError::Input(format!(
                "token id {bad} is outside the vocabulary ({vocab} ids)"
            )));
        }
        let model = self.model;
        let Self {
            state, host_logits, ..
        } = self;
        model.run(|| -> Result<()> {
            match (&model.engine, state) {
                (Engine::Cpu(cpu), DecoderState::Cpu { cache, work }) => {
                    cpu.step(cache, work, tokens, exact)
                }
                (Engine::Generic(g), DecoderState::Generic(state)) => {
                    let logits = g.step(state, tokens)?;
                    *host_logits = logits.flatten_all()?.to_vec1::<f32>()?;
                    Ok(())
                }
                _ => unreachable!("a decoder belongs to its model's engine"),
            }
        })?;
        self.steps += 1;
        Ok(match &self.state {
            DecoderState::Cpu { work, .. } => &work.logits,
            DecoderState::Generic(_) => &self.host_logits,
        })
    }

    /// Reorders rows within their sources: row `r` becomes what row `parents[r]` was (each
    /// parent in its row's own source, as beam search picks them).
    pub fn reorder_rows(&mut self, parents: &[u32]) -> Result<()> {
        let rows = self.rows();
        if parents.len() != rows || parents.iter().any(|&p| p as usize >= rows) {
            return Err(MarianError::Input(format!(
                "reorder_rows: {} parents for {rows} rows",
                parents.len()
            )));
        }
        match &mut self.state {
            DecoderState::Cpu { cache, .. } => cache.reorder_rows(parents),
            DecoderState::Generic(g) => self.model.run(|| g.reorder_rows(parents)),
        }
    }

    /// Keeps only the given sources (increasing indices into the current ones), so finished
    /// sources stop costing work.
    pub fn keep_sources(&mut self, keep: &[u32]) -> Result<()> {
        match &mut self.state {
            DecoderState::Cpu { cache, .. } => cache.keep_sources(keep),
            DecoderState::Generic(g) => {
                let sources = g.sources();
                if keep.windows(2).any(|w| w[0] >= w[1])
                    || keep.iter().any(|&s| s as usize >= sources)
                {
                    return Err(MarianError::Input(format!(
                        "keep_sources: {keep:?} is not an increasing list of sources below {sources}"
                    )));
                }
                self.model.run(|| g.keep_sources(keep))
            }
        }
    }
}

/// Refuses a model whose weights (in `precision`) and position table would not fit in this
/// machine's memory, before anything is allocated.
fn check_memory(config: &MarianConfig, precision: Precision) -> Result<()> {
    check_memory_against(config, precision, physical_memory())
}

fn check_memory_against(
    config: &MarianConfig,
    precision: Precision,
    total: Option<u128>,
) -> Result<()> {
    let bytes_per_weight: u128 = match precision {
        Precision::F32 => 4,
        Precision::F16 | Precision::Bf16 => 2,
        Precision::Int8 => 1,
    };
    let positions = config.max_position_embeddings as u128 * config.d_model as u128 * 4;
    let bytes = config.parameters() * bytes_per_weight + positions;
    if let Some(total) = total {
        if bytes > total {
            return Err(MarianError::OutOfMemory {
                what: format!(
                    "the model's weights and position table (this machine has {})",
                    human_bytes(total)
                ),
                bytes,
            });
        }
    }
    Ok(())
}

/// Total physical memory, where the system reports it.
fn physical_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Checks that every tensor the architecture needs is in the weight file with its shape,
/// before any is read.
fn check_tensors(config: &MarianConfig, weights: &Weights) -> Result<()> {
    let c = config;
    let d = c.d_model;
    let mut expected: Vec<(String, Vec<usize>)> = Vec::new();
    let mut layer = |prefix: String, attentions: &[&str], norms: &[&str], ffn: usize| {
        for attn in attentions {
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                expected.push((format!("{prefix}.{attn}.{proj}.weight"), vec![d, d]));
                expected.push((format!("{prefix}.{attn}.{proj}.bias"), vec![d]));
            }
        }
        for norm in norms {
            expected.push((format!("{prefix}.{norm}.weight"), vec![d]));
            expected.push((format!("{prefix}.{norm}.bias"), vec![d]));
        }
        expected.push((format!("{prefix}.fc1.weight"), vec![ffn, d]));
        expected.push((format!("{prefix}.fc1.bias"), vec![ffn]));
        expected.push((format!("{prefix}.fc2.weight"), vec![d, ffn]));
        expected.push((format!("{prefix}.fc2.bias"), vec![d]));
    };
    for i in 0..c.encoder_layers {
        layer(
            format!("model.encoder.layers.{i}"),
            &["self_attn"],
            &["self_attn_layer_norm", "final_layer_norm"],
            c.encoder_ffn_dim,
        );
    }
    for i in 0..c.decoder_layers {
        layer(
            format!("model.decoder.layers.{i}"),
            &["self_attn", "encoder_attn"],
            &[
                "self_attn_layer_norm",
                "encoder_attn_layer_norm",
                "final_layer_norm",
            ],
            c.decoder_ffn_dim,
        );
    }
    let embedding = super::cpu::embedding_name(weights)?;
    expected.push((embedding.to_string(), vec![c.vocab_size, d]));
    if weights.contains("lm_head.weight") {
        expected.push(("lm_head.weight".into(), vec![c.vocab_size, d]));
    }
    if weights.contains("final_logits_bias") {
        expected.push(("final_logits_bias".into(), vec![1, c.vocab_size]));
    }
    for (name, shape) in &expected {
        weights.check(name, shape)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marian::config::opus_mt_fr_en;

    #[test]
    fn memory_estimate_against_the_machine() {
        let (config, _) = opus_mt_fr_en();
        // opus-mt-fr-en: 74.6 M parameters (the tied embedding once) + the position table.
        assert_eq!(config.parameters() / 100_000, 746);
        let gb = 1_000_000_000u128;
        assert!(check_memory_against(&config, Precision::F32, Some(gb)).is_ok());
        let err = check_memory_against(&config, Precision::F32, Some(gb / 10)).unwrap_err();
        assert!(
            err.to_string().contains("this machine has 100.0 MB"),
            "{err}"
        );
        assert!(check_memory_against(&config, Precision::Int8, Some(gb / 10)).is_ok());
        assert!(check_memory_against(&config, Precision::F32, None).is_ok());
    }

    #[test]
    fn option_combinations() {
        let base = ModelOptions::default();
        assert!(base.validate().is_ok());
        let int8 = ModelOptions {
            precision: Precision::Int8,
            ..base.clone()
        };
        assert!(matches!(
            int8.engine(),
            Ok(EngineChoice::Cpu { int8: true, .. })
        ));
        let f16 = ModelOptions {
            precision: Precision::F16,
            ..base.clone()
        };
        assert_eq!(
            f16.engine().unwrap(),
            EngineChoice::Generic { dtype: DType::F16 }
        );
        let f16_isa = ModelOptions {
            kernels: KernelChoice::Isa(Isa::Portable),
            ..f16
        };
        assert!(f16_isa.validate().is_err());
        assert_eq!(
            "AVX2".parse::<KernelChoice>().unwrap(),
            KernelChoice::Isa(Isa::Avx2)
        );
        assert!("sse".parse::<KernelChoice>().is_err());
    }
}
