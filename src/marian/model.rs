//! The Marian encoder-decoder on candle, with the checkpoint's own tensor names.
//!
//! Unlike candle-transformers' `marian.rs`, this model masks padded source positions, keeps the
//! decoder's self-attention keys and values in preallocated buffers, computes the
//! cross-attention keys and values once per batch, and lets beam search reorder or drop rows.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::config::{Activation, GenerationConfig, MarianConfig};
use super::cpu;

/// LayerNorm epsilon of every Marian layer norm (transformers' default).
const LAYER_NORM_EPS: f32 = 1e-5;

/// A dense layer `y = x W^T + b` over the last dimension of a 2-D input.
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn load(vb: &Weights, prefix: &str, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get((out_dim, in_dim), &format!("{prefix}.weight"))?,
            bias: vb.get(out_dim, &format!("{prefix}.bias"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        dense(x, &self.weight, Some(&self.bias))
    }
}

/// `x W^T + b` for a 2-D `x`, by the fastest route for its number of rows.
fn dense(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let rows = x.dims()[0];
    if rows <= cpu::SKINNY_MAX_ROWS && cpu::applies(x) {
        return cpu::skinny_linear(x, w, b);
    }
    let y = if rows <= cpu::WIDE_WEIGHT_MAX_ROWS && cpu::applies(x) {
        // With tens of rows, the GEMM library packs the small operand cheaply when the weight
        // is the left-hand side: (W x^T)^T.
        w.matmul(&x.t()?)?.t()?.contiguous()?
    } else {
        x.matmul(&w.t()?)?
    };
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// LayerNorm with learned scale and shift.
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn load(vb: &Weights, prefix: &str, dim: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, &format!("{prefix}.weight"))?,
            bias: vb.get(dim, &format!("{prefix}.bias"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            &x.contiguous()?,
            &self.weight,
            &self.bias,
            LAYER_NORM_EPS,
        )?)
    }
}

/// Multi-head attention projections (`q_proj`, `k_proj`, `v_proj`, `out_proj`).
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    fn load(vb: &Weights, prefix: &str, d_model: usize, heads: usize) -> Result<Self> {
        let head_dim = d_model / heads;
        Ok(Self {
            q_proj: Linear::load(vb, &format!("{prefix}.q_proj"), d_model, d_model)?,
            k_proj: Linear::load(vb, &format!("{prefix}.k_proj"), d_model, d_model)?,
            v_proj: Linear::load(vb, &format!("{prefix}.v_proj"), d_model, d_model)?,
            out_proj: Linear::load(vb, &format!("{prefix}.out_proj"), d_model, d_model)?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// Projects `x` of shape (batch * len, d_model) into (batch, heads, len, head_dim).
    fn split_heads(&self, x: &Tensor, batch: usize, len: usize) -> Result<Tensor> {
        Ok(x.reshape((batch, len, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// Keys and values of `x` (batch, len, d_model), each (batch, heads, len, head_dim).
    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (batch, len, d_model) = x.dims3()?;
        let flat = x.reshape((batch * len, d_model))?;
        let k = self.split_heads(&self.k_proj.forward(&flat)?, batch, len)?;
        let v = self.split_heads(&self.v_proj.forward(&flat)?, batch, len)?;
        Ok((k, v))
    }

    /// Scaled dot-product attention of `q` over `k`/`v` (all (batch, heads, len, head_dim)),
    /// with an additive mask broadcast over the scores; returns (batch, heads, q_len, head_dim).
    fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        Ok(probs.matmul(v)?)
    }

    /// Full self-attention over a padded batch (the encoder).
    fn forward_full(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len, d_model) = x.dims3()?;
        let flat = x.reshape((batch * len, d_model))?;
        let q = self.split_heads(&(self.q_proj.forward(&flat)? * self.scaling)?, batch, len)?;
        let k = self.split_heads(&self.k_proj.forward(&flat)?, batch, len)?;
        let v = self.split_heads(&self.v_proj.forward(&flat)?, batch, len)?;
        let out = Self::attend(&q, &k, &v, Some(mask))?;
        let out = out.transpose(1, 2)?.reshape((batch * len, d_model))?;
        Ok(self
            .out_proj
            .forward(&out)?
            .reshape((batch, len, d_model))?)
    }
}

fn activate(activation: Activation, x: &Tensor) -> Result<Tensor> {
    Ok(match activation {
        Activation::Swish => x.silu()?,
        Activation::Relu => x.relu()?,
        Activation::Gelu => x.gelu_erf()?,
        Activation::GeluTanh => x.gelu()?,
    })
}

/// The position-wise feed-forward block `fc2(act(fc1(x)))`.
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(
        vb: &Weights,
        prefix: &str,
        d_model: usize,
        ffn: usize,
        act: Activation,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(vb, &format!("{prefix}.fc1"), d_model, ffn)?,
            fc2: Linear::load(vb, &format!("{prefix}.fc2"), ffn, d_model)?,
            activation: act,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&activate(self.activation, &self.fc1.forward(x)?)?)
    }
}

struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(vb: &Weights, prefix: &str, c: &MarianConfig) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::load(
                vb,
                &format!("{prefix}.self_attn"),
                c.d_model,
                c.encoder_attention_heads,
            )?,
            self_attn_layer_norm: LayerNorm::load(
                vb,
                &format!("{prefix}.self_attn_layer_norm"),
                c.d_model,
            )?,
            ffn: FeedForward::load(vb, prefix, c.d_model, c.encoder_ffn_dim, c.activation)?,
            final_layer_norm: LayerNorm::load(
                vb,
                &format!("{prefix}.final_layer_norm"),
                c.d_model,
            )?,
        })
    }

    /// Post-norm layer: x = LN(x + SelfAttn(x)); x = LN(x + FFN(x)).
    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len, d_model) = x.dims3()?;
        let x = (x + self.self_attn.forward_full(x, mask)?)?;
        let x = self.self_attn_layer_norm.forward(&x)?;
        let flat = x.reshape((batch * len, d_model))?;
        let x = (&flat + self.ffn.forward(&flat)?)?;
        let x = self.final_layer_norm.forward(&x)?;
        Ok(x.reshape((batch, len, d_model))?)
    }
}

struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn load(vb: &Weights, prefix: &str, c: &MarianConfig) -> Result<Self> {
        let heads = c.decoder_attention_heads;
        Ok(Self {
            self_attn: Attention::load(vb, &format!("{prefix}.self_attn"), c.d_model, heads)?,
            self_attn_layer_norm: LayerNorm::load(
                vb,
                &format!("{prefix}.self_attn_layer_norm"),
                c.d_model,
            )?,
            encoder_attn: Attention::load(vb, &format!("{prefix}.encoder_attn"), c.d_model, heads)?,
            encoder_attn_layer_norm: LayerNorm::load(
                vb,
                &format!("{prefix}.encoder_attn_layer_norm"),
                c.d_model,
            )?,
            ffn: FeedForward::load(vb, prefix, c.d_model, c.decoder_ffn_dim, c.activation)?,
            final_layer_norm: LayerNorm::load(
                vb,
                &format!("{prefix}.final_layer_norm"),
                c.d_model,
            )?,
        })
    }
}

/// Per-layer decoder caches for one batch of sources being decoded.
///
/// Rows are grouped: each source owns `group` consecutive rows (its beams). Self-attention
/// keys/values live in buffers preallocated for the longest output, written in place at each
/// step; cross-attention keys/values are computed once per source and shared by its beams.
pub struct DecoderState {
    /// Per layer: self-attention keys and values, (rows, heads, capacity, head_dim).
    self_kv: Vec<(Tensor, Tensor)>,
    /// Per layer: cross-attention keys and values, (sources, heads, src_len, head_dim).
    cross_kv: Vec<(Tensor, Tensor)>,
    /// Additive source padding mask, (sources, 1, 1, src_len).
    cross_mask: Tensor,
    /// Rows per source.
    group: usize,
    /// Tokens already written to the self-attention caches.
    len: usize,
    /// Steps the buffers can hold.
    capacity: usize,
}

impl DecoderState {
    /// Number of decoder rows (sources x group).
    pub fn rows(&self) -> usize {
        self.cross_mask.dims()[0] * self.group
    }

    /// Number of sources still decoded.
    pub fn sources(&self) -> usize {
        self.cross_mask.dims()[0]
    }

    /// Tokens decoded so far (the decoder start token included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reorders rows within their groups: row `r` of the new state is row `rows[r]` of the old
    /// one. `rows` must keep every row inside its source's group (beam search reordering).
    pub fn reorder_rows(&mut self, rows: &[u32]) -> Result<()> {
        if rows.iter().enumerate().all(|(i, &r)| r as usize == i) || self.len == 0 {
            return Ok(());
        }
        let device = self.cross_mask.device().clone();
        let index = Tensor::new(rows, &device)?;
        for (k, v) in &mut self.self_kv {
            for cache in [k, v] {
                if cpu::applies(cache) {
                    *cache = cpu::gather_cache_rows(cache, rows, self.len)?;
                    continue;
                }
                let reordered = cache
                    .narrow(2, 0, self.len)?
                    .contiguous()?
                    .index_select(&index, 0)?;
                cache.slice_set(&reordered, 2, 0)?;
            }
        }
        Ok(())
    }

    /// Keeps only the given sources (indices into the current sources, in order), dropping the
    /// rows of the others so finished sources stop costing work.
    pub fn keep_sources(&mut self, sources: &[u32]) -> Result<()> {
        if sources.len() == self.sources() {
            return Ok(());
        }
        let device = self.cross_mask.device().clone();
        let source_index = Tensor::new(sources, &device)?;
        let group = self.group as u32;
        let rows: Vec<u32> = sources
            .iter()
            .flat_map(|&s| (0..group).map(move |g| s * group + g))
            .collect();
        let row_index = Tensor::new(rows.as_slice(), &device)?;
        for (k, v) in &mut self.self_kv {
            *k = k.index_select(&row_index, 0)?;
            *v = v.index_select(&row_index, 0)?;
        }
        for (k, v) in &mut self.cross_kv {
            *k = k.index_select(&source_index, 0)?;
            *v = v.index_select(&source_index, 0)?;
        }
        self.cross_mask = self.cross_mask.index_select(&source_index, 0)?;
        Ok(())
    }
}

/// A Marian encoder-decoder translation model loaded from a Hugging Face checkpoint.
pub struct MarianModel {
    config: MarianConfig,
    generation: GenerationConfig,
    device: Device,
    dtype: DType,
    embed_tokens: Tensor,
    embed_scale: f64,
    positions: Tensor,
    encoder_layers: Vec<EncoderLayer>,
    decoder_layers: Vec<DecoderLayer>,
    lm_head: Tensor,
    final_logits_bias: Option<Tensor>,
}

/// A checkpoint's tensors, with errors that name the file and the tensor.
struct Weights {
    vb: VarBuilder<'static>,
    path: PathBuf,
}

impl Weights {
    fn open(path: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let vb = if is_safetensors {
            // SAFETY: the file is memory-mapped read-only; traduire never writes to it, and the
            // Hugging Face cache never rewrites a snapshot file in place.
            unsafe { VarBuilder::from_mmaped_safetensors(&[path], dtype, device) }
        } else {
            VarBuilder::from_pth(path, dtype, device)
        }
        .with_context(|| {
            format!(
                "{}: cannot read the weight file (truncated or corrupt?)",
                path.display()
            )
        })?;
        Ok(Self {
            vb,
            path: path.to_path_buf(),
        })
    }

    fn contains(&self, name: &str) -> bool {
        self.vb.contains_tensor(name)
    }

    fn get<S: Into<candle_core::Shape>>(&self, shape: S, name: &str) -> Result<Tensor> {
        let shape = shape.into();
        if !self.contains(name) {
            bail!("{}: tensor {name} is missing", self.path.display());
        }
        self.vb.get(shape.clone(), name).with_context(|| {
            format!(
                "{}: tensor {name} (expected shape {shape:?})",
                self.path.display()
            )
        })
    }
}

/// Random weights drawn from N(0, 0.02) for every tensor asked for: a model with a real
/// architecture for speed measurements, whose output is nonsense.
struct RandomWeights;

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        shape: candle_core::Shape,
        _name: &str,
        _hints: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        Tensor::randn(0f32, 0.02, shape, device)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights have no stored shape for {name}")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        // Tied embeddings and no output bias, like opus-mt.
        name != "lm_head.weight" && name != "final_logits_bias"
    }
}

/// The sinusoidal position table of Marian: sines in the first half of each row, cosines in the
/// second, computed in f64 like transformers' numpy initialisation.
fn sinusoidal_positions(rows: usize, dim: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; rows * dim];
    for pos in 0..rows {
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf(2.0 * (j / 2) as f64 / dim as f64);
            let column = if j % 2 == 0 { j / 2 } else { half + j / 2 };
            table[pos * dim + column] = if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    Ok(Tensor::from_vec(table, (rows, dim), device)?.to_dtype(dtype)?)
}

impl MarianModel {
    /// Loads a checkpoint folder: `config.json`, optional `generation_config.json`, and
    /// `model.safetensors` or `pytorch_model.bin`.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        check_dtype(device, dtype)?;
        let config = MarianConfig::from_file(&dir.join("config.json"))?;
        let generation_file = dir.join("generation_config.json");
        let generation = GenerationConfig::from_files(
            &dir.join("config.json"),
            generation_file
                .is_file()
                .then_some(generation_file.as_path()),
        )?;
        let weights = Weights::open(&crate::source::weights_file(dir)?, dtype, device)?;
        Self::from_weights(config, generation, &weights, device, dtype)
    }

    /// A model with the given architecture and random weights, for speed measurements only:
    /// it translates into nonsense.
    pub fn random(
        config: MarianConfig,
        generation: GenerationConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        check_dtype(device, dtype)?;
        let weights = Weights {
            vb: VarBuilder::from_backend(Box::new(RandomWeights), dtype, device.clone()),
            path: PathBuf::from("<random weights>"),
        };
        Self::from_weights(config, generation, &weights, device, dtype)
    }

    fn from_weights(
        config: MarianConfig,
        generation: GenerationConfig,
        vb: &Weights,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let c = &config;
        let vocab = c.vocab_size;
        // Checkpoints store the shared embedding under different names depending on how they
        // were saved; all of them are the same tied matrix.
        let embed_name = [
            "model.shared.weight",
            "model.encoder.embed_tokens.weight",
            "model.decoder.embed_tokens.weight",
            "lm_head.weight",
        ]
        .into_iter()
        .find(|name| vb.contains(name))
        .with_context(|| {
            format!(
                "{}: tensor model.shared.weight is missing (nor model.encoder.embed_tokens.weight nor lm_head.weight)",
                vb.path.display()
            )
        })?;
        let embed_tokens = vb.get((vocab, c.d_model), embed_name)?;
        let lm_head = if vb.contains("lm_head.weight") {
            vb.get((vocab, c.d_model), "lm_head.weight")?
        } else {
            embed_tokens.clone()
        };
        // opus-mt checkpoints store an all-zero bias: skip adding it at every step.
        let final_logits_bias = if vb.contains("final_logits_bias") {
            let bias = vb.get((1, vocab), "final_logits_bias")?.flatten_all()?;
            let nonzero = bias
                .abs()?
                .max(0)?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()?
                != 0.0;
            nonzero.then_some(bias)
        } else {
            None
        };
        let encoder_layers = (0..c.encoder_layers)
            .map(|i| EncoderLayer::load(vb, &format!("model.encoder.layers.{i}"), c))
            .collect::<Result<Vec<_>>>()?;
        let decoder_layers = (0..c.decoder_layers)
            .map(|i| DecoderLayer::load(vb, &format!("model.decoder.layers.{i}"), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_scale: if c.scale_embedding {
                (c.d_model as f64).sqrt()
            } else {
                1.0
            },
            positions: sinusoidal_positions(c.max_position_embeddings, c.d_model, dtype, device)?,
            embed_tokens,
            encoder_layers,
            decoder_layers,
            lm_head,
            final_logits_bias,
            config,
            generation,
            device: device.clone(),
            dtype,
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

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn embed(&self, ids: &Tensor, first_position: usize, len: usize) -> Result<Tensor> {
        let dims = ids.dims().to_vec();
        let flat = ids.flatten_all()?;
        let tokens = (self.embed_tokens.index_select(&flat, 0)? * self.embed_scale)?;
        let mut shape = dims;
        shape.push(self.config.d_model);
        let tokens = tokens.reshape(shape)?;
        let positions = self.positions.narrow(0, first_position, len)?;
        Ok(tokens.broadcast_add(&positions)?)
    }

    /// Pads source id sequences into a (batch, len) tensor and its additive key mask
    /// (batch, 1, 1, len): 0 on tokens, -inf on padding.
    pub fn pad_sources(&self, sources: &[Vec<u32>]) -> Result<(Tensor, Tensor)> {
        let len = sources.iter().map(Vec::len).max().unwrap_or(0);
        if len == 0 || sources.iter().any(Vec::is_empty) {
            bail!("cannot encode an empty source sequence (it must at least hold </s>)");
        }
        if len > self.config.max_position_embeddings {
            bail!(
                "a source of {len} tokens exceeds the model's {} positions",
                self.config.max_position_embeddings
            );
        }
        let mut ids = Vec::with_capacity(sources.len() * len);
        let mut mask = Vec::with_capacity(sources.len() * len);
        for source in sources {
            if let Some(&bad) = source
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                bail!(
                    "token id {bad} is outside the vocabulary ({} ids)",
                    self.config.vocab_size
                );
            }
            ids.extend_from_slice(source);
            ids.extend(std::iter::repeat_n(
                self.config.pad_token_id,
                len - source.len(),
            ));
            mask.extend(std::iter::repeat_n(0f32, source.len()));
            mask.extend(std::iter::repeat_n(f32::NEG_INFINITY, len - source.len()));
        }
        let ids = Tensor::from_vec(ids, (sources.len(), len), &self.device)?;
        let mask = Tensor::from_vec(mask, (sources.len(), 1, 1, len), &self.device)?
            .to_dtype(self.dtype)?;
        Ok((ids, mask))
    }

    /// Runs the encoder over padded sources: returns (batch, len, d_model).
    pub fn encode(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let mut x = self.embed(ids, 0, len)?;
        for layer in &self.encoder_layers {
            x = layer.forward(&x, mask)?;
        }
        Ok(x)
    }

    /// Prepares decoding of an encoded batch: cross-attention keys/values for every layer, and
    /// self-attention buffers for `group` rows per source and up to `capacity` steps.
    pub fn start_decoding(
        &self,
        encoded: &Tensor,
        mask: &Tensor,
        group: usize,
        capacity: usize,
    ) -> Result<DecoderState> {
        if capacity > self.config.max_position_embeddings {
            bail!(
                "cannot decode {capacity} tokens: the model has {} positions",
                self.config.max_position_embeddings
            );
        }
        let sources = encoded.dims()[0];
        let rows = sources * group;
        let cross_kv = self
            .decoder_layers
            .iter()
            .map(|layer| layer.encoder_attn.keys_values(encoded))
            .collect::<Result<Vec<_>>>()?;
        let self_kv = self
            .decoder_layers
            .iter()
            .map(|layer| {
                let attn = &layer.self_attn;
                let shape = (rows, attn.heads, capacity, attn.head_dim);
                Ok((
                    Tensor::zeros(shape, self.dtype, &self.device)?,
                    Tensor::zeros(shape, self.dtype, &self.device)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState {
            self_kv,
            cross_kv,
            cross_mask: mask.clone(),
            group,
            len: 0,
            capacity,
        })
    }

    /// Runs one decoder step for every row: `tokens` holds the last token of each row. Returns
    /// the raw logits (rows, vocab) in f32, with `final_logits_bias` added.
    pub fn decode_step(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let rows = state.rows();
        if tokens.len() != rows {
            bail!("decode_step: {} tokens for {rows} rows", tokens.len());
        }
        if state.len >= state.capacity {
            bail!("decode_step: the caches hold only {} steps", state.capacity);
        }
        let step = state.len;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed(&ids, step, 1)?; // (rows, d_model)
        for (i, layer) in self.decoder_layers.iter().enumerate() {
            x = self.decoder_layer_step(layer, state, i, &x)?;
        }
        state.len += 1;
        let logits = dense(&x, &self.lm_head, self.final_logits_bias.as_ref())?;
        Ok(logits.to_dtype(DType::F32)?)
    }

    fn decoder_layer_step(
        &self,
        layer: &DecoderLayer,
        state: &mut DecoderState,
        index: usize,
        x: &Tensor,
    ) -> Result<Tensor> {
        let rows = state.rows();
        let step = state.len;
        let d_model = self.config.d_model;

        // Self-attention: one new query per row over the cached keys/values.
        let attn = &layer.self_attn;
        let heads_shape = (rows, attn.heads, 1, attn.head_dim);
        let q = (attn.q_proj.forward(x)? * attn.scaling)?.reshape(heads_shape)?;
        let k_new = attn.k_proj.forward(x)?.reshape(heads_shape)?;
        let v_new = attn.v_proj.forward(x)?.reshape(heads_shape)?;
        let (k_cache, v_cache) = &state.self_kv[index];
        k_cache.slice_set(&k_new, 2, step)?;
        v_cache.slice_set(&v_new, 2, step)?;
        let out = if cpu::applies(&q) {
            let q = q.reshape((rows, attn.heads, attn.head_dim))?;
            cpu::single_query_attention(&q, k_cache, v_cache, step + 1, 1, None)?
        } else {
            let k = k_cache.narrow(2, 0, step + 1)?;
            let v = v_cache.narrow(2, 0, step + 1)?;
            Attention::attend(&q, &k, &v, None)?.reshape((rows, d_model))?
        };
        let x = layer
            .self_attn_layer_norm
            .forward(&(x + attn.out_proj.forward(&out)?)?)?;

        // Cross-attention: the beams of a source form one (group, head_dim) query block per
        // head, so all of them share the source's keys and values without copies.
        let attn = &layer.encoder_attn;
        let (sources, group) = (state.sources(), state.group);
        let q = (attn.q_proj.forward(&x)? * attn.scaling)?;
        let (k, v) = &state.cross_kv[index];
        let out = if cpu::applies(&q) {
            let q = q.reshape((rows, attn.heads, attn.head_dim))?;
            let src_len = k.dims()[2];
            let mask = state.cross_mask.reshape((sources, src_len))?;
            cpu::single_query_attention(&q, k, v, src_len, group, Some(&mask))?
        } else {
            let q = q
                .reshape((sources, group, attn.heads, attn.head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            Attention::attend(&q, k, v, Some(&state.cross_mask))?
                .transpose(1, 2)?
                .reshape((rows, d_model))?
        };
        let x = layer
            .encoder_attn_layer_norm
            .forward(&(&x + attn.out_proj.forward(&out)?)?)?;

        let x = layer
            .final_layer_norm
            .forward(&(&x + layer.ffn.forward(&x)?)?)?;
        Ok(x)
    }
}

/// Rejects dtypes the device cannot compute in.
pub fn check_dtype(device: &Device, dtype: DType) -> Result<()> {
    match (device, dtype) {
        (_, DType::F32) => Ok(()),
        (Device::Cpu, DType::F16) => Ok(()),
        (Device::Cpu, DType::BF16) => {
            bail!("--dtype bf16 is not supported on the CPU (candle has no bf16 matmul there); use f32 or f16")
        }
        (Device::Cpu, other) => bail!("--dtype {other:?} is not supported on the CPU"),
        (_, DType::F16 | DType::BF16) => Ok(()),
        (_, other) => bail!("--dtype {other:?} is not supported"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoids_put_sines_first_then_cosines() {
        let t = sinusoidal_positions(3, 4, DType::F32, &Device::Cpu).unwrap();
        let rows = t.to_vec2::<f32>().unwrap();
        // Position 0: sin(0) = 0 in the first half, cos(0) = 1 in the second.
        assert_eq!(rows[0], vec![0.0, 0.0, 1.0, 1.0]);
        // Position 1, column 0: sin(1 / 10000^0) ; column 2: cos(1 / 10000^0).
        assert!((rows[1][0] - 1f32.sin()).abs() < 1e-6);
        assert!((rows[1][2] - 1f32.cos()).abs() < 1e-6);
        // Column 1: sin(1 / 10000^(2/4)) = sin(0.01).
        assert!((rows[1][1] - 0.01f32.sin()).abs() < 1e-6);
    }
}
