//! numpy's default random generator, reproduced bit for bit.
//!
//! sacreBLEU's paired bootstrap test (`sacrebleu --paired-bs`) draws its resampled segment
//! indices with `np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)`.
//! Its p-values, means and confidence intervals therefore depend on numpy's exact stream;
//! [`NumpyRng`] reproduces it (numpy 2.4.6, whose generator streams numpy keeps stable across
//! versions) so that `traduire` reports the same numbers as sacreBLEU 2.6.0.
//!
//! The pieces, as in numpy's sources:
//! - `SeedSequence(seed)` (numpy/random/bit_generator.pyx): the seed's 32-bit words are hashed
//!   into a pool of four words, from which `generate_state(4, uint64)` derives the PCG64 seed;
//! - `PCG64` (numpy/random/src/pcg64/pcg64.h): a 128-bit LCG with the XSL-RR output function;
//!   its 32-bit draws split one 64-bit output in two, low half first, keeping the high half;
//! - `Generator.choice(n, size, replace=True)` without `p` is `integers(0, n, size, int64)`,
//!   which fills the array in C order with `random_bounded_uint64_fill`
//!   (numpy/random/src/distributions/distributions.c): Lemire's method on 32-bit draws when
//!   `n - 1` fits 32 bits, on 64-bit draws otherwise.

/// Words in `SeedSequence`'s entropy pool (`DEFAULT_POOL_SIZE`).
const POOL_SIZE: usize = 4;
/// `SeedSequence`'s hash constants (bit_generator.pyx).
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;

/// PCG64's default 128-bit multiplier (`PCG_DEFAULT_MULTIPLIER_128`).
const PCG_MULTIPLIER: u128 = (2_549_297_995_355_413_924u128 << 64) | 4_865_540_595_714_422_341u128;

/// numpy's `np.random.default_rng(seed)`: PCG64 seeded through `SeedSequence(seed)`.
///
/// It reproduces numpy's stream exactly, so that sacreBLEU's bootstrap resamples, and with
/// them its p-values and confidence intervals, come out the same in `traduire`.
#[derive(Debug, Clone)]
pub struct NumpyRng {
    /// The LCG state.
    state: u128,
    /// The LCG increment (always odd).
    inc: u128,
    /// The high half of the last 64-bit output when only its low half has been used as a
    /// 32-bit draw (numpy's `has_uint32`/`uinteger`); it persists across calls as in numpy.
    buffered_u32: Option<u32>,
}

impl NumpyRng {
    /// The generator `np.random.default_rng(seed)` returns.
    pub fn new(seed: u64) -> Self {
        let words = generate_state_u64(&seed_sequence_pool(seed));
        // pcg64_set_seed: the first two words are the state's high and low halves, the last
        // two the stream's.
        let initstate = (u128::from(words[0]) << 64) | u128::from(words[1]);
        let initseq = (u128::from(words[2]) << 64) | u128::from(words[3]);
        // pcg_setseq_128_srandom_r
        let mut rng = NumpyRng {
            state: 0,
            inc: (initseq << 1) | 1,
            buffered_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    /// The next 64-bit output: numpy's `bit_generator.random_raw()` and `next_uint64`.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        // XSL-RR: fold the halves together, rotate by the top six bits.
        let folded = ((self.state >> 64) as u64) ^ (self.state as u64);
        folded.rotate_right((self.state >> 122) as u32)
    }

    /// The next 32-bit draw: numpy's `next_uint32` for PCG64, which hands out the low half of
    /// a 64-bit output and keeps the high half for the following call.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.buffered_u32.take() {
            return high;
        }
        let next = self.next_u64();
        self.buffered_u32 = Some((next >> 32) as u32);
        next as u32
    }

    /// `rng.choice(n, size=count, replace=True)`: `count` indices in `0..n`, drawn in the order
    /// numpy fills its output. A `(rows, cols)` size is the same stream read row by row, so the
    /// `(n_samples, n_segments)` matrix sacreBLEU draws is `choice(n_segments, n_samples *
    /// n_segments)`, and successive calls continue numpy's stream as successive numpy calls do.
    ///
    /// numpy accepts `n` up to `i64::MAX`; larger `n` still draws uniformly but has no numpy
    /// counterpart.
    ///
    /// # Panics
    ///
    /// If `n` is 0 while `count` is not, which numpy rejects as well ("a must be a positive
    /// integer unless no samples are taken").
    pub fn choice(&mut self, n: usize, count: usize) -> Vec<usize> {
        if count == 0 {
            return Vec::new();
        }
        assert!(n > 0, "choice: cannot draw from an empty range");
        // numpy draws on the closed interval [0, n - 1].
        let rng = (n - 1) as u64;
        if rng == 0 {
            // A single choice consumes no randomness.
            return vec![0; count];
        }
        if rng == u64::from(u32::MAX) {
            // The full 32-bit range, which Lemire's 32-bit method cannot express.
            return (0..count).map(|_| self.next_u32() as usize).collect();
        }
        if rng < u64::from(u32::MAX) {
            let rng = rng as u32;
            return (0..count)
                .map(|_| self.bounded_lemire_u32(rng) as usize)
                .collect();
        }
        // numpy's special case for the full 64-bit range cannot arise: `n` is at most
        // `usize::MAX`, so `rng` stays below `u64::MAX`.
        (0..count)
            .map(|_| self.bounded_lemire_u64(rng) as usize)
            .collect()
    }

    /// One LCG step (`pcg_setseq_128_step_r`).
    fn step(&mut self) {
        self.state = self
            .state
            .wrapping_mul(PCG_MULTIPLIER)
            .wrapping_add(self.inc);
    }

    /// A uniform value in `[0, rng]` from 32-bit draws: numpy's
    /// `buffered_bounded_lemire_uint32` (Lemire's multiply-and-reject method).
    fn bounded_lemire_u32(&mut self, rng: u32) -> u32 {
        let rng_excl = rng + 1;
        let mut m = u64::from(self.next_u32()) * u64::from(rng_excl);
        let mut leftover = m as u32;
        if leftover < rng_excl {
            // Only now is the exact rejection threshold (2^32 mod rng_excl) worth computing.
            let threshold = (u32::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * u64::from(rng_excl);
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// A uniform value in `[0, rng]` from 64-bit draws: numpy's `bounded_lemire_uint64`.
    fn bounded_lemire_u64(&mut self, rng: u64) -> u64 {
        let rng_excl = rng + 1;
        let mut m = u128::from(self.next_u64()) * u128::from(rng_excl);
        let mut leftover = m as u64;
        if leftover < rng_excl {
            let threshold = (u64::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = u128::from(self.next_u64()) * u128::from(rng_excl);
                leftover = m as u64;
            }
        }
        (m >> 64) as u64
    }
}

/// `hashmix` from bit_generator.pyx: hashes `value` and advances the running multiplier.
fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut value = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    value = value.wrapping_mul(*hash_const);
    value ^ (value >> XSHIFT)
}

/// `mix` from bit_generator.pyx: combines two pool words.
fn mix(x: u32, y: u32) -> u32 {
    let result = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    result ^ (result >> XSHIFT)
}

/// The entropy pool of `SeedSequence(seed)` (no spawn key, default pool size).
fn seed_sequence_pool(seed: u64) -> [u32; POOL_SIZE] {
    // _int_to_uint32_array: little-endian 32-bit words, at least one (0 gives [0]).
    let entropy: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };
    // mix_entropy; a u64 never has more words than the pool, so no entropy is left over.
    let mut hash_const = INIT_A;
    let mut pool = [0u32; POOL_SIZE];
    for (i, word) in pool.iter_mut().enumerate() {
        *word = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
    }
    for i_src in 0..POOL_SIZE {
        for i_dst in 0..POOL_SIZE {
            if i_src != i_dst {
                let hashed = hashmix(pool[i_src], &mut hash_const);
                pool[i_dst] = mix(pool[i_dst], hashed);
            }
        }
    }
    pool
}

/// `SeedSequence.generate_state(4, np.uint64)`: eight 32-bit words cycled out of the pool,
/// paired little-endian into four 64-bit words.
fn generate_state_u64(pool: &[u32; POOL_SIZE]) -> [u64; 4] {
    let mut hash_const = INIT_B;
    let mut words = [0u32; 8];
    for (i, word) in words.iter_mut().enumerate() {
        let mut value = pool[i % POOL_SIZE] ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        value = value.wrapping_mul(hash_const);
        *word = value ^ (value >> XSHIFT);
    }
    let mut out = [0u64; 4];
    for (i, pair) in words.chunks_exact(2).enumerate() {
        out[i] = u64::from(pair[0]) | (u64::from(pair[1]) << 32);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;

    /// `tests/fixtures/eval/bootstrap.json` (also read by the bootstrap tests).
    pub(crate) fn fixture() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/eval/bootstrap.json"
        );
        let text = std::fs::read_to_string(path).expect("read bootstrap.json");
        serde_json::from_str(&text).expect("parse bootstrap.json")
    }

    fn u64s(value: &Value) -> Vec<u64> {
        let list = value.as_array().expect("an array");
        list.iter().map(|v| v.as_u64().expect("a u64")).collect()
    }

    fn usizes(value: &Value) -> Vec<usize> {
        u64s(value).into_iter().map(|v| v as usize).collect()
    }

    #[test]
    fn seed_sequence_matches_numpy() {
        for case in fixture()["seed_sequence"].as_array().unwrap() {
            let seed = case["seed"].as_u64().unwrap();
            let words = generate_state_u64(&seed_sequence_pool(seed));
            assert_eq!(words.to_vec(), u64s(&case["words"]), "seed {seed}");
        }
    }

    #[test]
    fn raw_outputs_match_numpy() {
        for case in fixture()["raw"].as_array().unwrap() {
            let seed = case["seed"].as_u64().unwrap();
            let mut rng = NumpyRng::new(seed);
            let ours: Vec<u64> = (0..20).map(|_| rng.next_u64()).collect();
            assert_eq!(ours, u64s(&case["values"]), "seed {seed}");
        }
    }

    #[test]
    fn choice_matches_numpy() {
        let fixture = fixture();
        let cases = fixture["choice"].as_array().unwrap();
        let mut checked = 0;
        for case in cases {
            let seed = case["seed"].as_u64().unwrap();
            let n = case["n"].as_u64().unwrap() as usize;
            let rows = case["rows"].as_u64().unwrap() as usize;
            let cols = case["cols"].as_u64().unwrap() as usize;
            let mut rng = NumpyRng::new(seed);
            let ours = rng.choice(n, rows * cols);
            if let Some(values) = case.get("values") {
                assert_eq!(ours, usizes(values), "seed {seed} n {n}");
                // A second call continues from numpy's buffered 32-bit half.
                assert_eq!(rng.choice(n, 7), usizes(&case["then"]), "seed {seed} n {n}");
            } else {
                // sacreBLEU's full (1000, 124) matrix: its first and last rows.
                assert_eq!(ours[..cols], usizes(&case["first_row"])[..]);
                assert_eq!(ours[(rows - 1) * cols..], usizes(&case["last_row"])[..]);
            }
            checked += 1;
        }
        assert!(checked >= 30);
    }

    #[test]
    fn choice_of_nothing_draws_nothing() {
        let mut rng = NumpyRng::new(12345);
        assert!(rng.choice(0, 0).is_empty());
        assert_eq!(rng.choice(1, 3), vec![0, 0, 0]);
        // Neither call consumed randomness.
        assert_eq!(rng.next_u64(), NumpyRng::new(12345).next_u64());
    }
}
