//! Scaled dot-product attention on row-major activations, heads side by side in each row.
//!
//! Queries only see the valid (unpadded) keys of their sequence, so a sentence gets the same
//! result whatever it is batched with; the dot products and the softmax come from
//! [`super::vector`], so the result is also the same on every instruction set.

use rayon::prelude::*;

use super::vector;
use super::{ensure_shape, Isa, ShapeError};

/// Where the keys and values of one attention call live.
///
/// Key `t` of sequence `s` starts at `k[s * seq_stride + t * pos_stride]` (its value likewise
/// in `v`); head `h` takes `head_dim` elements at offset `h * head_dim`.
#[derive(Clone, Copy)]
pub struct KeysValues<'a> {
    /// Keys (may share a buffer with the values, at another offset).
    pub k: &'a [f32],
    /// Values.
    pub v: &'a [f32],
    /// Elements between consecutive sequences.
    pub seq_stride: usize,
    /// Elements between consecutive positions of a sequence.
    pub pos_stride: usize,
    /// Valid keys of each sequence.
    pub lens: &'a [usize],
    /// Maps a group of rows to its sequence, when sequences were dropped from the batch
    /// (`None`: group `g` attends over sequence `g`).
    pub seq_map: Option<&'a [u32]>,
}

/// The self-attention history of a decoder: for each past step `t`, a block of keys and of
/// values (`rows_t × width`), and for each current row which row of block `t` is its
/// ancestor. Beam search reorders rows by rewriting `origins`, never by copying keys.
#[derive(Clone, Copy)]
pub struct History<'a> {
    /// Keys of every step, block after block.
    pub keys: &'a [f32],
    /// Values of every step, laid out as the keys.
    pub values: &'a [f32],
    /// Block `t` is `keys[block_starts[t]..block_starts[t + 1]]` (one entry per step, plus
    /// one).
    pub block_starts: &'a [usize],
    /// `origins[t][row]`: the row of block `t` that `row` descends from.
    pub origins: &'a [Vec<u32>],
}

/// The shape of the heads.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    /// Number of heads.
    pub heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Multiplies the queries (1/√head_dim).
    pub scale: f32,
}

impl Heads {
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// One query per output row: row `r` (of `rows`) reads its query at `q[r * q_stride ..]` and
/// attends over sequence `r / group` of `kv`. Writes `out` (`rows × heads·head_dim`).
pub fn single_query(
    isa: Isa,
    q: &[f32],
    q_stride: usize,
    group: usize,
    kv: KeysValues<'_>,
    heads: Heads,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    const NAME: &str = "attention";
    let hd = heads.head_dim;
    let width = heads.width();
    ensure_shape!(NAME, hd > 0, "heads of 0 elements");
    if out.is_empty() {
        return Ok(());
    }
    let rows = out.len() / width;
    let group = group.max(1);
    ensure_shape!(
        NAME,
        out.len() == rows * width,
        "output of {} values, not rows of {width}",
        out.len()
    );
    ensure_shape!(
        NAME,
        q_stride >= width && (rows - 1) * q_stride + width <= q.len(),
        "{} query values for {rows} rows",
        q.len()
    );
    let groups = rows.div_ceil(group);
    let sequences = match kv.seq_map {
        Some(map) => {
            ensure_shape!(
                NAME,
                map.len() >= groups,
                "a map of {} sequences for {groups} groups",
                map.len()
            );
            map[..groups]
                .iter()
                .map(|&s| s as usize)
                .collect::<Vec<_>>()
        }
        None => (0..groups).collect(),
    };
    for seq in sequences {
        check_sequence(NAME, &kv, seq, width)?;
    }
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (index, dst)| {
            let (row, head) = (index / heads.heads, index % heads.heads);
            let seq = kv.seq_map.map_or(row / group, |m| m[row / group] as usize);
            let q = &q[row * q_stride + head * hd..row * q_stride + (head + 1) * hd];
            attend_one(isa, q, seq, head, kv, heads, scratch, dst);
        });
    Ok(())
}

/// Checks that sequence `seq` of `kv` lies within its buffers.
fn check_sequence(
    name: &'static str,
    kv: &KeysValues<'_>,
    seq: usize,
    width: usize,
) -> Result<(), ShapeError> {
    ensure_shape!(
        name,
        seq < kv.lens.len(),
        "sequence {seq} of {}",
        kv.lens.len()
    );
    let len = kv.lens[seq];
    if len == 0 {
        return Ok(());
    }
    ensure_shape!(
        name,
        kv.pos_stride >= width,
        "positions {} apart, narrower than {width}",
        kv.pos_stride
    );
    let end = seq * kv.seq_stride + (len - 1) * kv.pos_stride + width;
    ensure_shape!(
        name,
        end <= kv.k.len() && end <= kv.v.len(),
        "sequence {seq} of {len} keys ends past the keys or values"
    );
    Ok(())
}

/// One query per row over the decoder's own history (see [`History`]): row `r` reads its
/// query at `q[r * q_stride ..]` and attends over every past step. Writes `out`
/// (`rows × heads·head_dim`).
pub fn single_query_history(
    isa: Isa,
    q: &[f32],
    q_stride: usize,
    history: History<'_>,
    heads: Heads,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    const NAME: &str = "history attention";
    let hd = heads.head_dim;
    let width = heads.width();
    ensure_shape!(NAME, hd > 0, "heads of 0 elements");
    if out.is_empty() {
        return Ok(());
    }
    let rows = out.len() / width;
    ensure_shape!(
        NAME,
        out.len() == rows * width,
        "output of {} values, not rows of {width}",
        out.len()
    );
    ensure_shape!(
        NAME,
        q_stride >= width && (rows - 1) * q_stride + width <= q.len(),
        "{} query values for {rows} rows",
        q.len()
    );
    let steps = history.origins.len();
    let starts = history.block_starts;
    ensure_shape!(
        NAME,
        starts.len() == steps + 1,
        "{steps} steps of origins, {} block starts",
        starts.len()
    );
    let end = starts[steps];
    ensure_shape!(
        NAME,
        end <= history.keys.len() && end <= history.values.len(),
        "blocks end at {end}, past {} keys or {} values",
        history.keys.len(),
        history.values.len()
    );
    for (t, origin) in history.origins.iter().enumerate() {
        ensure_shape!(
            NAME,
            origin.len() >= rows,
            "step {t} has origins for {} rows, not {rows}",
            origin.len()
        );
        ensure_shape!(
            NAME,
            starts[t] <= starts[t + 1] && (starts[t + 1] - starts[t]).is_multiple_of(width),
            "step {t}: block {}..{} is not whole rows of {width}",
            starts[t],
            starts[t + 1]
        );
        let block_rows = (starts[t + 1] - starts[t]) / width;
        ensure_shape!(
            NAME,
            origin[..rows].iter().all(|&o| (o as usize) < block_rows),
            "step {t} points past its {block_rows} rows"
        );
    }
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (index, dst)| {
            let (row, head) = (index / heads.heads, index % heads.heads);
            let q = &q[row * q_stride + head * hd..row * q_stride + (head + 1) * hd];
            scratch.keys.clear();
            scratch.values.clear();
            for (&start, origin) in starts.iter().zip(history.origins) {
                let at = start + origin[row] as usize * width + head * hd;
                scratch.keys.push(&history.keys[at..at + hd]);
                scratch.values.push(&history.values[at..at + hd]);
            }
            attend(isa, q, heads.scale, scratch, dst);
        });
    Ok(())
}

/// Encoder self-attention over a padded batch: `qkv` holds, per row (`batch × len` rows), the
/// queries, keys and values side by side (`3 × heads·head_dim`); `lens` the valid length of each
/// sequence. Rows past a sequence's length (padding) get zeros.
pub fn self_attention(
    isa: Isa,
    qkv: &[f32],
    len: usize,
    lens: &[usize],
    heads: Heads,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    const NAME: &str = "self attention";
    let hd = heads.head_dim;
    let width = heads.width();
    ensure_shape!(NAME, hd > 0, "heads of 0 elements");
    ensure_shape!(
        NAME,
        out.len() == lens.len() * len * width,
        "output of {} values for {} sequences of {len} x {width}",
        out.len(),
        lens.len()
    );
    ensure_shape!(
        NAME,
        qkv.len() == 3 * out.len(),
        "{} query/key/value values for {} outputs",
        qkv.len(),
        out.len()
    );
    ensure_shape!(
        NAME,
        lens.iter().all(|&l| l <= len),
        "a sequence longer than {len}"
    );
    if out.is_empty() {
        return Ok(());
    }
    let kv = KeysValues {
        k: &qkv[width..],
        v: &qkv[2 * width..],
        seq_stride: len * 3 * width,
        pos_stride: 3 * width,
        lens,
        seq_map: None,
    };
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (index, dst)| {
            let (row, head) = (index / heads.heads, index % heads.heads);
            let (seq, pos) = (row / len, row % len);
            if pos >= lens[seq] {
                dst.fill(0.0);
                return;
            }
            let q = &qkv[row * 3 * width + head * hd..row * 3 * width + (head + 1) * hd];
            attend_one(isa, q, seq, head, kv, heads, scratch, dst);
        });
    Ok(())
}

/// Per-thread buffers of the attention loops.
#[derive(Default)]
struct Scratch<'a> {
    query: Vec<f32>,
    scores: Vec<f32>,
    keys: Vec<&'a [f32]>,
    values: Vec<&'a [f32]>,
}

/// `dst = softmax((scale q) · K_seq,head) V_seq,head` over the valid keys of `seq`.
#[allow(clippy::too_many_arguments)]
fn attend_one<'a>(
    isa: Isa,
    q: &[f32],
    seq: usize,
    head: usize,
    kv: KeysValues<'a>,
    heads: Heads,
    scratch: &mut Scratch<'a>,
    dst: &mut [f32],
) {
    let hd = heads.head_dim;
    let base = seq * kv.seq_stride + head * hd;
    scratch.keys.clear();
    scratch.values.clear();
    for t in 0..kv.lens[seq] {
        let at = base + t * kv.pos_stride;
        scratch.keys.push(&kv.k[at..at + hd]);
        scratch.values.push(&kv.v[at..at + hd]);
    }
    attend(isa, q, heads.scale, scratch, dst);
}

/// `dst = softmax((scale q) · keys) values` over the keys and values in `scratch`.
fn attend(isa: Isa, q: &[f32], scale: f32, scratch: &mut Scratch<'_>, dst: &mut [f32]) {
    softmax_weights(isa, q, scale, scratch);
    vector::weighted_sum(isa, &scratch.scores, &scratch.values, dst);
}

/// `scratch.scores = softmax((scale q) · keys)` over the keys in `scratch`: the weights
/// [`attend`] applies to the values.
fn softmax_weights(isa: Isa, q: &[f32], scale: f32, scratch: &mut Scratch<'_>) {
    scratch.query.clear();
    scratch.query.extend(q.iter().map(|v| v * scale));
    vector::dots(isa, &scratch.query, &scratch.keys, &mut scratch.scores);
    let max = vector::max(isa, &scratch.scores);
    let sum = vector::exp_in_place(isa, &mut scratch.scores, max);
    for p in &mut scratch.scores {
        *p /= sum;
    }
}

/// The weights that [`single_query`] (called with the same `q`, `q_stride`, `group`, `kv` and
/// `heads`) gives the keys in head `head`: row `r` gets its softmax over its sequence's valid
/// keys in `out[r * stride..]`, zeros after them up to `stride`. The same bits as the weights
/// the attention itself applies. The model's alignment is read this way.
#[allow(clippy::too_many_arguments)]
pub fn single_query_weights(
    isa: Isa,
    q: &[f32],
    q_stride: usize,
    group: usize,
    kv: KeysValues<'_>,
    heads: Heads,
    head: usize,
    stride: usize,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    const NAME: &str = "attention weights";
    let hd = heads.head_dim;
    let width = heads.width();
    ensure_shape!(
        NAME,
        hd > 0 && stride > 0,
        "heads of 0 elements or rows of 0"
    );
    ensure_shape!(NAME, head < heads.heads, "head {head} of {}", heads.heads);
    if out.is_empty() {
        return Ok(());
    }
    let rows = out.len() / stride;
    let group = group.max(1);
    ensure_shape!(
        NAME,
        out.len() == rows * stride,
        "output of {} values, not rows of {stride}",
        out.len()
    );
    ensure_shape!(
        NAME,
        q_stride >= width && (rows - 1) * q_stride + width <= q.len(),
        "{} query values for {rows} rows",
        q.len()
    );
    let groups = rows.div_ceil(group);
    for g in 0..groups {
        let seq = match kv.seq_map {
            Some(map) => {
                ensure_shape!(NAME, g < map.len(), "a map of {} sequences", map.len());
                map[g] as usize
            }
            None => g,
        };
        check_sequence(NAME, &kv, seq, width)?;
        ensure_shape!(
            NAME,
            kv.lens[seq] <= stride,
            "{} keys in rows of {stride}",
            kv.lens[seq]
        );
    }
    out.par_chunks_mut(stride).enumerate().for_each_init(
        Scratch::default,
        |scratch, (row, dst)| {
            let seq = kv.seq_map.map_or(row / group, |m| m[row / group] as usize);
            let q = &q[row * q_stride + head * hd..row * q_stride + (head + 1) * hd];
            let base = seq * kv.seq_stride + head * hd;
            scratch.keys.clear();
            for t in 0..kv.lens[seq] {
                let at = base + t * kv.pos_stride;
                scratch.keys.push(&kv.k[at..at + hd]);
            }
            softmax_weights(isa, q, heads.scale, scratch);
            let len = scratch.scores.len();
            dst[..len].copy_from_slice(&scratch.scores);
            dst[len..].fill(0.0);
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(3);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// softmax(q k / √d) v in f64 for one (row, head).
    fn naive(q: &[f32], keys: &[&[f32]], values: &[&[f32]], scale: f32) -> Vec<f64> {
        let scores: Vec<f64> = keys
            .iter()
            .map(|k| {
                q.iter()
                    .zip(*k)
                    .map(|(a, b)| (a * scale) as f64 * *b as f64)
                    .sum()
            })
            .collect();
        let max = scores.iter().copied().fold(f64::MIN, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        (0..q.len())
            .map(|d| {
                exps.iter()
                    .zip(values)
                    .map(|(e, v)| e / sum * v[d] as f64)
                    .sum()
            })
            .collect()
    }

    #[test]
    fn self_attention_matches_the_formula_and_ignores_padding() {
        let heads = Heads {
            heads: 2,
            head_dim: 5,
            scale: 0.4,
        };
        let (len, lens) = (4, [4usize, 2]);
        let width = 10;
        let mut qkv = data(lens.len() * len * 3 * width, 1);
        let mut reference = vec![0f32; lens.len() * len * width];
        self_attention(Isa::Portable, &qkv, len, &lens, heads, &mut reference).unwrap();
        for (s, &l) in lens.iter().enumerate() {
            for i in 0..len {
                for h in 0..2 {
                    let got = &reference[(s * len + i) * width + h * 5..][..5];
                    if i >= l {
                        assert!(got.iter().all(|&v| v == 0.0));
                        continue;
                    }
                    let row = |t: usize, part: usize| {
                        &qkv[(s * len + t) * 3 * width + part * width + h * 5..][..5]
                    };
                    let keys: Vec<&[f32]> = (0..l).map(|t| row(t, 1)).collect();
                    let values: Vec<&[f32]> = (0..l).map(|t| row(t, 2)).collect();
                    let want = naive(row(i, 0), &keys, &values, 0.4);
                    for (g, w) in got.iter().zip(want) {
                        assert!((*g as f64 - w).abs() < 1e-5);
                    }
                }
            }
        }
        // Padding content does not matter; every instruction set gives the same bits.
        for v in &mut qkv[(len + 2) * 3 * width..] {
            *v = 1e3;
        }
        for isa in Isa::available() {
            let mut out = vec![0f32; reference.len()];
            self_attention(isa, &qkv, len, &lens, heads, &mut out).unwrap();
            assert_eq!(out, reference, "{isa}");
        }
    }

    #[test]
    fn single_query_with_groups_matches_self_attention_rows() {
        let heads = Heads {
            heads: 3,
            head_dim: 4,
            scale: 0.5,
        };
        let width = 12;
        let (sources, src_len, group) = (2, 5, 3);
        let kv_data = data(sources * src_len * 2 * width, 2);
        let lens = [5usize, 3];
        let kv = KeysValues {
            k: &kv_data,
            v: &kv_data[width..],
            seq_stride: src_len * 2 * width,
            pos_stride: 2 * width,
            lens: &lens,
            seq_map: None,
        };
        let rows = sources * group;
        let q = data(rows * width, 3);
        let mut first: Option<Vec<f32>> = None;
        for isa in Isa::available() {
            let mut out = vec![0f32; rows * width];
            single_query(isa, &q, width, group, kv, heads, &mut out).unwrap();
            for r in 0..rows {
                let s = r / group;
                for h in 0..3 {
                    let keys: Vec<&[f32]> = (0..lens[s])
                        .map(|t| &kv_data[s * src_len * 2 * width + t * 2 * width + h * 4..][..4])
                        .collect();
                    let values: Vec<&[f32]> = (0..lens[s])
                        .map(|t| {
                            &kv_data[s * src_len * 2 * width + t * 2 * width + width + h * 4..][..4]
                        })
                        .collect();
                    let want = naive(&q[r * width + h * 4..][..4], &keys, &values, 0.5);
                    for (g, w) in out[r * width + h * 4..][..4].iter().zip(want) {
                        assert!((*g as f64 - w).abs() < 1e-5);
                    }
                }
            }
            match &first {
                None => first = Some(out),
                Some(f) => assert_eq!(&out, f, "{isa}"),
            }
        }
    }

    #[test]
    fn weights_are_the_softmax_the_attention_applies() {
        let heads = Heads {
            heads: 2,
            head_dim: 3,
            scale: 0.6,
        };
        let width = 6;
        let (src_len, group) = (4, 2);
        let kv_data = data(3 * src_len * 2 * width, 5);
        let lens = [4usize, 2, 3];
        // Source 1 was dropped: the two groups attend over sources 0 and 2.
        let map = [0u32, 2];
        let kv = KeysValues {
            k: &kv_data,
            v: &kv_data[width..],
            seq_stride: src_len * 2 * width,
            pos_stride: 2 * width,
            lens: &lens,
            seq_map: Some(&map),
        };
        let rows = 2 * group;
        let q = data(rows * width, 6);
        let stride = 5;
        let mut reference: Option<Vec<f32>> = None;
        for isa in Isa::available() {
            for head in 0..2 {
                let mut weights = vec![f32::NAN; rows * stride];
                single_query_weights(isa, &q, width, group, kv, heads, head, stride, &mut weights)
                    .unwrap();
                let mut out = vec![0f32; rows * width];
                single_query(isa, &q, width, group, kv, heads, &mut out).unwrap();
                for r in 0..rows {
                    let s = map[r / group] as usize;
                    let row = &weights[r * stride..(r + 1) * stride];
                    assert!(row[lens[s]..].iter().all(|&w| w == 0.0), "{row:?}");
                    let sum: f64 = row.iter().map(|&w| w as f64).sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
                    // Applied to the values, the weights give the attention's output.
                    for d in 0..3 {
                        let applied: f64 = (0..lens[s])
                            .map(|t| {
                                let v = kv_data[s * src_len * 2 * width
                                    + t * 2 * width
                                    + width
                                    + head * 3
                                    + d];
                                row[t] as f64 * v as f64
                            })
                            .sum();
                        let got = out[r * width + head * 3 + d] as f64;
                        assert!((applied - got).abs() < 1e-5, "{applied} vs {got}");
                    }
                }
                if head == 0 {
                    match &reference {
                        None => reference = Some(weights),
                        Some(w) => assert_eq!(&weights, w, "{isa}"),
                    }
                }
            }
        }
        let mut short = vec![0f32; rows * 3];
        assert!(
            single_query_weights(Isa::Portable, &q, width, group, kv, heads, 0, 3, &mut short)
                .is_err()
        );
        let mut out = vec![0f32; rows * stride];
        assert!(single_query_weights(
            Isa::Portable,
            &q,
            width,
            group,
            kv,
            heads,
            2,
            stride,
            &mut out
        )
        .is_err());
    }

    #[test]
    fn history_with_origins_equals_attention_over_gathered_keys() {
        let heads = Heads {
            heads: 2,
            head_dim: 3,
            scale: 0.7,
        };
        let width = 6;
        // Three steps: three rows at step 0 (a third source, dropped since), then two rows.
        // Row 0 descends from row 1 and row 1 from row 0 at step 0, and both from row 1 at
        // step 1 (beam reordering).
        let block_rows = [3usize, 2, 2];
        let keys: Vec<Vec<f32>> = (0..3)
            .map(|t| data(block_rows[t] * width, 10 + t as u64))
            .collect();
        let values: Vec<Vec<f32>> = (0..3)
            .map(|t| data(block_rows[t] * width, 20 + t as u64))
            .collect();
        let flat_keys = keys.concat();
        let flat_values = values.concat();
        let block_starts = [0, 3 * width, 5 * width, 7 * width];
        let origins = vec![vec![1u32, 0], vec![1, 1], vec![0, 1]];
        let q = data(2 * width, 30);
        let mut out = vec![0f32; 2 * width];
        let history = History {
            keys: &flat_keys,
            values: &flat_values,
            block_starts: &block_starts,
            origins: &origins,
        };
        single_query_history(Isa::Portable, &q, width, history, heads, &mut out).unwrap();
        for row in 0..2 {
            for h in 0..2 {
                let ks: Vec<&[f32]> = (0..3)
                    .map(|t| &keys[t][origins[t][row] as usize * width + h * 3..][..3])
                    .collect();
                let vs: Vec<&[f32]> = (0..3)
                    .map(|t| &values[t][origins[t][row] as usize * width + h * 3..][..3])
                    .collect();
                let want = naive(&q[row * width + h * 3..][..3], &ks, &vs, 0.7);
                for (g, w) in out[row * width + h * 3..][..3].iter().zip(want) {
                    assert!((*g as f64 - w).abs() < 1e-5);
                }
            }
        }
        for isa in Isa::available() {
            let mut again = vec![0f32; 2 * width];
            single_query_history(isa, &q, width, history, heads, &mut again).unwrap();
            assert_eq!(again, out, "{isa}");
        }
        // Origins past their block, blocks that are not whole rows or end past the buffers,
        // a short query buffer: errors, not panics.
        let bad = vec![vec![1u32, 0], vec![1, 2], vec![0, 1]];
        let broken = History {
            origins: &bad,
            ..history
        };
        assert!(single_query_history(Isa::Portable, &q, width, broken, heads, &mut out).is_err());
        for starts in [
            [0, 3 * width, 5 * width - 1, 7 * width],
            [0, 3 * width, 5 * width, 8 * width],
        ] {
            let broken = History {
                block_starts: &starts,
                ..history
            };
            assert!(
                single_query_history(Isa::Portable, &q, width, broken, heads, &mut out).is_err()
            );
        }
        let short = History {
            block_starts: &block_starts[..3],
            ..history
        };
        assert!(single_query_history(Isa::Portable, &q, width, short, heads, &mut out).is_err());
        assert!(
            single_query_history(Isa::Portable, &q[..5], width, history, heads, &mut out).is_err()
        );
        let zero = Heads {
            heads: 2,
            head_dim: 0,
            scale: 1.0,
        };
        assert!(single_query_history(Isa::Portable, &q, width, history, zero, &mut out).is_err());
    }
}
