//! CPU kernels for the shapes of step-by-step decoding, where candle's general operations
//! spend more time in overheads than in arithmetic.
//!
//! - A decoding step attends with one query per row: candle's batched matmul would call the
//!   GEMM library once per (row, head) — thousands of tiny calls per step. Here each (row, head)
//!   is a short loop over the cached keys, and rows run in parallel.
//! - With one to a few rows (batch 1, beam 4), a dense layer is a matrix-vector product bound
//!   by memory bandwidth; reading each weight row once for all input rows, on all threads,
//!   beats the general GEMM path several times over.
//!
//! Both work on f32 tensors in CPU memory; callers fall back to candle's operations otherwise.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use candle_core::{DType, Device, Storage, Tensor};
use rayon::prelude::*;

/// Most input rows for which [`skinny_linear`] beats the GEMM library.
pub const SKINNY_MAX_ROWS: usize = 8;

/// Most input rows for which the GEMM library is faster with the weight as left operand.
pub const WIDE_WEIGHT_MAX_ROWS: usize = 16;

/// Whether the kernels are used at all (they are unless a test asks for candle's generic
/// operations, the path GPUs take).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the CPU kernels off or on for the whole process. Off, the CPU runs candle's generic
/// operations, the same code the GPU back-ends run: tests use it to check that path.
pub fn set_cpu_kernels(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the kernels here can run on this tensor: f32 in CPU memory.
pub fn applies(t: &Tensor) -> bool {
    ENABLED.load(Ordering::Relaxed) && matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Runs `f` on the contiguous f32 data of a CPU tensor, without copying it.
pub(crate) fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => {
            let data = &cpu.as_slice::<f32>()?[layout.start_offset()..];
            f(&data[..t.elem_count()])
        }
        _ => bail!("CPU kernel called on a non-CPU tensor"),
    }
}

/// `x W^T + b` for `x` of shape (rows, in) with few rows, `w` of shape (out, in), `b` (out).
pub fn skinny_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (rows, inner) = x.dims2()?;
    let (outs, w_inner) = w.dims2()?;
    if inner != w_inner {
        bail!("skinny_linear: input width {inner} but weight width {w_inner}");
    }
    let mut out = vec![0f32; rows * outs];
    with_data(x, |xs| {
        with_data(w, |ws| {
            let bias = match b {
                Some(b) => Some(b.to_vec1::<f32>()?),
                None => None,
            };
            // Columns of the output in parallel chunks; each weight row is read once.
            let chunk = outs.div_ceil(rayon::current_num_threads() * 8).max(64);
            let mut columns: Vec<f32> = vec![0f32; rows * outs];
            columns
                .par_chunks_mut(chunk * rows)
                .enumerate()
                .for_each(|(c, block)| {
                    let first = c * chunk;
                    for (j, dst) in block.chunks_mut(rows).enumerate() {
                        let o = first + j;
                        let wrow = &ws[o * inner..(o + 1) * inner];
                        let bias = bias.as_ref().map_or(0.0, |b| b[o]);
                        for (i, d) in dst.iter_mut().enumerate() {
                            *d = dot(&xs[i * inner..(i + 1) * inner], wrow) + bias;
                        }
                    }
                });
            // `columns` is (outs, rows): transpose into the (rows, outs) result.
            for (o, col) in columns.chunks(rows).enumerate() {
                for (i, &v) in col.iter().enumerate() {
                    out[i * outs + o] = v;
                }
            }
            Ok(())
        })
    })?;
    Ok(Tensor::from_vec(out, (rows, outs), x.device())?)
}

/// Attention with one query per row, over the first `len` keys of each row's cache.
///
/// - `q`: (rows, heads, head_dim), already scaled.
/// - `k`, `v`: (kv_rows, heads, capacity, head_dim); row `r` uses cache row `r / group`
///   (beams of one source share its cross-attention keys).
/// - `mask`: optional additive mask (kv_rows, len) over the keys.
///
/// Returns (rows, heads * head_dim).
pub fn single_query_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    len: usize,
    group: usize,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (rows, heads, head_dim) = q.dims3()?;
    let (kv_rows, k_heads, capacity, k_dim) = k.dims4()?;
    if k_heads != heads || k_dim != head_dim || rows != kv_rows * group || len > capacity {
        bail!("single_query_attention: incompatible shapes");
    }
    let mask_data = match mask {
        Some(m) => Some(m.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let mut out = vec![0f32; rows * heads * head_dim];
    with_data(q, |qs| {
        with_data(k, |ks| {
            with_data(v, |vs| {
                out.par_chunks_mut(head_dim).enumerate().for_each_init(
                    Vec::new,
                    |scores, (index, dst)| {
                        let (row, head) = (index / heads, index % heads);
                        let kv_row = row / group;
                        let base = (kv_row * heads + head) * capacity * head_dim;
                        let query = &qs[index * head_dim..(index + 1) * head_dim];
                        scores.clear();
                        scores.extend((0..len).map(|t| {
                            let key = &ks[base + t * head_dim..base + (t + 1) * head_dim];
                            let m = mask_data.as_ref().map_or(0.0, |m| m[kv_row * len + t]);
                            dot(query, key) + m
                        }));
                        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let mut sum = 0f32;
                        for s in scores.iter_mut() {
                            *s = (*s - max).exp();
                            sum += *s;
                        }
                        dst.fill(0.0);
                        for (t, &p) in scores.iter().enumerate() {
                            let value = &vs[base + t * head_dim..base + (t + 1) * head_dim];
                            let weight = p / sum;
                            for (d, &x) in dst.iter_mut().zip(value) {
                                *d += weight * x;
                            }
                        }
                    },
                );
                Ok(())
            })
        })
    })?;
    Ok(Tensor::from_vec(out, (rows, heads * head_dim), q.device())?)
}

/// Gathers cache rows: row `r` of the result is row `rows[r]` of `cache`
/// (shape (rows, heads, capacity, head_dim)), copying only the first `len` positions — one
/// pass, where narrow + index_select + slice_set would copy three times.
pub fn gather_cache_rows(cache: &Tensor, rows: &[u32], len: usize) -> Result<Tensor> {
    let (src_rows, heads, capacity, head_dim) = cache.dims4()?;
    if let Some(&bad) = rows.iter().find(|&&r| r as usize >= src_rows) {
        bail!("gather_cache_rows: row {bad} of {src_rows}");
    }
    let row_size = heads * capacity * head_dim;
    let filled = len * head_dim;
    let mut out = vec![0f32; rows.len() * row_size];
    with_data(cache, |src| {
        out.par_chunks_mut(row_size)
            .zip(rows.par_iter())
            .for_each(|(dst, &from)| {
                let from = &src[from as usize * row_size..(from as usize + 1) * row_size];
                for h in 0..heads {
                    let at = h * capacity * head_dim;
                    dst[at..at + filled].copy_from_slice(&from[at..at + filled]);
                }
            });
        Ok(())
    })?;
    Ok(Tensor::from_vec(
        out,
        (rows.len(), heads, capacity, head_dim),
        cache.device(),
    )?)
}

/// Dot product: AVX2 + FMA where the CPU has them, portable code otherwise.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Dot product with several independent accumulators, so the compiler vectorises it.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Dot product with four 8-lane fused multiply-add accumulators.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 32 <= n, or i + 8 <= n, keeps every 8-float load in bounds.
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let offset = i + 8 * k;
            *acc = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(offset)),
                _mm256_loadu_ps(pb.add(offset)),
                *acc,
            );
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i)),
            _mm256_loadu_ps(pb.add(i)),
            acc[0],
        );
        i += 8;
    }
    let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), total);
    let mut sum: f32 = lanes.iter().sum();
    for k in i..n {
        sum += a[k] * b[k];
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn gather_cache_rows_equals_index_select() {
        let dev = Device::Cpu;
        let cache = Tensor::randn(0f32, 1.0, (4, 2, 6, 3), &dev).unwrap();
        let rows = [2u32, 2, 0, 3];
        let got = gather_cache_rows(&cache, &rows, 4)
            .unwrap()
            .narrow(2, 0, 4)
            .unwrap();
        let index = Tensor::new(&rows, &dev).unwrap();
        let want = cache
            .index_select(&index, 0)
            .unwrap()
            .narrow(2, 0, 4)
            .unwrap();
        assert_eq!(close(&got, &want), 0.0);
    }

    #[test]
    fn dot_kernels_agree() {
        for n in [0usize, 1, 7, 8, 31, 32, 33, 64, 100, 512] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-4, "n = {n}");
            assert!((dot_portable(&a, &b) as f64 - want).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn skinny_linear_equals_matmul() {
        let dev = Device::Cpu;
        for rows in [1, 3, 8] {
            let x = Tensor::randn(0f32, 1.0, (rows, 37), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (101, 37), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, 101, &dev).unwrap();
            let want = x
                .matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            let got = skinny_linear(&x, &w, Some(&b)).unwrap();
            assert!(close(&got, &want) < 1e-4);
        }
    }

    #[test]
    fn attention_equals_softmax_formula() {
        let dev = Device::Cpu;
        let (sources, group, heads, cap, hd, len) = (2, 3, 2, 7, 4, 5);
        let q = Tensor::randn(0f32, 1.0, (sources * group, heads, hd), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (sources, heads, cap, hd), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (sources, heads, cap, hd), &dev).unwrap();
        let mask = Tensor::new(
            &[[0f32, 0., 0., f32::NEG_INFINITY, 0.], [0., 0., 0., 0., 0.]],
            &dev,
        )
        .unwrap();
        let got = single_query_attention(&q, &k, &v, len, group, Some(&mask)).unwrap();
        // Reference: expand the shared keys per row and use candle's ops.
        let index = Tensor::new(&[0u32, 0, 0, 1, 1, 1], &dev).unwrap();
        let k_rows = k
            .narrow(2, 0, len)
            .unwrap()
            .contiguous()
            .unwrap()
            .index_select(&index, 0)
            .unwrap();
        let v_rows = v
            .narrow(2, 0, len)
            .unwrap()
            .contiguous()
            .unwrap()
            .index_select(&index, 0)
            .unwrap();
        let m_rows = mask
            .index_select(&index, 0)
            .unwrap()
            .reshape((6, 1, 1, len))
            .unwrap();
        let scores = q
            .unsqueeze(2)
            .unwrap()
            .matmul(&k_rows.t().unwrap())
            .unwrap()
            .broadcast_add(&m_rows)
            .unwrap();
        let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let want = probs
            .matmul(&v_rows)
            .unwrap()
            .reshape((6, heads * hd))
            .unwrap();
        assert!(close(&got, &want) < 1e-5);
    }
}
