//! CPU kernels of the fast engine, chosen once when a model is loaded.
//!
//! Every kernel here is written so that its result does not depend on the instruction set it
//! runs with, nor on how many rows it is given at once:
//! - a matrix product accumulates each output element in one fused multiply-add chain over the
//!   inner dimension, in order, whatever the vector width (an element lives in one vector lane);
//! - the int8 product accumulates exact integers;
//! - reductions (dot products, sums of exponentials, layer norm statistics) use 16 partial
//!   sums and one fixed tree, on every instruction set;
//! - `exp` and `ln` are our own polynomials, built from the same operations everywhere.
//!
//! So a sentence gets the same bits alone or in a batch, on an AVX-512 server or an AVX2
//! laptop, and sharded or resumed corpus runs reproduce a one-shot run byte for byte.

pub mod attention;
pub mod int8;
pub mod sgemm;
pub mod vector;

use std::fmt;

/// Arguments whose sizes do not fit together (a kernel never panics on them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kernel {kernel}: {problem}")]
pub struct ShapeError {
    /// The kernel called.
    pub kernel: &'static str,
    /// Which sizes disagree.
    pub problem: String,
}

/// Returns a [`ShapeError`] from `kernel` unless `condition` holds.
macro_rules! ensure_shape {
    ($kernel:expr, $condition:expr, $($problem:tt)+) => {
        if !$condition {
            return Err($crate::marian::kernels::ShapeError {
                kernel: $kernel,
                problem: format!($($problem)+),
            });
        }
    };
}
pub(crate) use ensure_shape;

/// The instruction sets the kernels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512 F + BW (+ VNNI for the int8 product).
    Avx512,
    /// AVX2 + FMA.
    Avx2,
    /// Plain Rust, for every other CPU.
    Portable,
}

impl Isa {
    /// A short name for reports ("avx512", "avx2", "portable").
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Whether this CPU can run the float kernels written for `self`.
    pub fn supports_float(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.supports_float() && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Whether this CPU can run the int8 product written for `self` (AVX-512 needs VNNI).
    pub fn supports_int8(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                self.supports_float()
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            other => other.supports_float(),
        }
    }

    /// Every instruction set this CPU supports for both kinds of kernels, widest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|isa| isa.supports_int8())
            .collect()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kernels a model runs with: one instruction set for the float kernels and one for the
/// int8 product, detected once at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernels {
    /// Instruction set of the f32 products, attention and vector operations.
    pub float: Isa,
    /// Instruction set of the int8 product.
    pub int8: Isa,
}

impl Kernels {
    /// The widest kernels this CPU supports.
    ///
    /// Measured on an AMD EPYC (Zen 5, 2 cores), `traduire bench`: see README "Performance"
    /// for the AVX-512 / AVX2 comparison that made AVX-512 the default where available.
    pub fn detect() -> Self {
        let widest = |supported: fn(Isa) -> bool| {
            [Isa::Avx512, Isa::Avx2]
                .into_iter()
                .find(|&isa| supported(isa))
                .unwrap_or(Isa::Portable)
        };
        Self {
            float: widest(Isa::supports_float),
            int8: widest(Isa::supports_int8),
        }
    }

    /// The given instruction set for every kernel, if this CPU supports it.
    pub fn with_isa(isa: Isa) -> Option<Self> {
        isa.supports_int8().then_some(Self {
            float: isa,
            int8: isa,
        })
    }
}

impl fmt::Display for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.float == self.int8 {
            write!(f, "{}", self.float)
        } else {
            write!(f, "f32 {}, int8 {}", self.float, self.int8)
        }
    }
}

/// Splits `0..len` into about `parts` contiguous ranges of whole `align`-sized blocks, for
/// handing work to threads.
pub(crate) fn split_ranges(
    len: usize,
    parts: usize,
    align: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let blocks = len.div_ceil(align.max(1));
    let parts = parts.clamp(1, blocks.max(1));
    let per = blocks.div_ceil(parts);
    (0..parts).filter_map(move |p| {
        let start = (p * per * align).min(len);
        let end = ((p + 1) * per * align).min(len);
        (start < end).then_some(start..end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once() {
        for (len, parts, align) in [
            (0, 4, 16),
            (5, 4, 16),
            (100, 3, 16),
            (1000, 7, 1),
            (33, 40, 2),
        ] {
            let ranges: Vec<_> = split_ranges(len, parts, align).collect();
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next);
                assert!(r.start % align == 0);
                next = r.end;
            }
            assert_eq!(next, len);
            assert!(ranges.len() <= parts.max(1));
        }
    }

    #[test]
    fn portable_is_always_available() {
        assert_eq!(*Isa::available().last().unwrap(), Isa::Portable);
        assert!(Kernels::with_isa(Isa::Portable).is_some());
    }
}
