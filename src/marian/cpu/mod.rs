//! The CPU engine: the Marian encoder-decoder on traduire's own kernels (f32 or int8), with
//! the checkpoint's tensor names.
//!
//! Activations are plain row-major `Vec<f32>` buffers, reused from step to step. Queries only
//! attend over the valid keys of their own sentence and every kernel is row-independent and
//! instruction-set-independent (see [`super::kernels`]), so a sentence is translated to the same
//! bits alone or in any batch, on any x86 CPU.

mod cache;
mod layers;
mod pages;

use rayon::prelude::*;

use crate::marian::config::MarianConfig;
use crate::marian::error::{try_vec, MarianError, Result};
use crate::marian::kernels::attention::{self, Heads, History, KeysValues};
use crate::marian::kernels::{vector, Kernels};
use crate::marian::weights::Weights;

pub(crate) use cache::DecoderCache;
use cache::LayerHistory;
use layers::{FeedForward, LayerNorm, Linear, Scratch};
use pages::Pages;

pub(crate) use layers::sinusoidal_positions as sinusoidal_table;

struct EncoderLayer {
    qkv: Linear,
    out: Linear,
    attn_norm: LayerNorm,
    ffn: FeedForward,
    final_norm: LayerNorm,
}

struct DecoderLayer {
    self_qkv: Linear,
    self_out: Linear,
    self_norm: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    cross_norm: LayerNorm,
    ffn: FeedForward,
    final_norm: LayerNorm,
}

/// Token embeddings: rows of the tied output matrix, or a table of their own.
enum Embedding {
    /// The checkpoint ties embeddings and output projection: one matrix serves both.
    Tied,
    /// A separate `vocab × d_model` table (a checkpoint with its own `lm_head.weight`).
    Table(Vec<f32>),
    /// With int8 weights, the tied embedding is looked up at the precision of
    /// [`CpuModel::exact_head`]: the int8 rows alone (one scale per token) would add their
    /// rounding to every input.
    TiedExact,
}

/// A Marian model on the CPU kernels.
pub(crate) struct CpuModel {
    kernels: Kernels,
    d_model: usize,
    embed_scale: f32,
    embedding: Embedding,
    /// `max_position_embeddings × d_model`.
    positions: Vec<f32>,
    max_positions: usize,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    /// Output projection, with `final_logits_bias` as its bias.
    lm_head: Linear,
    /// With int8 weights: the output matrix's quantization residual, quantized to 4 bits, so
    /// that the logits that matter can be recomputed at about 12-bit precision (see
    /// [`refine_logits`]) for 15 MB instead of the f32 matrix's 122 MB.
    exact_head: Option<Residual>,
    encoder_heads: Heads,
    decoder_heads: Heads,
}

/// An encoded batch on the CPU.
pub(crate) struct CpuEncoded {
    /// `sources × len × d_model`.
    pub(crate) states: Vec<f32>,
    /// Padded length.
    pub(crate) len: usize,
    /// Valid length of each source.
    pub(crate) lens: Vec<usize>,
}

/// Buffers of one decoding pass, reused at every step.
#[derive(Default)]
pub(crate) struct Workspace {
    scratch: Scratch,
    x: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    hidden: Vec<f32>,
    /// Logits of the last step, `rows × vocab`.
    pub(crate) logits: Vec<f32>,
    /// Whether each step also leaves its alignment weights in `alignment`.
    pub(crate) record_alignment: bool,
    /// The last step's alignment weights: the last decoder layer's cross-attention weights
    /// of head 0, `rows × source length` (the batch's padded length; zeros past a row's
    /// source).
    pub(crate) alignment: Vec<f32>,
}

impl CpuModel {
    /// Builds the model from `weights`, quantizing the dense layers to int8 when `int8`.
    pub(crate) fn load(
        config: &MarianConfig,
        weights: &Weights,
        kernels: Kernels,
        int8: bool,
    ) -> Result<Self> {
        let c = config;
        let d = c.d_model;
        let root = weights.pp("");
        let embed_name = embedding_name(weights)?;
        // opus-mt checkpoints store an all-zero bias: skip adding it at every step.
        let final_logits_bias = if weights.contains("final_logits_bias") {
            let bias = root.read("final_logits_bias", &[1, c.vocab_size])?;
            bias.iter().any(|&v| v != 0.0).then_some(bias)
        } else {
            None
        };
        let untied = weights.contains("lm_head.weight") && embed_name != "lm_head.weight";
        let head_name = if untied { "lm_head.weight" } else { embed_name };
        let lm_head =
            Linear::load_matrix(&root, head_name, c.vocab_size, d, final_logits_bias, int8)?;
        let exact_head = if int8 {
            Some(Residual::load(&root, head_name, &lm_head, c.vocab_size, d)?)
        } else {
            None
        };
        let embedding = match (untied, int8) {
            (true, _) => Embedding::Table(root.read(embed_name, &[c.vocab_size, d])?),
            (false, true) => Embedding::TiedExact,
            (false, false) => Embedding::Tied,
        };
        let encoder = (0..c.encoder_layers)
            .map(|i| {
                let w = weights.pp(format!("model.encoder.layers.{i}"));
                let attn = w.pp("self_attn");
                Ok(EncoderLayer {
                    qkv: Linear::load_stacked(&attn, &["q_proj", "k_proj", "v_proj"], d, d, int8)?,
                    out: Linear::load_stacked(&attn, &["out_proj"], d, d, int8)?,
                    attn_norm: LayerNorm::load(&w.pp("self_attn_layer_norm"), d)?,
                    ffn: FeedForward::load(&w, d, c.encoder_ffn_dim, c.activation, int8)?,
                    final_norm: LayerNorm::load(&w.pp("final_layer_norm"), d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..c.decoder_layers)
            .map(|i| {
                let w = weights.pp(format!("model.decoder.layers.{i}"));
                let attn = w.pp("self_attn");
                let cross = w.pp("encoder_attn");
                Ok(DecoderLayer {
                    self_qkv: Linear::load_stacked(
                        &attn,
                        &["q_proj", "k_proj", "v_proj"],
                        d,
                        d,
                        int8,
                    )?,
                    self_out: Linear::load_stacked(&attn, &["out_proj"], d, d, int8)?,
                    self_norm: LayerNorm::load(&w.pp("self_attn_layer_norm"), d)?,
                    cross_q: Linear::load_stacked(&cross, &["q_proj"], d, d, int8)?,
                    cross_kv: Linear::load_stacked(&cross, &["k_proj", "v_proj"], d, d, int8)?,
                    cross_out: Linear::load_stacked(&cross, &["out_proj"], d, d, int8)?,
                    cross_norm: LayerNorm::load(&w.pp("encoder_attn_layer_norm"), d)?,
                    ffn: FeedForward::load(&w, d, c.decoder_ffn_dim, c.activation, int8)?,
                    final_norm: LayerNorm::load(&w.pp("final_layer_norm"), d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let heads = |n: usize| Heads {
            heads: n,
            head_dim: d / n,
            scale: ((d / n) as f64).powf(-0.5) as f32,
        };
        Ok(Self {
            kernels,
            d_model: d,
            embed_scale: if c.scale_embedding {
                (d as f64).sqrt() as f32
            } else {
                1.0
            },
            embedding,
            positions: sinusoidal_table(c.max_position_embeddings, d),
            max_positions: c.max_position_embeddings,
            encoder,
            decoder,
            lm_head,
            exact_head,
            encoder_heads: heads(c.encoder_attention_heads),
            decoder_heads: heads(c.decoder_attention_heads),
        })
    }

    /// The kernels in use.
    pub(crate) fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// `x[i] = embedding(ids[i]) * scale + position(positions[i])` for every id.
    fn embed(
        &self,
        ids: &[u32],
        positions: impl Iterator<Item = usize>,
        x: &mut Vec<f32>,
    ) -> Result<()> {
        let d = self.d_model;
        x.clear();
        x.try_reserve(ids.len() * d)
            .map_err(|_| MarianError::OutOfMemory {
                what: "embeddings".into(),
                bytes: (ids.len() * d * 4) as u128,
            })?;
        for (&id, pos) in ids.iter().zip(positions) {
            let row = match &self.embedding {
                Embedding::Tied => self.lm_head.weight_row(id as usize)?,
                Embedding::Table(t) => t[id as usize * d..(id as usize + 1) * d].to_vec(),
                Embedding::TiedExact => match &self.exact_head {
                    Some(residual) => residual.row(&self.lm_head, id as usize)?,
                    None => self.lm_head.weight_row(id as usize)?,
                },
            };
            let position = &self.positions[pos * d..(pos + 1) * d];
            x.extend(
                row.iter()
                    .zip(position)
                    .map(|(e, p)| e * self.embed_scale + p),
            );
        }
        Ok(())
    }

    /// Runs the encoder over `sources` (already checked: non-empty, ids in the vocabulary,
    /// within the positions), padded with `pad`.
    pub(crate) fn encode(&self, sources: &[Vec<u32>], pad: u32) -> Result<CpuEncoded> {
        let k = &self.kernels;
        let d = self.d_model;
        let len = sources.iter().map(Vec::len).max().unwrap_or(0);
        let lens: Vec<usize> = sources.iter().map(Vec::len).collect();
        let rows = sources.len() * len;
        let mut ids = Vec::with_capacity(rows);
        for s in sources {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad, len - s.len()));
        }
        let mut x = Vec::new();
        self.embed(&ids, (0..rows).map(|r| r % len), &mut x)?;
        let mut w = Workspace::default();
        for layer in &self.encoder {
            layer.qkv.forward(k, &x, rows, &mut w.scratch, &mut w.qkv)?;
            w.attn.resize(rows * d, 0.0);
            attention::self_attention(
                k.float,
                &w.qkv,
                len,
                &lens,
                self.encoder_heads,
                &mut w.attn,
            )?;
            layer
                .out
                .forward(k, &w.attn, rows, &mut w.scratch, &mut w.proj)?;
            layer.attn_norm.add_forward(k, &mut w.proj, &x)?;
            std::mem::swap(&mut x, &mut w.proj);
            layer
                .ffn
                .forward(k, &x, rows, &mut w.scratch, &mut w.hidden, &mut w.proj)?;
            layer.final_norm.add_forward(k, &mut w.proj, &x)?;
            std::mem::swap(&mut x, &mut w.proj);
        }
        Ok(CpuEncoded {
            states: x,
            len,
            lens,
        })
    }

    /// Prepares decoding of an encoded batch with `group` rows per source, for up to
    /// `capacity` steps (a hint: the history grows past it if needed): the cross-attention
    /// keys and values of every layer and room for the self-attention history.
    pub(crate) fn start_decoding(
        &self,
        encoded: &CpuEncoded,
        group: usize,
        capacity: usize,
    ) -> Result<DecoderCache> {
        let d = self.d_model;
        let rows = encoded.lens.len() * encoded.len;
        let mut scratch = Scratch::default();
        let cross = self
            .decoder
            .iter()
            .map(|layer| {
                let mut kv = Pages::zeroed(rows * 2 * d, "cross-attention keys")?;
                layer.cross_kv.forward_into(
                    &self.kernels,
                    &encoded.states,
                    rows,
                    &mut scratch,
                    kv.as_mut_slice(),
                )?;
                Ok(kv)
            })
            .collect::<Result<Vec<_>>>()?;
        let layers = (0..self.decoder.len())
            .map(|_| {
                Ok(LayerHistory {
                    keys: Pages::zeroed(0, "decoder history")?,
                    values: Pages::zeroed(0, "decoder history")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut cache = DecoderCache {
            group,
            sources: (0..encoded.lens.len() as u32).collect(),
            layers,
            block_starts: vec![0],
            origins: Vec::new(),
            cross,
            src_len: encoded.len,
            src_lens: encoded.lens.clone(),
        };
        // Room for every step up front, so that no step moves the history. Pages are only
        // backed once written, but the system may refuse to map that much at once (strict
        // overcommit, large beams × batch × length limits): then the history starts empty and
        // grows as steps need it, failing only when the memory is really not there.
        let history = capacity
            .saturating_mul(encoded.lens.len() * group)
            .saturating_mul(d);
        if cache.grow_history(history).is_err() {
            cache.grow_history(0)?;
        }
        Ok(cache)
    }

    /// One decoder step: `tokens` holds the last token of each current row. Leaves the
    /// logits (`rows × vocab`, `final_logits_bias` added) in `work.logits`.
    pub(crate) fn step(
        &self,
        cache: &mut DecoderCache,
        work: &mut Workspace,
        tokens: &[u32],
        also_exact: Option<&[u32]>,
    ) -> Result<()> {
        let k = &self.kernels;
        let d = self.d_model;
        let rows = cache.rows();
        if tokens.len() != rows {
            return Err(MarianError::Input(format!(
                "decoder step: {} tokens for {rows} rows",
                tokens.len()
            )));
        }
        let step = cache.steps();
        if step >= self.max_positions {
            return Err(MarianError::Input(format!(
                "cannot decode more than {} tokens: the model has {} positions",
                self.max_positions, self.max_positions
            )));
        }
        let Workspace {
            scratch,
            x,
            qkv,
            attn,
            proj,
            hidden,
            logits,
            record_alignment,
            alignment,
        } = work;
        let last_layer = self.decoder.len() - 1;
        self.embed(tokens, std::iter::repeat(step), x)?;
        cache.reserve_block(rows * d)?;
        cache.origins.push((0..rows as u32).collect());
        let block = *cache.block_starts.last().unwrap_or(&0);
        cache.block_starts.push(block + rows * d);
        for (index, layer) in self.decoder.iter().enumerate() {
            // Self-attention over this row's own history.
            layer.self_qkv.forward(k, x, rows, scratch, qkv)?;
            let past = &mut cache.layers[index];
            let keys = &mut past.keys.as_mut_slice()[block..block + rows * d];
            let values = &mut past.values.as_mut_slice()[block..block + rows * d];
            for r in 0..rows {
                keys[r * d..(r + 1) * d].copy_from_slice(&qkv[r * 3 * d + d..r * 3 * d + 2 * d]);
                values[r * d..(r + 1) * d]
                    .copy_from_slice(&qkv[r * 3 * d + 2 * d..(r + 1) * 3 * d]);
            }
            attn.resize(rows * d, 0.0);
            let history = History {
                keys: past.keys.as_slice(),
                values: past.values.as_slice(),
                block_starts: &cache.block_starts,
                origins: &cache.origins,
            };
            attention::single_query_history(
                k.float,
                qkv,
                3 * d,
                history,
                self.decoder_heads,
                attn,
            )?;
            layer.self_out.forward(k, attn, rows, scratch, proj)?;
            layer.self_norm.add_forward(k, proj, x)?;
            std::mem::swap(x, proj);

            // Cross-attention: the beams of a source share its keys and values.
            layer.cross_q.forward(k, x, rows, scratch, qkv)?;
            let cross = cache.cross[index].as_slice();
            let kv = KeysValues {
                k: cross,
                v: &cross[d..],
                seq_stride: cache.src_len * 2 * d,
                pos_stride: 2 * d,
                lens: &cache.src_lens,
                seq_map: Some(&cache.sources),
            };
            attention::single_query(k.float, qkv, d, cache.group, kv, self.decoder_heads, attn)?;
            if *record_alignment && index == last_layer {
                // Head 0 of the last layer: what Marian's guided alignment trains.
                alignment.resize(rows * cache.src_len, 0.0);
                attention::single_query_weights(
                    k.float,
                    qkv,
                    d,
                    cache.group,
                    kv,
                    self.decoder_heads,
                    0,
                    cache.src_len,
                    alignment,
                )?;
            }
            layer.cross_out.forward(k, attn, rows, scratch, proj)?;
            layer.cross_norm.add_forward(k, proj, x)?;
            std::mem::swap(x, proj);

            layer.ffn.forward(k, x, rows, scratch, hidden, proj)?;
            layer.final_norm.add_forward(k, proj, x)?;
            std::mem::swap(x, proj);
        }
        self.lm_head.forward(k, x, rows, scratch, logits)?;
        if let Some(residual) = &self.exact_head {
            refine_logits(k.float, x, &self.lm_head, residual, d, logits, also_exact)?;
        }
        Ok(())
    }
}

/// Logits recomputed exactly in each row (besides one optional token per row): its highest.
/// Eight cover the candidates a beam-search row can contribute (2 × 4 beams) and the bulk of
/// the log-softmax normalizer.
const EXACT_LOGITS: usize = 8;

/// With int8 weights, recomputes the logits that decide the output at the precision of the
/// residual (see [`Residual`]), in f32: the `EXACT_LOGITS` highest of each row (the candidates
/// of the search and nearly all of the log-softmax's normalizer) and the row's token in `also`
/// (the target when scoring). An int8 logit is off by up to a few hundredths; these are off by
/// about a ten-thousandth. Rows are independent and the order of every sum is fixed, so the
/// result keeps the engine's batch and instruction-set invariance.
fn refine_logits(
    isa: crate::marian::kernels::Isa,
    hidden: &[f32],
    head: &Linear,
    residual: &Residual,
    d: usize,
    logits: &mut [f32],
    also: Option<&[u32]>,
) -> Result<()> {
    let vocab = residual.scales.len();
    let bias = head.bias();
    logits.par_chunks_mut(vocab).enumerate().try_for_each_init(
        Vec::new,
        |top: &mut Vec<usize>, (r, row)| -> Result<()> {
            let x = &hidden[r * d..(r + 1) * d];
            highest(isa, row, EXACT_LOGITS, top);
            if let Some(token) = also.and_then(|a| a.get(r)) {
                top.push(*token as usize);
            }
            for &t in top.iter() {
                let dot = vector::dot(isa, x, &residual.row(head, t)?);
                row[t] = match bias {
                    Some(b) => dot + b[t],
                    None => dot,
                };
            }
            Ok(())
        },
    )
}

/// The output matrix's int8 quantization residual, quantized again to 4 bits with one scale per
/// row: `w ≈ q s + r s'`, where `q s` is the main int8 row and `r` is within ±7.
pub(crate) struct Residual {
    /// `vocab × ⌈d / 2⌉` bytes, row-major, two residuals per byte (low nibble first).
    values: Vec<u8>,
    scales: Vec<f32>,
    d: usize,
}

/// Largest 4-bit residual.
const RESIDUAL_MAX: f32 = 7.0;

impl Residual {
    /// Reads the matrix `name` again, a slice of rows at a time, and keeps what its int8 form
    /// in `head` misses.
    fn load(
        w: &crate::marian::weights::Prefixed<'_>,
        name: &str,
        head: &Linear,
        rows: usize,
        d: usize,
    ) -> Result<Self> {
        let stride = d.div_ceil(2);
        let mut values = try_vec(rows * stride, 0u8, "the output matrix's residual")?;
        let mut scales = Vec::with_capacity(rows);
        let mut start = 0;
        while start < rows {
            let end = (start + layers::LOAD_ROWS).min(rows);
            let slice = w.read_rows(name, &[rows, d], start..end)?;
            let packed: Vec<Result<(Vec<u8>, f32)>> = slice
                .par_chunks_exact(d)
                .enumerate()
                .map(|(offset, exact)| {
                    let main = head.weight_row(start + offset)?;
                    let residual: Vec<f32> = exact.iter().zip(&main).map(|(e, m)| e - m).collect();
                    let amax = residual.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let (scale, inv) = if amax > 0.0 && amax.is_finite() {
                        (amax / RESIDUAL_MAX, RESIDUAL_MAX / amax)
                    } else {
                        (0.0, 0.0)
                    };
                    let mut bytes = vec![0u8; stride];
                    for (k, r) in residual.iter().enumerate() {
                        // Ties to even by the magic-number addition (no C library call).
                        let x = (r * inv).clamp(-RESIDUAL_MAX, RESIDUAL_MAX);
                        let q = ((x + 12_582_912.0) - 12_582_912.0) as i8;
                        bytes[k / 2] |= ((q as u8) & 0x0f) << (4 * (k % 2));
                    }
                    Ok((bytes, scale))
                })
                .collect();
            for (offset, row) in packed.into_iter().enumerate() {
                let (bytes, scale) = row?;
                let j = start + offset;
                values[j * stride..(j + 1) * stride].copy_from_slice(&bytes);
                scales.push(scale);
            }
            start = end;
        }
        Ok(Self { values, scales, d })
    }

    /// Row `j`, `q s + r s'` (a product and a sum per element, the same on every CPU).
    fn row(&self, head: &Linear, j: usize) -> Result<Vec<f32>> {
        let mut row = head.weight_row(j)?;
        let stride = self.d.div_ceil(2);
        let packed = &self.values[j * stride..(j + 1) * stride];
        for (k, v) in row.iter_mut().enumerate() {
            // Sign-extend the nibble: shift it to the top of an i8, then back.
            let nibble = (packed[k / 2] >> (4 * (k % 2))) << 4;
            let r = (nibble as i8) >> 4;
            *v += f32::from(r) * self.scales[j];
        }
        Ok(row)
    }
}

/// Indices of the `k` largest values of `row` (the first one wins ties), in `into`.
fn highest(isa: crate::marian::kernels::Isa, row: &[f32], k: usize, into: &mut Vec<usize>) {
    const BLOCK: usize = 256;
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (b, block) in row.chunks(BLOCK).enumerate() {
        if best.len() == k && vector::max(isa, block) <= best[k - 1].0 {
            continue;
        }
        for (i, &v) in block.iter().enumerate() {
            if best.len() < k || v > best[k - 1].0 {
                let at = best.partition_point(|&(w, _)| w >= v);
                best.insert(at, (v, b * BLOCK + i));
                best.truncate(k);
            }
        }
    }
    into.clear();
    into.extend(best.iter().map(|&(_, i)| i));
}

/// Checkpoints store the shared embedding under different names depending on how they were
/// saved; all of them are the same tied matrix.
pub(crate) fn embedding_name(weights: &Weights) -> Result<&'static str> {
    [
        "model.shared.weight",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ]
    .into_iter()
    .find(|name| weights.contains(name))
    .ok_or_else(|| MarianError::Weights {
        path: weights.path().to_path_buf(),
        problem: "tensor model.shared.weight is missing (nor model.encoder.embed_tokens.weight nor lm_head.weight)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_rows_are_within_a_fourteenth_of_an_int8_step() {
        let weights = Weights::random();
        let root = weights.pp("");
        // An odd width exercises the last, half-used byte of each packed row.
        let (n, d) = (40, 37);
        let exact = root.read("head", &[n, d]).unwrap();
        let head = Linear::load_matrix(&root, "head", n, d, None, true).unwrap();
        let residual = Residual::load(&root, "head", &head, n, d).unwrap();
        for j in 0..n {
            let row = &exact[j * d..(j + 1) * d];
            let amax = row.iter().fold(0f32, |a, v| a.max(v.abs()));
            let int8_step = amax / 127.0;
            let main = head.weight_row(j).unwrap();
            let refined = residual.row(&head, j).unwrap();
            let main_error = row
                .iter()
                .zip(&main)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let refined_error = row
                .iter()
                .zip(&refined)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                main_error <= int8_step / 2.0 * 1.001,
                "row {j}: {main_error}"
            );
            assert!(
                refined_error <= int8_step / 2.0 / RESIDUAL_MAX * 1.001 + 1e-9,
                "row {j}: {refined_error} vs {main_error}"
            );
        }
    }
}
