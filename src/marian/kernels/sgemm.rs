//! The f32 matrix product `Y = X Wᵀ + b` against a weight matrix packed once at load.
//!
//! `W` (out × in, the checkpoint's layout) is stored as panels of [`PANEL`] output columns,
//! each panel laid out inner-dimension-major, so that one aligned vector load brings 16
//! consecutive outputs' weights for one input element. A micro-kernel keeps an MR × 16·NP
//! block of outputs in registers and runs down the inner dimension broadcasting one input
//! value at a time: every output element is one fused multiply-add chain over the inner
//! dimension, in order, so the result is the same for every row count and instruction set.
//!
//! Threads take tiles of (row chunk, panel group) sized to stay in the L2 cache; products
//! too small to pay for the fork run on the calling thread.

use rayon::prelude::*;

use super::{ensure_shape, split_ranges, Isa, ShapeError};

/// Output columns per packed panel.
pub const PANEL: usize = 16;

/// A weight matrix `W` (n × k) packed for [`gemm`].
#[derive(Debug, Clone, PartialEq)]
pub struct PackedF32 {
    n: usize,
    k: usize,
    /// Panel `p` holds, for every inner index, columns `16p .. 16p + 16` (zero past `n`).
    data: Vec<f32>,
}

impl PackedF32 {
    /// An all-zero matrix of `n` outputs and `k` inputs, to fill with [`PackedF32::set_rows`].
    pub fn zeros(n: usize, k: usize) -> Self {
        Self {
            n,
            k,
            data: vec![0f32; n.div_ceil(PANEL) * k * PANEL],
        }
    }

    /// Packs a row-major `n × k` matrix (one row per output).
    pub fn pack(w: &[f32], n: usize, k: usize) -> Result<Self, ShapeError> {
        ensure_shape!("pack", w.len() == n * k, "{} values for {n} x {k}", w.len());
        let mut packed = Self::zeros(n, k);
        packed.set_rows(0, w)?;
        Ok(packed)
    }

    /// Stores rows `first ..` of `W` (row-major, `k` per row), so a large matrix can be
    /// packed a slice at a time.
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
        for (offset, row) in rows.chunks_exact(k).enumerate() {
            let j = first + offset;
            let (p, lane) = (j / PANEL, j % PANEL);
            let panel = &mut self.data[p * k * PANEL..(p + 1) * k * PANEL];
            for (kk, &v) in row.iter().enumerate() {
                panel[kk * PANEL + lane] = v;
            }
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

    /// Row `j` of `W` (for embedding lookups in a tied output matrix).
    pub fn row(&self, j: usize) -> Result<Vec<f32>, ShapeError> {
        ensure_shape!("row", j < self.n, "row {j} of {}", self.n);
        let (p, lane) = (j / PANEL, j % PANEL);
        let panel = &self.data[p * self.k * PANEL..(p + 1) * self.k * PANEL];
        Ok((0..self.k).map(|kk| panel[kk * PANEL + lane]).collect())
    }

    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

/// A raw pointer to the output, shared by the threads: each writes its own disjoint tile.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tiles of different tasks never overlap (see `gemm`), and the pointer outlives the
// parallel loop that uses it.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;
/// Bytes of the input rows or weight panels one tile keeps in the L2 cache.
const TILE_BYTES: usize = 192 * 1024;

/// `out = x Wᵀ + bias`: `x` is `m × k` row-major, `out` is `m × n` row-major.
pub fn gemm(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &PackedF32,
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    let (n, k) = (w.n, w.k);
    ensure_shape!(
        "gemm",
        x.len() == m * k,
        "input has {} values, not {m} x {k}",
        x.len()
    );
    ensure_shape!(
        "gemm",
        out.len() == m * n,
        "output has {} values, not {m} x {n}",
        out.len()
    );
    if let Some(b) = bias {
        ensure_shape!("gemm", b.len() == n, "bias has {} values, not {n}", b.len());
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let panels = n.div_ceil(PANEL);
    let row_chunk = (TILE_BYTES / (4 * k.max(1))).clamp(16, 1024);
    let group_cap = (TILE_BYTES / (4 * k.max(1) * PANEL)).max(2);
    let row_chunks = m.div_ceil(row_chunk);
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && m * n * k >= PARALLEL_MIN_MACS;
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
    let ptr = OutPtr(out.as_mut_ptr());
    let run = |(rows, panels): &(std::ops::Range<usize>, std::ops::Range<usize>)| {
        // SAFETY: tiles cover disjoint (rows × panel columns) blocks of `out`.
        unsafe { tile(isa, x, k, w, bias, ptr, n, rows.clone(), panels.clone()) }
    };
    if parallel && tiles.len() > 1 {
        tiles.par_iter().for_each(run);
    } else {
        tiles.iter().for_each(run);
    }
    Ok(())
}

/// Computes the output block `rows × (columns of panels)`.
///
/// # Safety
/// `out` must point to an `m × n` buffer that no other thread writes in this block.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    isa: Isa,
    x: &[f32],
    k: usize,
    w: &PackedF32,
    bias: Option<&[f32]>,
    out: OutPtr,
    n: usize,
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
) {
    let panel_len = k * PANEL;
    let mr_max = match isa {
        Isa::Avx512 => 12,
        Isa::Avx2 => 6,
        Isa::Portable => 4,
    };
    let np_max = if isa == Isa::Avx512 { 2 } else { 1 };
    let mut p = panels.start;
    while p < panels.end {
        let np = np_max.min(panels.end - p);
        let col = p * PANEL;
        let cols = (n - col).min(np * PANEL);
        let b = w.data.as_ptr().add(p * panel_len);
        let mut r = rows.start;
        while r < rows.end {
            let mr = mr_max.min(rows.end - r);
            let block = Block {
                a: x.as_ptr().add(r * k),
                lda: k,
                b,
                panel_len,
                k,
                c: out.0.add(r * n + col),
                ldc: n,
                bias: bias.map(|b| b.as_ptr().add(col)),
                cols,
            };
            micro(isa, mr, np, &block);
            r += mr;
        }
        p += np;
    }
}

/// One micro-kernel call: `mr` rows of `a` against `np` panels starting at `b`, written to `c`.
struct Block {
    a: *const f32,
    lda: usize,
    b: *const f32,
    panel_len: usize,
    k: usize,
    c: *mut f32,
    ldc: usize,
    bias: Option<*const f32>,
    /// Valid output columns (the last panel of a matrix may be partial).
    cols: usize,
}

/// Dispatches to the micro-kernel for `mr` rows and `np` panels.
///
/// # Safety
/// The block's pointers must cover `mr` rows of `k` inputs, `np` panels, and `mr × cols`
/// outputs; the instruction set must be supported.
unsafe fn micro(isa: Isa, mr: usize, np: usize, block: &Block) {
    macro_rules! rows {
        ($kernel:ident, $np:literal, $($mr:literal)*) => {
            match mr {
                $($mr => $kernel::<$mr, $np>(block),)*
                _ => unreachable!("micro-kernel rows"),
            }
        };
    }
    match (isa, np) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 2) => rows!(avx512, 2, 1 2 3 4 5 6 7 8 9 10 11 12),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => rows!(avx512, 1, 1 2 3 4 5 6 7 8 9 10 11 12),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => rows!(avx2, 1, 1 2 3 4 5 6),
        _ => rows!(portable, 1, 1 2 3 4),
    }
}

/// # Safety
/// See [`micro`]; needs AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<const MR: usize, const NP: usize>(blk: &Block) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NP]; MR];
    let mut a_rows = [blk.a; MR];
    for (i, row) in a_rows.iter_mut().enumerate() {
        *row = blk.a.add(i * blk.lda);
    }
    for kk in 0..blk.k {
        let mut bv = [_mm512_setzero_ps(); NP];
        for (p, v) in bv.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(blk.b.add(p * blk.panel_len + kk * PANEL));
        }
        for i in 0..MR {
            let av = _mm512_set1_ps(*a_rows[i].add(kk));
            for p in 0..NP {
                acc[i][p] = _mm512_fmadd_ps(av, bv[p], acc[i][p]);
            }
        }
    }
    for p in 0..NP {
        let first = p * PANEL;
        if first >= blk.cols {
            break;
        }
        let valid = (blk.cols - first).min(PANEL);
        let mask: __mmask16 = if valid == PANEL {
            0xffff
        } else {
            (1u16 << valid) - 1
        };
        let bias = match blk.bias {
            Some(b) => _mm512_maskz_loadu_ps(mask, b.add(first)),
            None => _mm512_setzero_ps(),
        };
        for (i, acc) in acc.iter().enumerate() {
            let v = if blk.bias.is_some() {
                _mm512_add_ps(acc[p], bias)
            } else {
                acc[p]
            };
            _mm512_mask_storeu_ps(blk.c.add(i * blk.ldc + first), mask, v);
        }
    }
}

/// # Safety
/// See [`micro`]; needs AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const MR: usize, const NP: usize>(blk: &Block) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let mut a_rows = [blk.a; MR];
    for (i, row) in a_rows.iter_mut().enumerate() {
        *row = blk.a.add(i * blk.lda);
    }
    for kk in 0..blk.k {
        let b = blk.b.add(kk * PANEL);
        let b0 = _mm256_loadu_ps(b);
        let b1 = _mm256_loadu_ps(b.add(8));
        for i in 0..MR {
            let av = _mm256_set1_ps(*a_rows[i].add(kk));
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    let mut bias = [0f32; PANEL];
    if let Some(b) = blk.bias {
        std::ptr::copy_nonoverlapping(b, bias.as_mut_ptr(), blk.cols);
    }
    let (bias0, bias1) = (
        _mm256_loadu_ps(bias.as_ptr()),
        _mm256_loadu_ps(bias.as_ptr().add(8)),
    );
    for (i, acc) in acc.iter().enumerate() {
        let (mut v0, mut v1) = (acc[0], acc[1]);
        if blk.bias.is_some() {
            v0 = _mm256_add_ps(v0, bias0);
            v1 = _mm256_add_ps(v1, bias1);
        }
        let dst = blk.c.add(i * blk.ldc);
        if blk.cols == PANEL {
            _mm256_storeu_ps(dst, v0);
            _mm256_storeu_ps(dst.add(8), v1);
        } else {
            let mut tmp = [0f32; PANEL];
            _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, blk.cols);
        }
    }
}

/// # Safety
/// See [`micro`].
unsafe fn portable<const MR: usize, const NP: usize>(blk: &Block) {
    let mut acc = [[0f32; PANEL]; MR];
    for kk in 0..blk.k {
        let b = std::slice::from_raw_parts(blk.b.add(kk * PANEL), PANEL);
        for (i, acc) in acc.iter_mut().enumerate() {
            let a = *blk.a.add(i * blk.lda + kk);
            for (c, &bv) in acc.iter_mut().zip(b) {
                *c = a.mul_add(bv, *c);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        let dst = std::slice::from_raw_parts_mut(blk.c.add(i * blk.ldc), blk.cols);
        for (j, d) in dst.iter_mut().enumerate() {
            *d = match blk.bias {
                Some(b) => acc[j] + *b.add(j),
                None => acc[j],
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize, b: &[f32]) -> Vec<f64> {
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|kk| x[i * k + kk] as f64 * w[j * k + kk] as f64)
                    .sum();
                out[i * n + j] = dot + b[j] as f64;
            }
        }
        out
    }

    #[test]
    fn matches_f64_and_is_the_same_on_every_isa_and_row_count() {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 17, 5),
            (13, 40, 33),
            (1, 100, 512),
            (40, 33, 64),
            (7, 16, 3),
        ] {
            let x = data(m * k, 1);
            let w = data(n * k, 2);
            let b = data(n, 3);
            let packed = PackedF32::pack(&w, n, k).unwrap();
            let want = reference(&x, m, &w, n, k, &b);
            let mut first: Option<Vec<u32>> = None;
            for isa in Isa::available() {
                let mut out = vec![f32::NAN; m * n];
                gemm(isa, &x, m, &packed, Some(&b), &mut out).unwrap();
                for (g, w) in out.iter().zip(&want) {
                    assert!(
                        (*g as f64 - w).abs() < 1e-4 * (k as f64).sqrt(),
                        "{isa} {m}x{n}x{k}"
                    );
                }
                let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                match &first {
                    None => first = Some(bits.clone()),
                    Some(f) => assert_eq!(&bits, f, "{isa} differs, {m}x{n}x{k}"),
                }
                // Each row alone gives the same bits as in the batch.
                for i in 0..m {
                    let mut one = vec![0f32; n];
                    gemm(isa, &x[i * k..(i + 1) * k], 1, &packed, Some(&b), &mut one).unwrap();
                    let one: Vec<u32> = one.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(one, bits[i * n..(i + 1) * n], "{isa} row {i} alone");
                }
            }
        }
    }

    #[test]
    fn large_products_split_over_threads_give_the_same_bits() {
        let (m, n, k) = (70, 1000, 96);
        let x = data(m * k, 4);
        let w = PackedF32::pack(&data(n * k, 5), n, k).unwrap();
        let isa = Isa::available()[0];
        let mut serial = vec![0f32; m * n];
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| gemm(isa, &x, m, &w, None, &mut serial).unwrap());
        let mut parallel = vec![0f32; m * n];
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(|| gemm(isa, &x, m, &w, None, &mut parallel).unwrap());
        assert_eq!(serial, parallel);
    }

    #[test]
    fn rows_of_the_packed_matrix() {
        let w = data(5 * 3, 6);
        let packed = PackedF32::pack(&w, 5, 3).unwrap();
        for j in 0..5 {
            assert_eq!(packed.row(j).unwrap(), w[j * 3..(j + 1) * 3]);
        }
        // Mismatched sizes are errors, not panics.
        assert!(packed.row(5).is_err());
        assert!(PackedF32::pack(&w, 4, 3).is_err());
        let mut out = vec![0f32; 5];
        assert!(gemm(Isa::Portable, &[1.0; 4], 1, &packed, None, &mut out).is_err());
        assert!(gemm(Isa::Portable, &[1.0; 3], 1, &packed, None, &mut out[..4]).is_err());
        assert!(gemm(
            Isa::Portable,
            &[1.0; 3],
            1,
            &packed,
            Some(&[0.0; 2]),
            &mut out
        )
        .is_err());
    }
}
