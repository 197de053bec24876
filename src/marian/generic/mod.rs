//! The generic engine: the Marian encoder-decoder on candle's operations, for GPUs and for
//! the f16 / bf16 number types. On the CPU in f32 it is the path tests use to prove that what
//! the GPU runs equals transformers (the CPU engine is used otherwise).
//!
//! Unlike candle-transformers' `marian.rs`, this model masks padded source positions, keeps the
//! decoder's self-attention keys and values in preallocated buffers, computes the
//! cross-attention keys and values once per batch, and lets beam search reorder or drop rows.

mod layers;

use candle_core::{DType, Device, Tensor};

use crate::marian::config::MarianConfig;
use crate::marian::cpu::embedding_name;
use crate::marian::error::{try_vec, MarianError, Result};
use crate::marian::weights::Weights;

use layers::{dense, Attention, DecoderLayer, EncoderLayer, Placement};

/// A Marian model on candle tensors.
pub(crate) struct GenericModel {
    place: Placement,
    d_model: usize,
    pad: u32,
    embed_tokens: Tensor,
    embed_scale: f64,
    positions: Tensor,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    lm_head: Tensor,
    final_logits_bias: Option<Tensor>,
}

/// An encoded batch: states (batch, len, d_model) and the additive key mask (batch, 1, 1, len).
pub(crate) struct GenericEncoded {
    pub(crate) states: Tensor,
    mask: Tensor,
}

/// Per-layer decoder caches for one batch of sources being decoded.
///
/// Rows are grouped: each source owns `group` consecutive rows (its beams). Self-attention
/// keys/values live in buffers preallocated for the longest output, written in place at each
/// step; cross-attention keys/values are computed once per source and shared by its beams.
pub(crate) struct GenericDecoder {
    self_kv: Vec<(Tensor, Tensor)>,
    cross_kv: Vec<(Tensor, Tensor)>,
    cross_mask: Tensor,
    group: usize,
    len: usize,
    capacity: usize,
    /// Whether each step keeps its alignment weights in `alignment`.
    pub(crate) record_alignment: bool,
    /// The last step's alignment weights (last layer's cross-attention, head 0), (rows,
    /// source length) in f32.
    pub(crate) alignment: Option<Tensor>,
}

impl GenericDecoder {
    /// Current rows.
    pub(crate) fn rows(&self) -> usize {
        self.sources() * self.group
    }

    /// Sources still decoded.
    pub(crate) fn sources(&self) -> usize {
        self.cross_mask.dims()[0]
    }

    /// Row `r` of the new state is row `parents[r]` of the old one.
    pub(crate) fn reorder_rows(&mut self, parents: &[u32]) -> Result<()> {
        if parents.iter().enumerate().all(|(i, &r)| r as usize == i) || self.len == 0 {
            return Ok(());
        }
        let device = self.cross_mask.device().clone();
        let index = Tensor::new(parents, &device)?;
        for (k, v) in &mut self.self_kv {
            for cache in [k, v] {
                let reordered = cache
                    .narrow(2, 0, self.len)?
                    .contiguous()?
                    .index_select(&index, 0)?;
                cache.slice_set(&reordered, 2, 0)?;
            }
        }
        Ok(())
    }

    /// Keeps only the given sources (indices into the current ones, increasing).
    pub(crate) fn keep_sources(&mut self, keep: &[u32]) -> Result<()> {
        let device = self.cross_mask.device().clone();
        let source_index = Tensor::new(keep, &device)?;
        let group = self.group as u32;
        let rows: Vec<u32> = keep
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

impl GenericModel {
    /// Builds the model from `weights` on `device` in `dtype`.
    pub(crate) fn load(
        config: &MarianConfig,
        weights: &Weights,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let c = config;
        let place = Placement {
            device: device.clone(),
            dtype,
        };
        let root = weights.pp("");
        let embed_name = embedding_name(weights)?;
        let shape = [c.vocab_size, c.d_model];
        let embed_tokens = place.tensor(&root, embed_name, &shape)?;
        let lm_head = if weights.contains("lm_head.weight") {
            place.tensor(&root, "lm_head.weight", &shape)?
        } else {
            embed_tokens.clone()
        };
        let final_logits_bias = if weights.contains("final_logits_bias") {
            let values = root.read("final_logits_bias", &[1, c.vocab_size])?;
            if values.iter().any(|&v| v != 0.0) {
                Some(
                    place
                        .tensor(&root, "final_logits_bias", &[1, c.vocab_size])?
                        .flatten_all()?,
                )
            } else {
                None
            }
        } else {
            None
        };
        let encoder = (0..c.encoder_layers)
            .map(|i| {
                EncoderLayer::load(&weights.pp(format!("model.encoder.layers.{i}")), &place, c)
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..c.decoder_layers)
            .map(|i| {
                DecoderLayer::load(&weights.pp(format!("model.decoder.layers.{i}")), &place, c)
            })
            .collect::<Result<Vec<_>>>()?;
        let table = crate::marian::cpu::sinusoidal_table(c.max_position_embeddings, c.d_model);
        let positions =
            Tensor::from_vec(table, (c.max_position_embeddings, c.d_model), &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?;
        Ok(Self {
            place,
            d_model: c.d_model,
            pad: c.pad_token_id,
            embed_tokens,
            embed_scale: if c.scale_embedding {
                (c.d_model as f64).sqrt()
            } else {
                1.0
            },
            positions,
            encoder,
            decoder,
            lm_head,
            final_logits_bias,
        })
    }

    fn embed(&self, ids: &Tensor, first_position: usize, len: usize) -> Result<Tensor> {
        let dims = ids.dims().to_vec();
        let flat = ids.flatten_all()?;
        let tokens = (self.embed_tokens.index_select(&flat, 0)? * self.embed_scale)?;
        let mut shape = dims;
        shape.push(self.d_model);
        let tokens = tokens.reshape(shape)?;
        let positions = self.positions.narrow(0, first_position, len)?;
        Ok(tokens.broadcast_add(&positions)?)
    }

    /// Runs the encoder over `sources` (already checked), padded.
    pub(crate) fn encode(&self, sources: &[Vec<u32>]) -> Result<GenericEncoded> {
        let len = sources.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sources.len() * len);
        let mut mask = Vec::with_capacity(sources.len() * len);
        for source in sources {
            ids.extend_from_slice(source);
            ids.extend(std::iter::repeat_n(self.pad, len - source.len()));
            mask.extend(std::iter::repeat_n(0f32, source.len()));
            mask.extend(std::iter::repeat_n(f32::NEG_INFINITY, len - source.len()));
        }
        let device = &self.place.device;
        let ids = Tensor::from_vec(ids, (sources.len(), len), device)?;
        let mask = Tensor::from_vec(mask, (sources.len(), 1, 1, len), device)?
            .to_dtype(self.place.dtype)?;
        let mut x = self.embed(&ids, 0, len)?;
        for layer in &self.encoder {
            x = layer.forward(&x, &mask)?;
        }
        Ok(GenericEncoded { states: x, mask })
    }

    /// Prepares decoding: cross-attention keys/values for every layer, and self-attention
    /// buffers for `group` rows per source and up to `capacity` steps.
    pub(crate) fn start_decoding(
        &self,
        encoded: &GenericEncoded,
        group: usize,
        capacity: usize,
    ) -> Result<GenericDecoder> {
        let sources = encoded.states.dims()[0];
        let rows = sources * group;
        let cross_kv = self
            .decoder
            .iter()
            .map(|layer| layer.encoder_attn.keys_values(&encoded.states))
            .collect::<Result<Vec<_>>>()?;
        let bytes = (self.decoder.len() * 2 * rows * capacity * self.d_model) as u128
            * self.place.dtype.size_in_bytes() as u128;
        if self.place.device.is_cpu() {
            // candle aborts on a failed allocation: ask first.
            drop(try_vec(bytes as usize, 0u8, "decoder caches")?);
        }
        let self_kv = self
            .decoder
            .iter()
            .map(|layer| {
                let attn = &layer.self_attn;
                let shape = (rows, attn.heads, capacity, attn.head_dim);
                let zeros = || Tensor::zeros(shape, self.place.dtype, &self.place.device);
                Ok((zeros()?, zeros()?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GenericDecoder {
            self_kv,
            cross_kv,
            cross_mask: encoded.mask.clone(),
            group,
            len: 0,
            capacity,
            record_alignment: false,
            alignment: None,
        })
    }

    /// One decoder step for every row: `tokens` holds the last token of each row. Returns the
    /// logits (rows, vocab) in f32, with `final_logits_bias` added.
    pub(crate) fn step(&self, state: &mut GenericDecoder, tokens: &[u32]) -> Result<Tensor> {
        let rows = state.rows();
        if tokens.len() != rows {
            return Err(MarianError::Input(format!(
                "decoder step: {} tokens for {rows} rows",
                tokens.len()
            )));
        }
        if state.len >= state.capacity {
            return Err(MarianError::Input(format!(
                "decoder step: the caches hold only {} steps",
                state.capacity
            )));
        }
        let step = state.len;
        let ids = Tensor::new(tokens, &self.place.device)?;
        let mut x = self.embed(&ids, step, 1)?; // (rows, d_model)
        for (i, layer) in self.decoder.iter().enumerate() {
            x = self.decoder_layer_step(layer, state, i, &x)?;
        }
        state.len += 1;
        let logits = dense(&x, &self.lm_head, self.final_logits_bias.as_ref())?;
        Ok(logits.to_dtype(DType::F32)?)
    }

    fn decoder_layer_step(
        &self,
        layer: &DecoderLayer,
        state: &mut GenericDecoder,
        index: usize,
        x: &Tensor,
    ) -> Result<Tensor> {
        let rows = state.rows();
        let step = state.len;
        let d_model = self.d_model;

        // Self-attention: one new query per row over the cached keys/values.
        let attn = &layer.self_attn;
        let heads_shape = (rows, attn.heads, 1, attn.head_dim);
        let q = (attn.q_proj.forward(x)? * attn.scaling)?.reshape(heads_shape)?;
        let (k_new, v_new) = attn.step_keys_values(x)?;
        let (k_cache, v_cache) = &state.self_kv[index];
        k_cache.slice_set(&k_new, 2, step)?;
        v_cache.slice_set(&v_new, 2, step)?;
        let k = k_cache.narrow(2, 0, step + 1)?;
        let v = v_cache.narrow(2, 0, step + 1)?;
        let out = Attention::attend(&q, &k, &v, None)?.reshape((rows, d_model))?;
        let x = layer
            .self_attn_layer_norm
            .forward(&(x + attn.out_proj.forward(&out)?)?)?;

        // Cross-attention: the beams of a source form one (group, head_dim) query block per
        // head, so all of them share the source's keys and values without copies.
        let attn = &layer.encoder_attn;
        let sources = state.cross_mask.dims()[0];
        let q = (attn.q_proj.forward(&x)? * attn.scaling)?;
        let (k, v) = &state.cross_kv[index];
        let q = q
            .reshape((sources, state.group, attn.heads, attn.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let (out, weights) = Attention::attend_with_weights(&q, k, v, Some(&state.cross_mask))?;
        if state.record_alignment && index + 1 == self.decoder.len() {
            // Head 0 of the last layer, (sources, group, src_len) -> (rows, src_len).
            let src_len = weights.dims()[3];
            state.alignment = Some(
                weights
                    .narrow(1, 0, 1)?
                    .reshape((rows, src_len))?
                    .to_dtype(DType::F32)?,
            );
        }
        let out = out.transpose(1, 2)?.reshape((rows, d_model))?;
        let x = layer
            .encoder_attn_layer_norm
            .forward(&(&x + attn.out_proj.forward(&out)?)?)?;

        let x = layer
            .final_layer_norm
            .forward(&(&x + layer.ffn.forward(&x)?)?)?;
        Ok(x)
    }
}
