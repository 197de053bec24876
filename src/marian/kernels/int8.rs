//! The int8 matrix product `Y = X Wᵀ + b`, as CTranslate2 computes it on CPUs:
//! - `W` is quantized once at load, symmetric, one scale per output row (`w ≈ s_j q_jk`);
//! - `X` is quantized for each product, one scale per row (`x ≈ s_i p_ik`);
//! - the products `Σ_k p_ik q_jk` are exact 32-bit integers;
//! - `y_ij = (Σ p q) (s_i s_j) + b_j`, the bias added in the same pass.
//!
//! Kernels, chosen once at load:
//! - AVX-512 VNNI: `vpdpbusd` multiplies unsigned by signed bytes, so activations are shifted
//!   by +128 and the `128 Σ_k q_jk` this adds is taken off again (precomputed per column);
//! - AVX2: `vpmaddubsw` on the weights' magnitudes `|q|` (once per group, shared by the rows)
//!   and the activations signed like their weights, `sign(q) p`, which cannot saturate since
//!   both are within ±127, then `vpmaddwd` to 32 bits;
//! - portable Rust.
//!
//! All three compute the same integers, and the dequantization is the same three roundings
//! everywhere, so the output does not depend on the CPU nor on how rows are batched.

use rayon::prelude::*;

use super::{ensure_shape, split_ranges, Isa, ShapeError};

/// Output columns per packed panel.
pub const PANEL: usize = 16;
/// Inner elements per 32-bit group (a `vpdpbusd` lane).
const GROUP: usize = 4;

/// A weight matrix quantized to int8 and packed for [`gemm`].
#[derive(Debug, Clone, PartialEq)]
pub struct PackedI8 {
    n: usize,
    k: usize,
    /// `k` rounded up to a whole group.
    k4: usize,
    /// Panel `p`, group `g`: 16 columns × 4 consecutive inner values, 64 bytes.
    data: Vec<i8>,
    /// Per output column `j`: `w_jk ≈ scale_j q_jk`.
    scales: Vec<f32>,
    /// Per output column: `128 Σ_k q_jk`, removed after the VNNI product.
    shift_compensation: Vec<i32>,
}

impl PackedI8 {
    /// An all-zero matrix of `n` outputs and `k` inputs, to fill with [`PackedI8::set_rows`].
    pub fn zeros(n: usize, k: usize) -> Self {
        let k4 = k.div_ceil(GROUP) * GROUP;
        let panels = n.div_ceil(PANEL);
        Self {
            n,
            k,
            k4,
            data: vec![0; panels * k4 * PANEL],
            scales: vec![0.0; n],
            shift_compensation: vec![0; n],
        }
    }

    /// Quantizes a row-major `n × k` matrix (one row per output).
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Result<Self, ShapeError> {
        ensure_shape!(
            "quantize",
            w.len() == n * k,
            "{} values for {n} x {k}",
            w.len()
        );
        let mut packed = Self::zeros(n, k);
        packed.set_rows(0, w)?;
        Ok(packed)
    }

    /// Quantizes rows `first ..` of `W` from their f32 values (row-major, `k` per row), so a
    /// large matrix can be quantized a slice at a time.
    pub fn set_rows(&mut self, first: usize, rows: &[f32]) -> Result<(), ShapeError> {
        let k = self.k;
        ensure_shape!(
            "set_rows",
            k > 0 && rows.len().is_multiple_of(k),
            "{} values are not rows of {k}",
            rows.len()
        );
        ensure_shape!(
            "set_rows",
            first + rows.len() / k <= self.n,
            "rows past the last of {}",
            self.n
        );
        // Quantize the rows on the current thread pool, then lay them out in their panels.
        let quantized: Vec<(Vec<i8>, f32)> = rows
            .par_chunks_exact(k)
            .map(|row| {
                let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                let (scale, inv) = if amax > 0.0 && amax.is_finite() {
                    (amax / 127.0, 127.0 / amax)
                } else {
                    (0.0, 0.0)
                };
                (row.iter().map(|&v| round_to_i8(v * inv)).collect(), scale)
            })
            .collect();
        for (offset, (q, scale)) in quantized.into_iter().enumerate() {
            let j = first + offset;
            let (p, lane) = (j / PANEL, j % PANEL);
            let panel = p * self.k4 * PANEL;
            for (kk, &v) in q.iter().enumerate() {
                let (g, within) = (kk / GROUP, kk % GROUP);
                self.data[panel + (g * PANEL + lane) * GROUP + within] = v;
            }
            self.scales[j] = scale;
            self.shift_compensation[j] = 128 * q.iter().map(|&v| i32::from(v)).sum::<i32>();
        }
        Ok(())
    }

    /// Output size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Inner size.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Row `j` of `W`, dequantized (for embedding lookups in a tied output matrix).
    pub fn row(&self, j: usize) -> Result<Vec<f32>, ShapeError> {
        ensure_shape!("row", j < self.n, "row {j} of {}", self.n);
        let (p, lane) = (j / PANEL, j % PANEL);
        let panel = &self.data[p * self.k4 * PANEL..(p + 1) * self.k4 * PANEL];
        let scale = self.scales[j];
        // Each group of 4 inner values of a column is 4 consecutive bytes, groups 64 apart.
        let mut row: Vec<f32> = panel
            .chunks_exact(PANEL * GROUP)
            .flat_map(|group| &group[lane * GROUP..(lane + 1) * GROUP])
            .map(|&q| f32::from(q) * scale)
            .collect();
        row.truncate(self.k);
        Ok(row)
    }

    /// Bytes of packed weights, scales and compensations.
    pub fn bytes(&self) -> usize {
        self.data.len() + 8 * self.n
    }
}

/// `x` rounded to the nearest integer (ties to even) and clamped to ±127. The magic-number
/// addition rounds in the FPU's default mode with plain SSE2 arithmetic, where `f32::round`
/// would be a call into the C library for every weight.
#[inline]
fn round_to_i8(x: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 × 2^23: adding it leaves the rounded integer.
    let clamped = x.clamp(-127.0, 127.0);
    ((clamped + MAGIC) - MAGIC) as i8
}

/// Activations quantized for one product: one byte per value (shifted by +128 for the VNNI
/// kernel) and one scale per row. Reused from product to product to avoid allocations.
#[derive(Debug, Default, Clone)]
pub struct QuantizedRows {
    isa: Option<Isa>,
    rows: usize,
    k4: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
}

/// Quantizes `m` rows of `k` values for [`gemm`] with the instruction set `isa`.
pub fn quantize_rows(
    isa: Isa,
    x: &[f32],
    m: usize,
    k: usize,
    into: &mut QuantizedRows,
) -> Result<(), ShapeError> {
    ensure_shape!(
        "quantize_rows",
        x.len() == m * k,
        "input has {} values, not {m} x {k}",
        x.len()
    );
    let k4 = k.div_ceil(GROUP) * GROUP;
    into.isa = Some(isa);
    into.rows = m;
    into.k4 = k4;
    into.data.resize(m * k4, 0);
    into.scales.resize(m, 0.0);
    // VNNI multiplies unsigned activations: store p + 128 (padding then holds 128, i.e. 0).
    let shift: u8 = if isa == Isa::Avx512 { 0x80 } else { 0 };
    for ((row, dst), scale) in x
        .chunks_exact(k.max(1))
        .zip(into.data.chunks_exact_mut(k4.max(1)))
        .zip(into.scales.iter_mut())
    {
        let amax = super::vector::max_abs(isa, row);
        *scale = amax / 127.0;
        if amax.is_nan() || amax == 0.0 {
            // A NaN row stays NaN through its scale; a zero row is all zeros.
            dst.fill(shift);
            continue;
        }
        let inv = 127.0 / amax;
        quantize_row(isa, row, inv, shift, &mut dst[..k]);
        dst[k..].fill(shift);
    }
    Ok(())
}

/// `dst[i] = clamp(round_ties_even(row[i] inv), -127, 127) as i8`, XOR `shift`.
fn quantize_row(isa: Isa, row: &[f32], inv: f32, shift: u8, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: AVX-512F/BW are supported (the kernels were chosen for this CPU).
        unsafe { quantize_row_avx512(row, inv, shift, dst) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: AVX2 is supported (the kernels were chosen for this CPU).
        unsafe { quantize_row_avx2(row, inv, shift, dst) };
        return;
    }
    let _ = isa;
    quantize_row_scalar(row, inv, shift, dst);
}

fn quantize_row_scalar(row: &[f32], inv: f32, shift: u8, dst: &mut [u8]) {
    for (d, &v) in dst.iter_mut().zip(row) {
        let p = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
        *d = (p as u8) ^ shift;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row_avx512(row: &[f32], inv: f32, shift: u8, dst: &mut [u8]) {
    use std::arch::x86_64::*;
    let full = row.len() / 16 * 16;
    let scale = _mm512_set1_ps(inv);
    let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
    let xor = _mm_set1_epi8(shift as i8);
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= full <= len of both slices.
        let v = _mm512_mul_ps(_mm512_loadu_ps(row.as_ptr().add(i)), scale);
        // Rounds to nearest, ties to even (the default MXCSR mode), like round_ties_even.
        let q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), lo), hi);
        let bytes = _mm_xor_si128(_mm512_cvtepi32_epi8(q), xor);
        _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), bytes);
        i += 16;
    }
    quantize_row_scalar(&row[full..], inv, shift, &mut dst[full..]);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_row_avx2(row: &[f32], inv: f32, shift: u8, dst: &mut [u8]) {
    use std::arch::x86_64::*;
    let full = row.len() / 16 * 16;
    let scale = _mm256_set1_ps(inv);
    let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    let xor = _mm_set1_epi8(shift as i8);
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= full <= len of both slices.
        let q = |at: usize| {
            let v = _mm256_mul_ps(_mm256_loadu_ps(row.as_ptr().add(at)), scale);
            // Rounds to nearest, ties to even (the default MXCSR mode), like round_ties_even.
            _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(v), lo), hi)
        };
        // Two vectors of 8 i32 -> 16 i16 -> 16 i8 (values within ±127: packs never clamp),
        // the 128-bit lanes of each pack put back in order.
        let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(q(i), q(i + 8)));
        let bytes = _mm_packs_epi16(
            _mm256_castsi256_si128(words),
            _mm256_extracti128_si256::<1>(words),
        );
        _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), _mm_xor_si128(bytes, xor));
        i += 16;
    }
    quantize_row_scalar(&row[full..], inv, shift, &mut dst[full..]);
}

/// What the product writes.
enum Epilogue<'a> {
    /// `y = acc (s_i s_j) + b_j` as f32.
    Dequantize {
        bias: Option<&'a [f32]>,
        out: *mut f32,
    },
    /// The exact integer products `Σ_k p_ik q_jk` (for tests).
    Raw(*mut i32),
}

#[derive(Clone, Copy)]
struct SharedPtr(*mut u8);
// SAFETY: tiles of different tasks write disjoint blocks (see `run`).
unsafe impl Send for SharedPtr {}
unsafe impl Sync for SharedPtr {}

/// Fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 17;
/// Bytes of activations or weight panels one tile keeps in the L2 cache.
const TILE_BYTES: usize = 192 * 1024;

/// `out = dequantize(a Wᵀ) + bias`: `a` holds `m` quantized rows (from [`quantize_rows`] with
/// the same `isa`), `out` is `m × n` row-major.
pub fn gemm(
    isa: Isa,
    a: &QuantizedRows,
    w: &PackedI8,
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    let (m, n) = (a.rows, w.n);
    ensure_shape!(
        "int8 gemm",
        out.len() == m * n,
        "output has {} values, not {m} x {n}",
        out.len()
    );
    if let Some(b) = bias {
        ensure_shape!(
            "int8 gemm",
            b.len() == n,
            "bias has {} values, not {n}",
            b.len()
        );
    }
    run(
        isa,
        a,
        w,
        Epilogue::Dequantize {
            bias,
            out: out.as_mut_ptr(),
        },
    )
}

/// The exact integer products `Σ_k p_ik q_jk`, `m × n` (the kernels' raw output, for tests).
pub fn gemm_integers(isa: Isa, a: &QuantizedRows, w: &PackedI8) -> Result<Vec<i32>, ShapeError> {
    let mut out = vec![0i32; a.rows * w.n];
    run(isa, a, w, Epilogue::Raw(out.as_mut_ptr()))?;
    Ok(out)
}

fn run(
    isa: Isa,
    a: &QuantizedRows,
    w: &PackedI8,
    epilogue: Epilogue<'_>,
) -> Result<(), ShapeError> {
    ensure_shape!(
        "int8 gemm",
        a.isa == Some(isa),
        "activations quantized for {:?}, not {isa}",
        a.isa
    );
    ensure_shape!(
        "int8 gemm",
        a.k4 == w.k4,
        "inputs of {} values, weights of {}",
        a.k4,
        w.k4
    );
    let (m, n) = (a.rows, w.n);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let panels = n.div_ceil(PANEL);
    let row_chunk = (TILE_BYTES / w.k4.max(1)).clamp(16, 4096);
    let group_cap = (TILE_BYTES / (w.k4.max(1) * PANEL)).max(4);
    let row_chunks = m.div_ceil(row_chunk);
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && m * n * w.k4 >= PARALLEL_MIN_MACS;
    let wanted_groups = if parallel {
        (threads * 4).div_ceil(row_chunks)
    } else {
        1
    };
    let group = panels.div_ceil(wanted_groups).clamp(1, group_cap);
    let groups: Vec<std::ops::Range<usize>> =
        split_ranges(panels, panels.div_ceil(group), 1).collect();
    let tiles: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = (0..row_chunks)
        .flat_map(|c| {
            let rows = c * row_chunk..((c + 1) * row_chunk).min(m);
            groups.iter().map(move |g| (rows.clone(), g.clone()))
        })
        .collect();
    let (bias, out, raw) = match epilogue {
        Epilogue::Dequantize { bias, out } => (bias, SharedPtr(out.cast()), false),
        Epilogue::Raw(out) => (None, SharedPtr(out.cast()), true),
    };
    let work = |(rows, panels): &(std::ops::Range<usize>, std::ops::Range<usize>)| {
        // SAFETY: tiles cover disjoint (rows × panel columns) blocks of the output.
        unsafe { tile(isa, a, w, bias, out, raw, rows.clone(), panels.clone()) }
    };
    if parallel && tiles.len() > 1 {
        tiles.par_iter().for_each(work);
    } else {
        tiles.iter().for_each(work);
    }
    Ok(())
}

/// Most rows and panels of one micro-kernel call (the register tile).
fn register_tile(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512 => (6, 4),
        Isa::Avx2 => (4, 1),
        Isa::Portable => (4, 1),
    }
}

/// # Safety
/// `out` must point to the `m × n` output (f32, or i32 when `raw`), of which no other thread
/// writes this block.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    isa: Isa,
    a: &QuantizedRows,
    w: &PackedI8,
    bias: Option<&[f32]>,
    out: SharedPtr,
    raw: bool,
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
) {
    let (mr_max, np_max) = register_tile(isa);
    let n = w.n;
    let panel_len = w.k4 * PANEL;
    let mut acc = [[0i32; 4 * PANEL]; 6];
    let mut p = panels.start;
    while p < panels.end {
        let np = np_max.min(panels.end - p);
        let col = p * PANEL;
        let cols = (n - col).min(np * PANEL);
        let mut r = rows.start;
        while r < rows.end {
            let mr = mr_max.min(rows.end - r);
            let block = Block {
                a: a.data.as_ptr().add(r * a.k4),
                lda: a.k4,
                b: w.data.as_ptr().add(p * panel_len),
                panel_len,
                groups: w.k4 / GROUP,
            };
            micro(isa, mr, np, &block, &mut acc);
            let compensation = (isa == Isa::Avx512).then(|| &w.shift_compensation[col..col + cols]);
            if raw {
                let out = out.0.cast::<i32>();
                for (i, row) in acc.iter().take(mr).enumerate() {
                    let dst = std::slice::from_raw_parts_mut(out.add((r + i) * n + col), cols);
                    for (c, d) in dst.iter_mut().enumerate() {
                        *d = row[c] - compensation.map_or(0, |comp| comp[c]);
                    }
                }
            } else {
                let out = out.0.cast::<f32>();
                for (i, row) in acc.iter().take(mr).enumerate() {
                    let dst = std::slice::from_raw_parts_mut(out.add((r + i) * n + col), cols);
                    dequantize(
                        isa,
                        &row[..cols],
                        compensation,
                        a.scales[r + i],
                        &w.scales[col..col + cols],
                        bias.map(|b| &b[col..col + cols]),
                        dst,
                    );
                }
            }
            r += mr;
        }
        p += np;
    }
}

/// `dst[j] = ((acc[j] - compensation[j]) as f32) * (row_scale * col_scales[j]) + bias[j]`:
/// exact integers, then three roundings in this order, on every instruction set.
fn dequantize(
    isa: Isa,
    acc: &[i32],
    compensation: Option<&[i32]>,
    row_scale: f32,
    col_scales: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: AVX-512F is supported (the kernels were chosen for this CPU).
        unsafe { dequantize_avx512(acc, compensation, row_scale, col_scales, bias, dst) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: AVX2 is supported (the kernels were chosen for this CPU).
        unsafe { dequantize_avx2(acc, compensation, row_scale, col_scales, bias, dst) };
        return;
    }
    let _ = isa;
    dequantize_scalar(acc, compensation, row_scale, col_scales, bias, dst);
}

fn dequantize_scalar(
    acc: &[i32],
    compensation: Option<&[i32]>,
    row_scale: f32,
    col_scales: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    for (j, d) in dst.iter_mut().enumerate() {
        let exact = acc[j] - compensation.map_or(0, |c| c[j]);
        let v = exact as f32 * (row_scale * col_scales[j]);
        *d = match bias {
            Some(b) => v + b[j],
            None => v,
        };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dequantize_avx512(
    acc: &[i32],
    compensation: Option<&[i32]>,
    row_scale: f32,
    col_scales: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    let s = _mm512_set1_ps(row_scale);
    let full = dst.len() / 16 * 16;
    let mut j = 0;
    while j < full {
        // SAFETY: j + 16 <= full <= every slice's length.
        let mut exact = _mm512_loadu_si512(acc.as_ptr().add(j).cast());
        if let Some(c) = compensation {
            exact = _mm512_sub_epi32(exact, _mm512_loadu_si512(c.as_ptr().add(j).cast()));
        }
        let v = _mm512_cvtepi32_ps(exact);
        let t = _mm512_mul_ps(s, _mm512_loadu_ps(col_scales.as_ptr().add(j)));
        let mut y = _mm512_mul_ps(v, t);
        if let Some(b) = bias {
            y = _mm512_add_ps(y, _mm512_loadu_ps(b.as_ptr().add(j)));
        }
        _mm512_storeu_ps(dst.as_mut_ptr().add(j), y);
        j += 16;
    }
    dequantize_scalar(
        &acc[full..],
        compensation.map(|c| &c[full..]),
        row_scale,
        &col_scales[full..],
        bias.map(|b| &b[full..]),
        &mut dst[full..],
    );
}

/// [`dequantize_scalar`] with AVX2: the same three roundings (no fused multiply-add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dequantize_avx2(
    acc: &[i32],
    compensation: Option<&[i32]>,
    row_scale: f32,
    col_scales: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    let s = _mm256_set1_ps(row_scale);
    let full = dst.len() / 8 * 8;
    let mut j = 0;
    while j < full {
        // SAFETY: j + 8 <= full <= every slice's length.
        let mut exact = _mm256_loadu_si256(acc.as_ptr().add(j).cast());
        if let Some(c) = compensation {
            exact = _mm256_sub_epi32(exact, _mm256_loadu_si256(c.as_ptr().add(j).cast()));
        }
        let v = _mm256_cvtepi32_ps(exact);
        let t = _mm256_mul_ps(s, _mm256_loadu_ps(col_scales.as_ptr().add(j)));
        let mut y = _mm256_mul_ps(v, t);
        if let Some(b) = bias {
            y = _mm256_add_ps(y, _mm256_loadu_ps(b.as_ptr().add(j)));
        }
        _mm256_storeu_ps(dst.as_mut_ptr().add(j), y);
        j += 8;
    }
    dequantize_scalar(
        &acc[full..],
        compensation.map(|c| &c[full..]),
        row_scale,
        &col_scales[full..],
        bias.map(|b| &b[full..]),
        &mut dst[full..],
    );
}

/// One micro-kernel call: `mr` rows of quantized activations against `np` panels.
struct Block {
    a: *const u8,
    lda: usize,
    b: *const i8,
    panel_len: usize,
    groups: usize,
}

/// # Safety
/// The block must cover `mr` rows and `np` panels; the instruction set must be supported.
unsafe fn micro(isa: Isa, mr: usize, np: usize, block: &Block, acc: &mut [[i32; 64]; 6]) {
    macro_rules! rows {
        ($kernel:ident, $np:literal, $($mr:literal)*) => {
            match mr {
                $($mr => $kernel::<$mr, $np>(block, acc),)*
                _ => unreachable!("micro-kernel rows"),
            }
        };
    }
    match (isa, np) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 4) => rows!(vnni, 4, 1 2 3 4 5 6),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 3) => rows!(vnni, 3, 1 2 3 4 5 6),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 2) => rows!(vnni, 2, 1 2 3 4 5 6),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => rows!(vnni, 1, 1 2 3 4 5 6),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => rows!(avx2, 1, 1 2 3 4),
        _ => rows!(portable, 1, 1 2 3 4),
    }
}

/// # Safety
/// See [`micro`]; needs AVX-512F, BW and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni<const MR: usize, const NP: usize>(blk: &Block, out: &mut [[i32; 64]; 6]) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_si512(); NP]; MR];
    let mut a_rows = [blk.a; MR];
    for (i, row) in a_rows.iter_mut().enumerate() {
        *row = blk.a.add(i * blk.lda);
    }
    for g in 0..blk.groups {
        let mut bv = [_mm512_setzero_si512(); NP];
        for (p, v) in bv.iter_mut().enumerate() {
            *v = _mm512_loadu_si512(blk.b.add(p * blk.panel_len + g * 64).cast());
        }
        for i in 0..MR {
            let av = _mm512_set1_epi32(a_rows[i].add(g * GROUP).cast::<i32>().read_unaligned());
            for p in 0..NP {
                acc[i][p] = _mm512_dpbusd_epi32(acc[i][p], av, bv[p]);
            }
        }
    }
    for (dst, acc) in out.iter_mut().zip(&acc) {
        for (p, v) in acc.iter().enumerate() {
            _mm512_storeu_si512(dst.as_mut_ptr().add(p * PANEL).cast(), *v);
        }
    }
}

/// # Safety
/// See [`micro`]; needs AVX2.
///
/// `vpmaddubsw` multiplies unsigned by signed bytes. The weights' magnitudes `|q|` (computed
/// once per group and panel, shared by every row) are the unsigned side, and each activation
/// takes its weight's sign (`vpsignb`, one per row and half-panel), so `|q| · sign(q) p = q p`
/// exactly; both factors are within ±127, so a pair of products never saturates 16 bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const MR: usize, const NP: usize>(blk: &Block, out: &mut [[i32; 64]; 6]) {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let mut a_rows = [blk.a; MR];
    for (i, row) in a_rows.iter_mut().enumerate() {
        *row = blk.a.add(i * blk.lda);
    }
    for g in 0..blk.groups {
        let b = blk.b.add(g * 64);
        let b0 = _mm256_loadu_si256(b.cast());
        let b1 = _mm256_loadu_si256(b.add(32).cast());
        let (m0, m1) = (_mm256_abs_epi8(b0), _mm256_abs_epi8(b1));
        for i in 0..MR {
            let av = _mm256_set1_epi32(a_rows[i].add(g * GROUP).cast::<i32>().read_unaligned());
            let p0 = _mm256_maddubs_epi16(m0, _mm256_sign_epi8(av, b0));
            let p1 = _mm256_maddubs_epi16(m1, _mm256_sign_epi8(av, b1));
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));
        }
    }
    for i in 0..MR {
        _mm256_storeu_si256(out[i].as_mut_ptr().cast(), acc[i][0]);
        _mm256_storeu_si256(out[i].as_mut_ptr().add(8).cast(), acc[i][1]);
    }
}

/// # Safety
/// See [`micro`].
unsafe fn portable<const MR: usize, const NP: usize>(blk: &Block, out: &mut [[i32; 64]; 6]) {
    for (i, acc) in out.iter_mut().take(MR).enumerate() {
        let a = std::slice::from_raw_parts(blk.a.add(i * blk.lda), blk.groups * GROUP);
        let mut sums = [0i32; PANEL];
        for g in 0..blk.groups {
            let b = std::slice::from_raw_parts(blk.b.add(g * 64), 64);
            for (c, sum) in sums.iter_mut().enumerate() {
                for t in 0..GROUP {
                    *sum += i32::from(a[g * GROUP + t] as i8) * i32::from(b[c * GROUP + t]);
                }
            }
        }
        acc[..PANEL].copy_from_slice(&sums);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(7);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The quantized values, read back from the packed layouts, multiplied in i64.
    fn scalar_reference(a: &QuantizedRows, w: &PackedI8) -> Vec<i32> {
        let shift = if a.isa == Some(Isa::Avx512) {
            0x80u8
        } else {
            0
        };
        let mut out = Vec::with_capacity(a.rows * w.n);
        for i in 0..a.rows {
            for j in 0..w.n {
                let (p, lane) = (j / PANEL, j % PANEL);
                let mut sum = 0i64;
                for kk in 0..w.k {
                    let pa = (a.data[i * a.k4 + kk] ^ shift) as i8;
                    let q = w.data
                        [p * w.k4 * PANEL + ((kk / GROUP) * PANEL + lane) * GROUP + kk % GROUP];
                    sum += i64::from(pa) * i64::from(q);
                }
                out.push(i32::try_from(sum).unwrap());
            }
        }
        out
    }

    /// The activations' bytes and scales are the same on every instruction set (the VNNI
    /// shift aside): rounding ties to even, clamping, tails of every length, NaN rows.
    #[test]
    fn activation_quantization_is_the_same_on_every_isa() {
        let mut rows = data(37 * 45, 21);
        // Exact ties after scaling: 127 / 127 * 0.5 etc.
        for (i, v) in rows.iter_mut().enumerate().take(45) {
            *v = (i as f32 - 22.0) * 0.5;
        }
        rows[45 * 3 + 7] = f32::NAN;
        for k in [1, 7, 15, 16, 17, 31, 45] {
            let m = rows.len() / 45;
            let x: Vec<f32> = rows.chunks(45).flat_map(|r| &r[..k]).copied().collect();
            let mut reference: Option<(Vec<u8>, Vec<u32>)> = None;
            for isa in Isa::available() {
                let mut q = QuantizedRows::default();
                quantize_rows(isa, &x, m, k, &mut q).unwrap();
                let shift = if isa == Isa::Avx512 { 0x80 } else { 0 };
                let bytes: Vec<u8> = q.data.iter().map(|b| b ^ shift).collect();
                let scales: Vec<u32> = q.scales.iter().map(|s| s.to_bits()).collect();
                match &reference {
                    None => reference = Some((bytes, scales)),
                    Some((b, s)) => {
                        assert_eq!(&bytes, b, "{isa} k {k}");
                        assert_eq!(&scales, s, "{isa} k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_kernel_computes_the_exact_integers() {
        // Odd shapes: inner tails (k not a multiple of 4), one row, partial panels, and the
        // output projection's 59,514 columns.
        for (m, n, k) in [
            (1, 1, 1),
            (1, 17, 5),
            (7, 33, 3),
            (13, 50, 130),
            (3, 59_514, 13),
            (1, 59_514, 512),
        ] {
            let x = data(m * k, 11);
            let w = PackedI8::quantize(&data(n * k, 12), n, k).unwrap();
            for isa in Isa::available() {
                let mut q = QuantizedRows::default();
                quantize_rows(isa, &x, m, k, &mut q).unwrap();
                let want = scalar_reference(&q, &w);
                assert!(
                    gemm_integers(isa, &q, &w).unwrap() == want,
                    "{isa} {m}x{n}x{k}"
                );
            }
        }
    }

    #[test]
    fn outputs_are_the_same_on_every_isa_and_close_to_f32() {
        let (m, n, k) = (9, 70, 96);
        let x = data(m * k, 13);
        let wf = data(n * k, 14);
        let bias = data(n, 15);
        let w = PackedI8::quantize(&wf, n, k).unwrap();
        let mut first: Option<Vec<u32>> = None;
        for isa in Isa::available() {
            let mut q = QuantizedRows::default();
            quantize_rows(isa, &x, m, k, &mut q).unwrap();
            let mut out = vec![0f32; m * n];
            gemm(isa, &q, &w, Some(&bias), &mut out).unwrap();
            for i in 0..m {
                let sx = q.scales[i];
                for j in 0..n {
                    let sw = w.scales[j];
                    let (mut exact, mut bound) = (bias[j] as f64, 1e-5);
                    for kk in 0..k {
                        let (a, b) = (x[i * k + kk] as f64, wf[j * k + kk] as f64);
                        exact += a * b;
                        // Each operand is off by at most half its quantization step.
                        bound += (a.abs() * sw as f64 + b.abs() * sx as f64) / 2.0
                            + (sx * sw) as f64 / 4.0;
                    }
                    let err = (out[i * n + j] as f64 - exact).abs();
                    assert!(err <= bound, "{isa} ({i}, {j}): {err} > {bound}");
                }
            }
            let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            match &first {
                None => first = Some(bits),
                Some(f) => assert_eq!(&bits, f, "{isa} differs"),
            }
            // Row by row, the same bits.
            for i in 0..m {
                let mut q1 = QuantizedRows::default();
                quantize_rows(isa, &x[i * k..(i + 1) * k], 1, k, &mut q1).unwrap();
                let mut one = vec![0f32; n];
                gemm(isa, &q1, &w, Some(&bias), &mut one).unwrap();
                assert_eq!(one, out[i * n..(i + 1) * n]);
            }
        }
    }

    #[test]
    fn weights_round_to_nearest_even_and_clamp() {
        for (x, q) in [
            (0.5, 0),
            (1.5, 2),
            (-2.5, -2),
            (2.49, 2),
            (-0.51, -1),
            (126.6, 127),
            (300.0, 127),
            (-1e30, -127),
            (f32::NAN, 0),
        ] {
            assert_eq!(round_to_i8(x), q, "{x}");
        }
    }

    #[test]
    fn zero_and_extreme_rows() {
        let k = 8;
        let mut w = data(3 * k, 16);
        w[..k].fill(0.0);
        let packed = PackedI8::quantize(&w, 3, k).unwrap();
        assert!(packed.row(0).unwrap().iter().all(|&v| v == 0.0));
        let back = packed.row(1).unwrap();
        for (a, b) in back.iter().zip(&w[k..2 * k]) {
            assert!((a - b).abs() <= packed.scales[1] / 2.0 + 1e-7);
        }
        let mut q = QuantizedRows::default();
        let x = vec![0f32; k];
        quantize_rows(Isa::Portable, &x, 1, k, &mut q).unwrap();
        let mut out = vec![f32::NAN; 3];
        gemm(Isa::Portable, &q, &packed, None, &mut out).unwrap();
        assert_eq!(out, vec![0.0; 3]);
        // Mismatched sizes are errors, not panics.
        assert!(gemm(Isa::Portable, &q, &packed, None, &mut [0.0; 4]).is_err());
        assert!(gemm(Isa::Portable, &q, &packed, Some(&[1.0]), &mut out).is_err());
        assert!(quantize_rows(Isa::Portable, &x, 2, k, &mut q).is_err());
        assert!(PackedI8::quantize(&w, 4, k).is_err());
        assert!(packed.row(3).is_err());
        let mut other = QuantizedRows::default();
        quantize_rows(Isa::Portable, &[1.0; 12], 1, 12, &mut other).unwrap();
        assert!(gemm(Isa::Portable, &other, &packed, None, &mut out).is_err());
    }
}
