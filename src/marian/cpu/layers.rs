//! The layers of the CPU engine: dense layers (f32 packed or int8), layer norm, feed-forward.

use crate::marian::config::Activation;
use crate::marian::error::{try_resize, MarianError, Result};
use crate::marian::kernels::int8::{self, PackedI8, QuantizedRows};
use crate::marian::kernels::sgemm::{self, PackedF32};
use crate::marian::kernels::{vector, Kernels};
use crate::marian::weights::Prefixed;

/// LayerNorm epsilon of every Marian layer norm (transformers' default).
pub(crate) const LAYER_NORM_EPS: f32 = 1e-5;

/// Rows of a weight matrix read from the checkpoint at a time when packing: bounds the memory
/// a load needs beside the model (1024 rows of 512 floats is 2 MB).
pub(crate) const LOAD_ROWS: usize = 1024;

/// A weight matrix in the form its product runs on.
pub(crate) enum Matrix {
    /// f32, packed in panels.
    F32(PackedF32),
    /// int8 with one scale per output.
    Int8(PackedI8),
}

impl Matrix {
    fn zeros(n: usize, k: usize, int8: bool) -> Self {
        if int8 {
            Matrix::Int8(PackedI8::zeros(n, k))
        } else {
            Matrix::F32(PackedF32::zeros(n, k))
        }
    }

    fn set_rows(&mut self, first: usize, rows: &[f32]) -> Result<()> {
        match self {
            Matrix::F32(m) => m.set_rows(first, rows)?,
            Matrix::Int8(m) => m.set_rows(first, rows)?,
        }
        Ok(())
    }
}

/// Scratch space reused by every dense layer of a pass.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Quantized activations for int8 products.
    pub(crate) quantized: QuantizedRows,
}

/// A dense layer `y = x Wᵀ + b`.
pub(crate) struct Linear {
    weights: Matrix,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

impl Linear {
    /// The dense layers `names` under `w` (each `{name}.weight` of `out_dim × in_dim` and
    /// `{name}.bias`), stacked along their outputs into one product.
    pub(crate) fn load_stacked(
        w: &Prefixed<'_>,
        names: &[&str],
        out_dim: usize,
        in_dim: usize,
        int8: bool,
    ) -> Result<Self> {
        let n = out_dim * names.len();
        let mut weights = Matrix::zeros(n, in_dim, int8);
        let mut bias = Vec::with_capacity(n);
        for (part, name) in names.iter().enumerate() {
            let layer = w.pp(name);
            read_rows_into(
                &layer,
                "weight",
                out_dim,
                in_dim,
                part * out_dim,
                &mut weights,
            )?;
            bias.extend(layer.read("bias", &[out_dim])?);
        }
        Ok(Self {
            weights,
            bias: Some(bias),
            n,
            k: in_dim,
        })
    }

    /// One matrix `name` (`n × k`) with an optional bias.
    pub(crate) fn load_matrix(
        w: &Prefixed<'_>,
        name: &str,
        n: usize,
        k: usize,
        bias: Option<Vec<f32>>,
        int8: bool,
    ) -> Result<Self> {
        let mut weights = Matrix::zeros(n, k, int8);
        read_rows_into(w, name, n, k, 0, &mut weights)?;
        Ok(Self {
            weights,
            bias,
            n,
            k,
        })
    }

    /// The bias, if any.
    pub(crate) fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// Row `j` of the weight matrix (dequantized for int8): a tied embedding's row.
    pub(crate) fn weight_row(&self, j: usize) -> Result<Vec<f32>> {
        Ok(match &self.weights {
            Matrix::F32(m) => m.row(j)?,
            Matrix::Int8(m) => m.row(j)?,
        })
    }

    /// `out = x Wᵀ + b` for `rows` rows of `x`; `out` is resized to `rows × n`.
    pub(crate) fn forward(
        &self,
        kernels: &Kernels,
        x: &[f32],
        rows: usize,
        scratch: &mut Scratch,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        try_resize(out, rows * self.n, 0.0, "layer outputs")?;
        self.forward_into(kernels, x, rows, scratch, out)
    }

    /// `out = x Wᵀ + b` into `out` of exactly `rows × n` elements.
    pub(crate) fn forward_into(
        &self,
        kernels: &Kernels,
        x: &[f32],
        rows: usize,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) -> Result<()> {
        debug_assert_eq!(x.len(), rows * self.k);
        if out.len() != rows * self.n {
            return Err(MarianError::Input(format!(
                "dense layer: {} outputs for {rows} rows of {}",
                out.len(),
                self.n
            )));
        }
        let bias = self.bias.as_deref();
        match &self.weights {
            Matrix::F32(w) => sgemm::gemm(kernels.float, x, rows, w, bias, out)?,
            Matrix::Int8(w) => {
                int8::quantize_rows(kernels.int8, x, rows, self.k, &mut scratch.quantized)?;
                int8::gemm(kernels.int8, &scratch.quantized, w, bias, out)?;
            }
        }
        Ok(())
    }
}

/// Reads tensor `name` (`n × k`) in slices of rows into `into`, starting at row `first`.
fn read_rows_into(
    w: &Prefixed<'_>,
    name: &str,
    n: usize,
    k: usize,
    first: usize,
    into: &mut Matrix,
) -> Result<()> {
    let mut start = 0;
    while start < n {
        let end = (start + LOAD_ROWS).min(n);
        let rows = w.read_rows(name, &[n, k], start..end)?;
        into.set_rows(first + start, &rows)?;
        start = end;
    }
    Ok(())
}

/// LayerNorm with learned scale and shift.
pub(crate) struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl LayerNorm {
    pub(crate) fn load(w: &Prefixed<'_>, dim: usize) -> Result<Self> {
        Ok(Self {
            gamma: w.read("weight", &[dim])?,
            beta: w.read("bias", &[dim])?,
        })
    }

    /// `x = LayerNorm(x + residual)`, row by row.
    pub(crate) fn add_forward(
        &self,
        kernels: &Kernels,
        x: &mut [f32],
        residual: &[f32],
    ) -> Result<()> {
        Ok(vector::add_layer_norm(
            kernels.float,
            x,
            residual,
            &self.gamma,
            &self.beta,
            LAYER_NORM_EPS,
        )?)
    }
}

/// The position-wise feed-forward block `fc2(act(fc1(x)))`.
pub(crate) struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    pub(crate) fn load(
        w: &Prefixed<'_>,
        d_model: usize,
        ffn_dim: usize,
        activation: Activation,
        int8: bool,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load_stacked(w, &["fc1"], ffn_dim, d_model, int8)?,
            fc2: Linear::load_stacked(w, &["fc2"], d_model, ffn_dim, int8)?,
            activation,
        })
    }

    /// `out = fc2(act(fc1(x)))`, with `hidden` as scratch.
    pub(crate) fn forward(
        &self,
        kernels: &Kernels,
        x: &[f32],
        rows: usize,
        scratch: &mut Scratch,
        hidden: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.fc1.forward(kernels, x, rows, scratch, hidden)?;
        match self.activation {
            Activation::Swish => vector::silu(kernels.float, hidden),
            Activation::Relu => vector::relu(hidden),
            Activation::Gelu => vector::gelu_erf(hidden),
            Activation::GeluTanh => vector::gelu_tanh(hidden),
        }
        self.fc2.forward(kernels, hidden, rows, scratch, out)
    }
}

/// The sinusoidal position table of Marian: sines in the first half of each row, cosines in the
/// second, computed in f64 like transformers' numpy initialisation.
pub(crate) fn sinusoidal_positions(rows: usize, dim: usize) -> Vec<f32> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; rows * dim];
    for pos in 0..rows {
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf(2.0 * (j / 2) as f64 / dim as f64);
            let column = if j % 2 == 0 { j / 2 } else { half + j / 2 };
            table[pos * dim + column] = if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoids_put_sines_first_then_cosines() {
        let t = sinusoidal_positions(3, 4);
        // Position 0: sin(0) = 0 in the first half, cos(0) = 1 in the second.
        assert_eq!(&t[..4], &[0.0, 0.0, 1.0, 1.0]);
        // Position 1, column 0: sin(1 / 10000^0); column 2: cos(1 / 10000^0).
        assert!((t[4] - 1f32.sin()).abs() < 1e-6);
        assert!((t[6] - 1f32.cos()).abs() < 1e-6);
        // Column 1: sin(1 / 10000^(2/4)) = sin(0.01).
        assert!((t[5] - 0.01f32.sin()).abs() < 1e-6);
    }
}
