//! The layers of the generic engine, on candle tensors (any device, any float type).

use candle_core::{DType, Device, Tensor};

use crate::marian::config::{Activation, MarianConfig};
use crate::marian::error::Result;
use crate::marian::weights::Prefixed;

/// LayerNorm epsilon of every Marian layer norm (transformers' default).
const LAYER_NORM_EPS: f32 = 1e-5;

/// Where and in which type the tensors live.
#[derive(Clone)]
pub(crate) struct Placement {
    pub(crate) device: Device,
    pub(crate) dtype: DType,
}

impl Placement {
    /// Tensor `name` under `w`, of `shape`, converted and moved.
    pub(crate) fn tensor(&self, w: &Prefixed<'_>, name: &str, shape: &[usize]) -> Result<Tensor> {
        let values = w.read(name, shape)?;
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?)
    }
}

/// A dense layer `y = x W^T + b` over the last dimension of a 2-D input.
pub(crate) struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn load(w: &Prefixed<'_>, place: &Placement, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self {
            weight: place.tensor(w, "weight", &[out_dim, in_dim])?,
            bias: place.tensor(w, "bias", &[out_dim])?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        dense(x, &self.weight, Some(&self.bias))
    }
}

/// `x W^T + b` for a 2-D `x`.
pub(crate) fn dense(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// LayerNorm with learned scale and shift.
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn load(w: &Prefixed<'_>, place: &Placement, dim: usize) -> Result<Self> {
        Ok(Self {
            weight: place.tensor(w, "weight", &[dim])?,
            bias: place.tensor(w, "bias", &[dim])?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            &x.contiguous()?,
            &self.weight,
            &self.bias,
            LAYER_NORM_EPS,
        )?)
    }
}

/// Multi-head attention projections (`q_proj`, `k_proj`, `v_proj`, `out_proj`).
pub(crate) struct Attention {
    pub(crate) q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    pub(crate) out_proj: Linear,
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) scaling: f64,
}

impl Attention {
    fn load(w: &Prefixed<'_>, place: &Placement, d_model: usize, heads: usize) -> Result<Self> {
        let head_dim = d_model / heads;
        Ok(Self {
            q_proj: Linear::load(&w.pp("q_proj"), place, d_model, d_model)?,
            k_proj: Linear::load(&w.pp("k_proj"), place, d_model, d_model)?,
            v_proj: Linear::load(&w.pp("v_proj"), place, d_model, d_model)?,
            out_proj: Linear::load(&w.pp("out_proj"), place, d_model, d_model)?,
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
    pub(crate) fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (batch, len, d_model) = x.dims3()?;
        let flat = x.reshape((batch * len, d_model))?;
        let k = self.split_heads(&self.k_proj.forward(&flat)?, batch, len)?;
        let v = self.split_heads(&self.v_proj.forward(&flat)?, batch, len)?;
        Ok((k, v))
    }

    /// Keys and values of a single step (rows, d_model), each (rows, heads, 1, head_dim).
    pub(crate) fn step_keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let rows = x.dims()[0];
        let shape = (rows, self.heads, 1, self.head_dim);
        Ok((
            self.k_proj.forward(x)?.reshape(shape)?,
            self.v_proj.forward(x)?.reshape(shape)?,
        ))
    }

    /// Scaled dot-product attention of `q` over `k`/`v` (all (batch, heads, len, head_dim)),
    /// with an additive mask broadcast over the scores; returns (batch, heads, q_len, head_dim).
    pub(crate) fn attend(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        Ok(Self::attend_with_weights(q, k, v, mask)?.0)
    }

    /// [`Attention::attend`], also returning the attention weights (batch, heads, q_len,
    /// k_len).
    pub(crate) fn attend_with_weights(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(v)?;
        Ok((out, probs))
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

/// The position-wise feed-forward block `fc2(act(fc1(x)))`.
pub(crate) struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(
        w: &Prefixed<'_>,
        place: &Placement,
        d_model: usize,
        ffn: usize,
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(&w.pp("fc1"), place, d_model, ffn)?,
            fc2: Linear::load(&w.pp("fc2"), place, ffn, d_model)?,
            activation,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?;
        let h = match self.activation {
            Activation::Swish => h.silu()?,
            Activation::Relu => h.relu()?,
            Activation::Gelu => h.gelu_erf()?,
            Activation::GeluTanh => h.gelu()?,
        };
        self.fc2.forward(&h)
    }
}

pub(crate) struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    pub(crate) fn load(w: &Prefixed<'_>, place: &Placement, c: &MarianConfig) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::load(
                &w.pp("self_attn"),
                place,
                c.d_model,
                c.encoder_attention_heads,
            )?,
            self_attn_layer_norm: LayerNorm::load(&w.pp("self_attn_layer_norm"), place, c.d_model)?,
            ffn: FeedForward::load(w, place, c.d_model, c.encoder_ffn_dim, c.activation)?,
            final_layer_norm: LayerNorm::load(&w.pp("final_layer_norm"), place, c.d_model)?,
        })
    }

    /// Post-norm layer: x = LN(x + SelfAttn(x)); x = LN(x + FFN(x)).
    pub(crate) fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len, d_model) = x.dims3()?;
        let x = (x + self.self_attn.forward_full(x, mask)?)?;
        let x = self.self_attn_layer_norm.forward(&x)?;
        let flat = x.reshape((batch * len, d_model))?;
        let x = (&flat + self.ffn.forward(&flat)?)?;
        let x = self.final_layer_norm.forward(&x)?;
        Ok(x.reshape((batch, len, d_model))?)
    }
}

pub(crate) struct DecoderLayer {
    pub(crate) self_attn: Attention,
    pub(crate) self_attn_layer_norm: LayerNorm,
    pub(crate) encoder_attn: Attention,
    pub(crate) encoder_attn_layer_norm: LayerNorm,
    pub(crate) ffn: FeedForward,
    pub(crate) final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    pub(crate) fn load(w: &Prefixed<'_>, place: &Placement, c: &MarianConfig) -> Result<Self> {
        let (d, heads) = (c.d_model, c.decoder_attention_heads);
        Ok(Self {
            self_attn: Attention::load(&w.pp("self_attn"), place, d, heads)?,
            self_attn_layer_norm: LayerNorm::load(&w.pp("self_attn_layer_norm"), place, d)?,
            encoder_attn: Attention::load(&w.pp("encoder_attn"), place, d, heads)?,
            encoder_attn_layer_norm: LayerNorm::load(&w.pp("encoder_attn_layer_norm"), place, d)?,
            ffn: FeedForward::load(w, place, d, c.decoder_ffn_dim, c.activation)?,
            final_layer_norm: LayerNorm::load(&w.pp("final_layer_norm"), place, d)?,
        })
    }
}
