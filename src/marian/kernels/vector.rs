//! Vector operations with one result on every instruction set: dot products, sums of
//! exponentials, maxima, layer norm, activations, and the `exp` / `ln` they are built on.
//!
//! Reductions keep 16 partial sums (lane `l` takes elements `l, l + 16, l + 32, ...` in
//! order) and combine them with one fixed tree; the elements after the last full group of 16
//! go to their lanes one by one. AVX-512 (one register of 16), AVX2 (two of 8) and plain Rust
//! (an array of 16) therefore perform the very same roundings.

use super::Isa;

/// Number of partial sums of every reduction.
const LANES: usize = 16;

// ---------------------------------------------------------------------------------------------
// exp and ln
// ---------------------------------------------------------------------------------------------

const EXP_HI: f32 = 88.722_83;
const EXP_LO: f32 = -87.336_54;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two, so that `x - n ln 2` is computed almost exactly (Cody and Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Minimax polynomial of `(exp(r) - 1 - r) / r²` on [-ln 2 / 2, ln 2 / 2] (Cephes' expf).
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `exp(x)` within 2 ulp, 0 below about -87.3, NaN for NaN. The SIMD versions perform the
/// same operations in the same order, so every lane equals this function bit for bit.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < EXP_LO {
        return 0.0;
    }
    let x = x.min(EXP_HI);
    let n = (x * LOG2E).round_ties_even();
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = EXP_P[0].mul_add(r, EXP_P[1]);
    for &c in &EXP_P[2..] {
        p = p.mul_add(r, c);
    }
    let z = r * r;
    let y = p.mul_add(z, r) + 1.0;
    f32::from_bits((y.to_bits() as i32).wrapping_add((n as i32) << 23) as u32)
}

/// The natural logarithm of a positive, finite `x`, in plain f64 arithmetic (so it is the same
/// on every machine, unlike the C library's `log`).
pub fn ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_finite());
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | (1023u64 << 52));
    if exponent == -1023 {
        // Subnormal: normalise first.
        return ln(x * (1u64 << 54) as f64) - 54.0 * std::f64::consts::LN_2;
    }
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.172: the series converges fast.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut sum = 0.0;
    for k in (0..10).rev() {
        sum = sum * s2 + 1.0 / (2 * k + 1) as f64;
    }
    exponent as f64 * std::f64::consts::LN_2 + 2.0 * s * sum
}

// ---------------------------------------------------------------------------------------------
// The fixed reduction tree
// ---------------------------------------------------------------------------------------------

/// Sums 16 partial sums: halves, then quarters, then pairs, as the SIMD versions do.
#[inline(always)]
fn tree(lanes: [f32; LANES]) -> f32 {
    let mut h = [0f32; 8];
    for i in 0..8 {
        h[i] = lanes[i] + lanes[i + 8];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    let d = [q[0] + q[2], q[1] + q[3]];
    d[0] + d[1]
}

// ---------------------------------------------------------------------------------------------
// Public operations
// ---------------------------------------------------------------------------------------------

/// `Σ a[i] b[i]` (equal lengths).
pub(crate) fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::dot_avx2(a, b) },
        _ => {
            let mut lanes = [0f32; LANES];
            let full = a.len() / LANES * LANES;
            for (ca, cb) in a[..full]
                .chunks_exact(LANES)
                .zip(b[..full].chunks_exact(LANES))
            {
                for l in 0..LANES {
                    lanes[l] = ca[l].mul_add(cb[l], lanes[l]);
                }
            }
            dot_tail(lanes, &a[full..], &b[full..])
        }
    }
}

#[inline(always)]
fn dot_tail(mut lanes: [f32; LANES], a: &[f32], b: &[f32]) -> f32 {
    for (l, (x, y)) in a.iter().zip(b).enumerate() {
        lanes[l] = x.mul_add(*y, lanes[l]);
    }
    tree(lanes)
}

/// `out[t] = dot(q, keys[t])` for every key (each as long as `q`): the same bits as [`dot`],
/// with the reduction kept in registers when the length is a multiple of 16.
pub(crate) fn dots(isa: Isa, q: &[f32], keys: &[&[f32]], out: &mut Vec<f32>) {
    out.clear();
    assert!(
        keys.iter().all(|k| k.len() == q.len()),
        "dots: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if q.len().is_multiple_of(LANES) {
        out.resize(keys.len(), 0.0);
        match isa {
            // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports;
            // every key has q's length.
            Isa::Avx512 => return unsafe { x86::dots_avx512(q, keys, out) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { x86::dots_avx2(q, keys, out) },
            Isa::Portable => out.clear(),
        }
    }
    out.extend(keys.iter().map(|k| dot(isa, q, k)));
}

/// `dst = Σ_t weights[t] values[t]`: each element a fused multiply-add chain in `t` order,
/// starting from 0 — the same bits as zeroing `dst` and calling [`axpy`] for every `t`, with
/// the accumulators kept in registers when the length is a multiple of 16.
pub(crate) fn weighted_sum(isa: Isa, weights: &[f32], values: &[&[f32]], dst: &mut [f32]) {
    assert_eq!(weights.len(), values.len(), "weighted_sum: lengths differ");
    assert!(
        values.iter().all(|v| v.len() == dst.len()),
        "weighted_sum: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if dst.len().is_multiple_of(LANES) {
        match isa {
            // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports;
            // every value has dst's length.
            Isa::Avx512 => return unsafe { x86::weighted_sum_avx512(weights, values, dst) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { x86::weighted_sum_avx2(weights, values, dst) },
            Isa::Portable => {}
        }
    }
    dst.fill(0.0);
    for (&w, v) in weights.iter().zip(values) {
        axpy(isa, w, v, dst);
    }
}

/// `Σ exp(x[i] - shift)`.
pub fn sum_exp(isa: Isa, x: &[f32], shift: f32) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::sum_exp_avx512(x, shift) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::sum_exp_avx2(x, shift) },
        _ => {
            let mut lanes = [0f32; LANES];
            let full = x.len() / LANES * LANES;
            for chunk in x[..full].chunks_exact(LANES) {
                for l in 0..LANES {
                    lanes[l] += exp(chunk[l] - shift);
                }
            }
            sum_exp_tail(lanes, &x[full..], shift)
        }
    }
}

#[inline(always)]
fn sum_exp_tail(mut lanes: [f32; LANES], x: &[f32], shift: f32) -> f32 {
    for (l, v) in x.iter().enumerate() {
        lanes[l] += exp(v - shift);
    }
    tree(lanes)
}

/// `x[i] = exp(x[i] - shift)` in place; returns the sum of the new values (the softmax
/// denominator), with the same lanes and tree as [`sum_exp`].
pub fn exp_in_place(isa: Isa, x: &mut [f32], shift: f32) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::exp_in_place_avx512(x, shift) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::exp_in_place_avx2(x, shift) },
        _ => {
            let mut lanes = [0f32; LANES];
            let full = x.len() / LANES * LANES;
            for chunk in x[..full].chunks_exact_mut(LANES) {
                for l in 0..LANES {
                    chunk[l] = exp(chunk[l] - shift);
                    lanes[l] += chunk[l];
                }
            }
            exp_in_place_tail(lanes, &mut x[full..], shift)
        }
    }
}

#[inline(always)]
fn exp_in_place_tail(mut lanes: [f32; LANES], x: &mut [f32], shift: f32) -> f32 {
    for (l, v) in x.iter_mut().enumerate() {
        *v = exp(*v - shift);
        lanes[l] += *v;
    }
    tree(lanes)
}

/// The largest value of `x` (-inf when empty), or NaN when `x` holds a NaN.
pub fn max(isa: Isa, x: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::max_avx512(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::max_avx2(x) },
        _ => max_portable(x),
    }
}

fn max_portable(x: &[f32]) -> f32 {
    let mut best = f32::NEG_INFINITY;
    for &v in x {
        if v.is_nan() {
            return v;
        }
        best = best.max(v);
    }
    best
}

/// The largest `|x[i]|` (0 when empty), or NaN when `x` holds a NaN.
pub fn max_abs(isa: Isa, x: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::max_abs_avx512(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::max_abs_avx2(x) },
        _ => {
            let mut best = 0f32;
            for &v in x {
                if v.is_nan() {
                    return v;
                }
                best = best.max(v.abs());
            }
            best
        }
    }
}

/// `y[i] += alpha x[i]`, each element one fused multiply-add (equal lengths).
pub(crate) fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: lengths differ");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::axpy_avx512(alpha, x, y) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::axpy_avx2(alpha, x, y) },
        _ => {
            for (d, v) in y.iter_mut().zip(x) {
                *d = alpha.mul_add(*v, *d);
            }
        }
    }
}

/// `x = LayerNorm(x + residual)` for every row of width `dim`, in place, with scale `gamma`,
/// shift `beta` and `eps`: Marian's post-norm residual block.
pub fn add_layer_norm(
    isa: Isa,
    x: &mut [f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> Result<(), super::ShapeError> {
    let dim = gamma.len();
    super::ensure_shape!(
        "layer norm",
        dim > 0 && x.len().is_multiple_of(dim) && x.len() == residual.len() && beta.len() == dim,
        "{} values, {} residuals, {dim} scales, {} shifts",
        x.len(),
        residual.len(),
        beta.len()
    );
    for (row, res) in x.chunks_exact_mut(dim).zip(residual.chunks_exact(dim)) {
        for (v, r) in row.iter_mut().zip(res) {
            *v += r;
        }
        let mean = sum(isa, row) / dim as f32;
        let var = centered_square_sum(isa, row, mean) / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        normalize(isa, row, mean, inv, gamma, beta);
    }
    Ok(())
}

fn sum(isa: Isa, x: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::sum_avx512(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::sum_avx2(x) },
        _ => {
            let mut lanes = [0f32; LANES];
            let full = x.len() / LANES * LANES;
            for chunk in x[..full].chunks_exact(LANES) {
                for l in 0..LANES {
                    lanes[l] += chunk[l];
                }
            }
            sum_tail(lanes, &x[full..])
        }
    }
}

#[inline(always)]
fn sum_tail(mut lanes: [f32; LANES], x: &[f32]) -> f32 {
    for (l, v) in x.iter().enumerate() {
        lanes[l] += v;
    }
    tree(lanes)
}

fn centered_square_sum(isa: Isa, x: &[f32], mean: f32) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::centered_square_sum_avx512(x, mean) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::centered_square_sum_avx2(x, mean) },
        _ => {
            let mut lanes = [0f32; LANES];
            let full = x.len() / LANES * LANES;
            for chunk in x[..full].chunks_exact(LANES) {
                for l in 0..LANES {
                    let c = chunk[l] - mean;
                    lanes[l] = c.mul_add(c, lanes[l]);
                }
            }
            centered_tail(lanes, &x[full..], mean)
        }
    }
}

#[inline(always)]
fn centered_tail(mut lanes: [f32; LANES], x: &[f32], mean: f32) -> f32 {
    for (l, v) in x.iter().enumerate() {
        let c = v - mean;
        lanes[l] = c.mul_add(c, lanes[l]);
    }
    tree(lanes)
}

/// `x[i] = ((x[i] - mean) inv) gamma[i] + beta[i]` (the last step one fused multiply-add).
fn normalize(isa: Isa, x: &mut [f32], mean: f32, inv: f32, gamma: &[f32], beta: &[f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::normalize_avx512(x, mean, inv, gamma, beta) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::normalize_avx2(x, mean, inv, gamma, beta) },
        _ => normalize_scalar(x, mean, inv, gamma, beta),
    }
}

#[inline(always)]
fn normalize_scalar(x: &mut [f32], mean: f32, inv: f32, gamma: &[f32], beta: &[f32]) {
    for ((v, g), b) in x.iter_mut().zip(gamma).zip(beta) {
        *v = ((*v - mean) * inv).mul_add(*g, *b);
    }
}

/// `x = x / (1 + exp(-x))` (swish / SiLU) in place.
pub fn silu(isa: Isa, x: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's `Kernels` only hold instruction sets this CPU supports.
        Isa::Avx512 => unsafe { x86::silu_avx512(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::silu_avx2(x) },
        _ => silu_scalar(x),
    }
}

#[inline(always)]
fn silu_scalar(x: &mut [f32]) {
    for v in x {
        *v /= 1.0 + exp(-*v);
    }
}

/// `x = max(x, 0)` in place (NaN stays NaN).
pub fn relu(x: &mut [f32]) {
    for v in x {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

/// The exact (erf) GELU in place: `x (1 + erf(x / √2)) / 2`.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// The tanh approximation of GELU in place.
pub fn gelu_tanh(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    for v in x {
        let u = C * (*v + 0.044_715 * *v * *v * *v);
        *v = 0.5 * *v * (1.0 + tanh(u));
    }
}

/// `tanh` from our `exp`.
fn tanh(x: f32) -> f32 {
    if x.abs() > 9.0 {
        return x.signum();
    }
    let e = exp(2.0 * x);
    (e - 1.0) / (e + 1.0)
}

/// `erf` within 1.2e-7 (Numerical Recipes' erfc Chebyshev fit, in f64).
fn erf(x: f32) -> f32 {
    let z = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp_f64(poly);
    (if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }) as f32
}

/// `exp` in f64 for `erf`: the same Cody-Waite scheme, with a Taylor series long enough for
/// f64 (only scalar code uses it).
fn exp_f64(x: f64) -> f64 {
    if x < -708.0 {
        return 0.0;
    }
    let n = (x * std::f64::consts::LOG2_E).round_ties_even();
    let r = x - n * std::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..18 {
        term *= r / k as f64;
        sum += term;
    }
    sum * 2f64.powi(n as i32)
}

// ---------------------------------------------------------------------------------------------
// x86 versions
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    //! The SIMD versions. Every `unsafe fn` here requires the CPU features it is compiled for.
    use std::arch::x86_64::*;

    use super::*;

    // --- exp ------------------------------------------------------------------------------

    /// 16 lanes of [`exp`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn exp512(x: __m512) -> __m512 {
        let nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        let under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_LT_OQ);
        let xc = _mm512_min_ps(x, _mm512_set1_ps(EXP_HI));
        let n = _mm512_roundscale_ps(
            _mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        );
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), xc);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
        let mut p = _mm512_fmadd_ps(_mm512_set1_ps(EXP_P[0]), r, _mm512_set1_ps(EXP_P[1]));
        for &c in &EXP_P[2..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let z = _mm512_mul_ps(r, r);
        let y = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0));
        let scaled = _mm512_add_epi32(
            _mm512_castps_si512(y),
            _mm512_slli_epi32::<23>(_mm512_cvtps_epi32(n)),
        );
        let result = _mm512_castsi512_ps(scaled);
        let result = _mm512_mask_blend_ps(under, result, _mm512_setzero_ps());
        _mm512_mask_blend_ps(nan, result, x)
    }

    /// 8 lanes of [`exp`].
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn exp256(x: __m256) -> __m256 {
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
        let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
        let xc = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), xc);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
        let mut p = _mm256_fmadd_ps(_mm256_set1_ps(EXP_P[0]), r, _mm256_set1_ps(EXP_P[1]));
        for &c in &EXP_P[2..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let z = _mm256_mul_ps(r, r);
        let y = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0));
        let scaled = _mm256_add_epi32(
            _mm256_castps_si256(y),
            _mm256_slli_epi32::<23>(_mm256_cvtps_epi32(n)),
        );
        let result = _mm256_castsi256_ps(scaled);
        let result = _mm256_blendv_ps(result, _mm256_setzero_ps(), under);
        _mm256_blendv_ps(result, x, nan)
    }

    // --- lanes ----------------------------------------------------------------------------

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn lanes512(v: __m512) -> [f32; LANES] {
        let mut out = [0f32; LANES];
        _mm512_storeu_ps(out.as_mut_ptr(), v);
        out
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn lanes256(lo: __m256, hi: __m256) -> [f32; LANES] {
        let mut out = [0f32; LANES];
        _mm256_storeu_ps(out.as_mut_ptr(), lo);
        _mm256_storeu_ps(out.as_mut_ptr().add(8), hi);
        out
    }

    // --- reductions -----------------------------------------------------------------------

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let full = a.len() / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= len of both slices.
            acc = _mm512_fmadd_ps(
                _mm512_loadu_ps(a.as_ptr().add(i)),
                _mm512_loadu_ps(b.as_ptr().add(i)),
                acc,
            );
            i += LANES;
        }
        dot_tail(lanes512(acc), &a[full..], &b[full..])
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let full = a.len() / LANES * LANES;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= len of both slices.
            let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
            lo = _mm256_fmadd_ps(_mm256_loadu_ps(pa), _mm256_loadu_ps(pb), lo);
            hi = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(8)), _mm256_loadu_ps(pb.add(8)), hi);
            i += LANES;
        }
        dot_tail(lanes256(lo, hi), &a[full..], &b[full..])
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn sum_exp_avx512(x: &[f32], shift: f32) -> f32 {
        let full = x.len() / LANES * LANES;
        let s = _mm512_set1_ps(shift);
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let v = _mm512_sub_ps(_mm512_loadu_ps(x.as_ptr().add(i)), s);
            acc = _mm512_add_ps(acc, exp512(v));
            i += LANES;
        }
        sum_exp_tail(lanes512(acc), &x[full..], shift)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn sum_exp_avx2(x: &[f32], shift: f32) -> f32 {
        let full = x.len() / LANES * LANES;
        let s = _mm256_set1_ps(shift);
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let p = x.as_ptr().add(i);
            lo = _mm256_add_ps(lo, exp256(_mm256_sub_ps(_mm256_loadu_ps(p), s)));
            hi = _mm256_add_ps(hi, exp256(_mm256_sub_ps(_mm256_loadu_ps(p.add(8)), s)));
            i += LANES;
        }
        sum_exp_tail(lanes256(lo, hi), &x[full..], shift)
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn exp_in_place_avx512(x: &mut [f32], shift: f32) -> f32 {
        let full = x.len() / LANES * LANES;
        let s = _mm512_set1_ps(shift);
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let p = x.as_mut_ptr().add(i);
            let e = exp512(_mm512_sub_ps(_mm512_loadu_ps(p), s));
            _mm512_storeu_ps(p, e);
            acc = _mm512_add_ps(acc, e);
            i += LANES;
        }
        exp_in_place_tail(lanes512(acc), &mut x[full..], shift)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn exp_in_place_avx2(x: &mut [f32], shift: f32) -> f32 {
        let full = x.len() / LANES * LANES;
        let s = _mm256_set1_ps(shift);
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let p = x.as_mut_ptr().add(i);
            let e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(p), s));
            let e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(p.add(8)), s));
            _mm256_storeu_ps(p, e0);
            _mm256_storeu_ps(p.add(8), e1);
            lo = _mm256_add_ps(lo, e0);
            hi = _mm256_add_ps(hi, e1);
            i += LANES;
        }
        exp_in_place_tail(lanes256(lo, hi), &mut x[full..], shift)
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn sum_avx512(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            acc = _mm512_add_ps(acc, _mm512_loadu_ps(x.as_ptr().add(i)));
            i += LANES;
        }
        sum_tail(lanes512(acc), &x[full..])
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn sum_avx2(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let p = x.as_ptr().add(i);
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(p));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(p.add(8)));
            i += LANES;
        }
        sum_tail(lanes256(lo, hi), &x[full..])
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn centered_square_sum_avx512(x: &[f32], mean: f32) -> f32 {
        let full = x.len() / LANES * LANES;
        let m = _mm512_set1_ps(mean);
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let c = _mm512_sub_ps(_mm512_loadu_ps(x.as_ptr().add(i)), m);
            acc = _mm512_fmadd_ps(c, c, acc);
            i += LANES;
        }
        centered_tail(lanes512(acc), &x[full..], mean)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn centered_square_sum_avx2(x: &[f32], mean: f32) -> f32 {
        let full = x.len() / LANES * LANES;
        let m = _mm256_set1_ps(mean);
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let p = x.as_ptr().add(i);
            let c0 = _mm256_sub_ps(_mm256_loadu_ps(p), m);
            let c1 = _mm256_sub_ps(_mm256_loadu_ps(p.add(8)), m);
            lo = _mm256_fmadd_ps(c0, c0, lo);
            hi = _mm256_fmadd_ps(c1, c1, hi);
            i += LANES;
        }
        centered_tail(lanes256(lo, hi), &x[full..], mean)
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn max_avx512(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut nan: __mmask16 = 0;
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            best = _mm512_max_ps(best, v);
            i += LANES;
        }
        if nan != 0 {
            return f32::NAN;
        }
        let tail = max_portable(&x[full..]);
        if tail.is_nan() {
            return tail;
        }
        _mm512_reduce_max_ps(best).max(tail)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn max_avx2(x: &[f32]) -> f32 {
        let full = x.len() / 8 * 8;
        let mut best = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut nan = _mm256_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 8 <= full <= x.len().
            let v = _mm256_loadu_ps(x.as_ptr().add(i));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            best = _mm256_max_ps(best, v);
            i += 8;
        }
        if _mm256_movemask_ps(nan) != 0 {
            return f32::NAN;
        }
        let tail = max_portable(&x[full..]);
        if tail.is_nan() {
            return tail;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), best);
        lanes.iter().fold(tail, |m, &v| m.max(v))
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn max_abs_avx512(x: &[f32]) -> f32 {
        let full = x.len() / LANES * LANES;
        let mut best = _mm512_setzero_ps();
        let mut nan: __mmask16 = 0;
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            best = _mm512_max_ps(best, _mm512_abs_ps(v));
            i += LANES;
        }
        let tail = super::max_abs(Isa::Portable, &x[full..]);
        if nan != 0 || tail.is_nan() {
            return f32::NAN;
        }
        _mm512_reduce_max_ps(best).max(tail)
    }

    /// `max |x|` (NaN when any value is NaN) with AVX2: the maximum is exact, so the order
    /// of comparisons does not matter.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn max_abs_avx2(x: &[f32]) -> f32 {
        let full = x.len() / 8 * 8;
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut best = _mm256_setzero_ps();
        let mut nan = _mm256_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 8 <= full <= x.len().
            let v = _mm256_loadu_ps(x.as_ptr().add(i));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            best = _mm256_max_ps(best, _mm256_and_ps(v, abs_mask));
            i += 8;
        }
        let tail = super::max_abs(Isa::Portable, &x[full..]);
        if _mm256_movemask_ps(nan) != 0 || tail.is_nan() {
            return f32::NAN;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), best);
        lanes.iter().fold(tail, |m, &v| m.max(v))
    }

    /// [`tree`] in registers: halves, quarters, pairs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tree512(v: __m512) -> f32 {
        let h = _mm256_add_ps(
            _mm512_castps512_ps256(v),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
        );
        tree256(h)
    }

    /// [`tree`] from the half sums `h[i] = l[i] + l[i + 8]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tree256(h: __m256) -> f32 {
        let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps::<1>(d, d)))
    }

    /// See [`super::dots`]; every key has `q.len()`, a multiple of 16, elements.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn dots_avx512(q: &[f32], keys: &[&[f32]], out: &mut [f32]) {
        let chunks = q.len() / LANES;
        let qp = q.as_ptr();
        let mut t = 0;
        // Four keys at a time: four independent chains keep the FMA units busy.
        while t + 4 <= keys.len() {
            let k = [
                keys[t].as_ptr(),
                keys[t + 1].as_ptr(),
                keys[t + 2].as_ptr(),
                keys[t + 3].as_ptr(),
            ];
            let mut acc = [_mm512_setzero_ps(); 4];
            for c in 0..chunks {
                // SAFETY: c * 16 + 16 <= len of q and of every key.
                let qv = _mm512_loadu_ps(qp.add(c * LANES));
                for (a, k) in acc.iter_mut().zip(&k) {
                    *a = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k.add(c * LANES)), *a);
                }
            }
            for (i, a) in acc.iter().enumerate() {
                out[t + i] = tree512(*a);
            }
            t += 4;
        }
        while t < keys.len() {
            let kp = keys[t].as_ptr();
            let mut acc = _mm512_setzero_ps();
            for c in 0..chunks {
                // SAFETY: as above.
                acc = _mm512_fmadd_ps(
                    _mm512_loadu_ps(qp.add(c * LANES)),
                    _mm512_loadu_ps(kp.add(c * LANES)),
                    acc,
                );
            }
            out[t] = tree512(acc);
            t += 1;
        }
    }

    /// See [`super::dots`]; every key has `q.len()`, a multiple of 16, elements.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dots_avx2(q: &[f32], keys: &[&[f32]], out: &mut [f32]) {
        let chunks = q.len() / LANES;
        let qp = q.as_ptr();
        for (t, key) in keys.iter().enumerate() {
            let kp = key.as_ptr();
            let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for c in 0..chunks {
                // SAFETY: c * 16 + 16 <= len of q and of the key.
                let (a, b) = (qp.add(c * LANES), kp.add(c * LANES));
                lo = _mm256_fmadd_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b), lo);
                hi = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(8)), _mm256_loadu_ps(b.add(8)), hi);
            }
            out[t] = tree256(_mm256_add_ps(lo, hi));
        }
    }

    /// See [`super::weighted_sum`]; `dst.len()` is a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn weighted_sum_avx512(weights: &[f32], values: &[&[f32]], dst: &mut [f32]) {
        let chunks = dst.len() / LANES;
        let mut c = 0;
        // Four 16-wide columns at a time, accumulated in registers over every value.
        while c < chunks {
            let width = (chunks - c).min(4);
            let mut acc = [_mm512_setzero_ps(); 4];
            for (&w, v) in weights.iter().zip(values) {
                let wv = _mm512_set1_ps(w);
                let vp = v.as_ptr().add(c * LANES);
                for (j, a) in acc.iter_mut().enumerate().take(width) {
                    // SAFETY: (c + j) * 16 + 16 <= dst.len() == v.len().
                    *a = _mm512_fmadd_ps(wv, _mm512_loadu_ps(vp.add(j * LANES)), *a);
                }
            }
            for (j, a) in acc.iter().enumerate().take(width) {
                _mm512_storeu_ps(dst.as_mut_ptr().add((c + j) * LANES), *a);
            }
            c += width;
        }
    }

    /// See [`super::weighted_sum`]; `dst.len()` is a multiple of 16.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn weighted_sum_avx2(weights: &[f32], values: &[&[f32]], dst: &mut [f32]) {
        let chunks = dst.len() / 8;
        let mut c = 0;
        while c < chunks {
            let width = (chunks - c).min(4);
            let mut acc = [_mm256_setzero_ps(); 4];
            for (&w, v) in weights.iter().zip(values) {
                let wv = _mm256_set1_ps(w);
                let vp = v.as_ptr().add(c * 8);
                for (j, a) in acc.iter_mut().enumerate().take(width) {
                    // SAFETY: (c + j) * 8 + 8 <= dst.len() == v.len().
                    *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(vp.add(j * 8)), *a);
                }
            }
            for (j, a) in acc.iter().enumerate().take(width) {
                _mm256_storeu_ps(dst.as_mut_ptr().add((c + j) * 8), *a);
            }
            c += width;
        }
    }

    // --- elementwise ----------------------------------------------------------------------

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn axpy_avx512(alpha: f32, x: &[f32], y: &mut [f32]) {
        let full = x.len() / LANES * LANES;
        let a = _mm512_set1_ps(alpha);
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= len of both slices.
            let py = y.as_mut_ptr().add(i);
            let v = _mm512_fmadd_ps(a, _mm512_loadu_ps(x.as_ptr().add(i)), _mm512_loadu_ps(py));
            _mm512_storeu_ps(py, v);
            i += LANES;
        }
        for (d, v) in y[full..].iter_mut().zip(&x[full..]) {
            *d = alpha.mul_add(*v, *d);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn axpy_avx2(alpha: f32, x: &[f32], y: &mut [f32]) {
        let full = x.len() / 8 * 8;
        let a = _mm256_set1_ps(alpha);
        let mut i = 0;
        while i < full {
            // SAFETY: i + 8 <= full <= len of both slices.
            let py = y.as_mut_ptr().add(i);
            let v = _mm256_fmadd_ps(a, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(py));
            _mm256_storeu_ps(py, v);
            i += 8;
        }
        for (d, v) in y[full..].iter_mut().zip(&x[full..]) {
            *d = alpha.mul_add(*v, *d);
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn normalize_avx512(
        x: &mut [f32],
        mean: f32,
        inv: f32,
        gamma: &[f32],
        beta: &[f32],
    ) {
        let full = x.len() / LANES * LANES;
        let (m, s) = (_mm512_set1_ps(mean), _mm512_set1_ps(inv));
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= len of x, gamma and beta (equal lengths).
            let p = x.as_mut_ptr().add(i);
            let t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p), m), s);
            let v = _mm512_fmadd_ps(
                t,
                _mm512_loadu_ps(gamma.as_ptr().add(i)),
                _mm512_loadu_ps(beta.as_ptr().add(i)),
            );
            _mm512_storeu_ps(p, v);
            i += LANES;
        }
        normalize_scalar(&mut x[full..], mean, inv, &gamma[full..], &beta[full..]);
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn normalize_avx2(
        x: &mut [f32],
        mean: f32,
        inv: f32,
        gamma: &[f32],
        beta: &[f32],
    ) {
        let full = x.len() / 8 * 8;
        let (m, s) = (_mm256_set1_ps(mean), _mm256_set1_ps(inv));
        let mut i = 0;
        while i < full {
            // SAFETY: i + 8 <= full <= len of x, gamma and beta (equal lengths).
            let p = x.as_mut_ptr().add(i);
            let t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p), m), s);
            let v = _mm256_fmadd_ps(
                t,
                _mm256_loadu_ps(gamma.as_ptr().add(i)),
                _mm256_loadu_ps(beta.as_ptr().add(i)),
            );
            _mm256_storeu_ps(p, v);
            i += 8;
        }
        normalize_scalar(&mut x[full..], mean, inv, &gamma[full..], &beta[full..]);
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn silu_avx512(x: &mut [f32]) {
        let full = x.len() / LANES * LANES;
        let one = _mm512_set1_ps(1.0);
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= x.len().
            let p = x.as_mut_ptr().add(i);
            let v = _mm512_loadu_ps(p);
            let e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
            _mm512_storeu_ps(p, _mm512_div_ps(v, _mm512_add_ps(one, e)));
            i += LANES;
        }
        silu_scalar(&mut x[full..]);
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn silu_avx2(x: &mut [f32]) {
        let full = x.len() / 8 * 8;
        let one = _mm256_set1_ps(1.0);
        let mut i = 0;
        while i < full {
            // SAFETY: i + 8 <= full <= x.len().
            let p = x.as_mut_ptr().add(i);
            let v = _mm256_loadu_ps(p);
            let e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), v));
            _mm256_storeu_ps(p, _mm256_div_ps(v, _mm256_add_ps(one, e)));
            i += 8;
        }
        silu_scalar(&mut x[full..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 8.0 - 4.0
            })
            .collect()
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ln_is_accurate() {
        for x in [
            1.0,
            1.5,
            2.0,
            std::f64::consts::E,
            10.0,
            59514.0,
            1e-300,
            7.3e200,
            5e-320,
        ] {
            let (got, want) = (ln(x), x.ln());
            assert!(
                (got - want).abs() <= 1e-14 * want.abs().max(1.0),
                "{x}: {got} {want}"
            );
        }
    }

    #[test]
    fn every_isa_gives_the_same_bits() {
        for n in [0usize, 1, 7, 15, 16, 17, 31, 64, 100, 512, 1000] {
            let (a, b) = (data(n, 1), data(n, 2));
            let gamma = data(n, 3);
            let beta = data(n, 4);
            let reference = Isa::Portable;
            for isa in Isa::available() {
                let same = |x: f32, y: f32| x.to_bits() == y.to_bits();
                assert!(
                    same(dot(isa, &a, &b), dot(reference, &a, &b)),
                    "{isa} dot {n}"
                );
                assert!(
                    same(sum_exp(isa, &a, 1.5), sum_exp(reference, &a, 1.5)),
                    "{isa} sum_exp {n}"
                );
                assert!(same(max(isa, &a), max(reference, &a)), "{isa} max {n}");
                // dots and weighted_sum equal dot and axpy, bit for bit.
                let keys: Vec<Vec<f32>> = (0..7).map(|s| data(n, 10 + s)).collect();
                let key_refs: Vec<&[f32]> = keys.iter().map(Vec::as_slice).collect();
                let mut got = Vec::new();
                dots(isa, &a, &key_refs, &mut got);
                let want: Vec<f32> = keys.iter().map(|k| dot(reference, &a, k)).collect();
                assert_eq!(bits(&got), bits(&want), "{isa} dots {n}");
                let weights = data(7, 20);
                let mut summed = vec![1.0; n];
                weighted_sum(isa, &weights, &key_refs, &mut summed);
                let mut expected = vec![0.0; n];
                for (w, k) in weights.iter().zip(&keys) {
                    axpy(reference, *w, k, &mut expected);
                }
                assert_eq!(bits(&summed), bits(&expected), "{isa} weighted_sum {n}");
                let (mut e1, mut e2) = (a.clone(), a.clone());
                let (s1, s2) = (
                    exp_in_place(isa, &mut e1, 0.5),
                    exp_in_place(reference, &mut e2, 0.5),
                );
                assert!(
                    same(s1, s2) && bits(&e1) == bits(&e2),
                    "{isa} exp_in_place {n}"
                );
                assert!(
                    same(s1, sum_exp(reference, &a, 0.5)),
                    "{isa} exp_in_place sum {n}"
                );
                let (mut y1, mut y2) = (b.clone(), b.clone());
                axpy(isa, 0.37, &a, &mut y1);
                axpy(reference, 0.37, &a, &mut y2);
                assert_eq!(bits(&y1), bits(&y2), "{isa} axpy {n}");
                let (mut s1, mut s2) = (a.clone(), a.clone());
                silu(isa, &mut s1);
                silu(reference, &mut s2);
                assert_eq!(bits(&s1), bits(&s2), "{isa} silu {n}");
                if n > 0 {
                    let (mut l1, mut l2) = (a.clone(), a.clone());
                    add_layer_norm(isa, &mut l1, &b, &gamma, &beta, 1e-5).unwrap();
                    add_layer_norm(reference, &mut l2, &b, &gamma, &beta, 1e-5).unwrap();
                    assert_eq!(bits(&l1), bits(&l2), "{isa} layer norm {n}");
                }
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn reductions_are_accurate() {
        let (a, b) = (data(1000, 5), data(1000, 6));
        let isa = Isa::Portable;
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(isa, &a, &b) as f64 - want).abs() < 1e-3);
        let want: f64 = a.iter().map(|x| (*x as f64 - 1.0).exp()).sum();
        assert!(((sum_exp(isa, &a, 1.0) as f64 - want) / want).abs() < 1e-5);
        let mut with_nan = a.clone();
        with_nan[500] = f32::NAN;
        for isa in Isa::available() {
            assert!(max(isa, &with_nan).is_nan());
            assert_eq!(max(isa, &a), a.iter().copied().fold(f32::MIN, f32::max));
        }
    }

    #[test]
    fn layer_norm_matches_the_formula() {
        let (x, r) = (data(37, 7), data(37, 8));
        let gamma = vec![2.0; 37];
        let beta = vec![0.5; 37];
        let mut got = x.clone();
        add_layer_norm(Isa::Portable, &mut got, &r, &gamma, &beta, 1e-5).unwrap();
        assert!(add_layer_norm(Isa::Portable, &mut got, &r[1..], &gamma, &beta, 1e-5).is_err());
        assert!(add_layer_norm(Isa::Portable, &mut got, &r, &[], &[], 1e-5).is_err());
        let s: Vec<f64> = x.iter().zip(&r).map(|(a, b)| (*a + *b) as f64).collect();
        let mean = s.iter().sum::<f64>() / 37.0;
        let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 37.0;
        for (g, v) in got.iter().zip(&s) {
            let want = (v - mean) / (var + 1e-5).sqrt() * 2.0 + 0.5;
            assert!((*g as f64 - want).abs() < 1e-5);
        }
    }

    #[test]
    fn activations() {
        let mut x = vec![-2.0f32, -0.5, 0.0, 0.5, 3.0];
        let want: Vec<f32> = x.iter().map(|v| v / (1.0 + (-v).exp())).collect();
        silu(Isa::Portable, &mut x);
        for (g, w) in x.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6);
        }
        let mut g = vec![-3.0f32, -1.0, 0.0, 1.0, 2.5];
        gelu_erf(&mut g);
        // x (1 + erf(x / √2)) / 2 in f64 (Python's math.erf).
        let want = [-0.004_049_694, -0.158_655_25, 0.0, 0.841_344_7, 2.484_475_8];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
        let mut t = vec![-3.0f32, 0.0, 1.0];
        gelu_tanh(&mut t);
        let want = [-0.003_637_392, 0.0, 0.841_192];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }
}
