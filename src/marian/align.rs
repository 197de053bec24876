//! The model's own word alignment: the last decoder layer's cross-attention weights of head 0
//! over a known target (teacher forcing). opus-mt models were trained as Marian's
//! `transformer-align`, whose guided-alignment loss supervises exactly that head, so its
//! weights say which source token each target token came from (Marian's `--alignment`,
//! CTranslate2's `return_attention`).

use super::error::Result;
use super::model::MarianModel;
use super::score::check_pairs;

/// Soft alignments of `targets[i]` given `sources[i]`: for each target token (its EOS
/// included), the weights over the source's tokens (its EOS included), which sum to 1. Row
/// `t` is the attention of the decoder step that predicts target token `t`, as transformers'
/// `cross_attentions[-1][:, 0]` of a forward pass with the target as decoder input.
pub fn align(
    model: &MarianModel,
    sources: &[Vec<u32>],
    targets: &[Vec<u32>],
) -> Result<Vec<Vec<Vec<f32>>>> {
    check_pairs(model, sources, targets)?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let start = model.config().decoder_start_token_id;
    let longest = targets.iter().map(Vec::len).max().unwrap_or(1);
    model.run(|| {
        let encoded = model.encode(sources)?;
        let mut decoder = model.start_decoding(&encoded, 1, longest)?;
        decoder.record_alignment();
        let mut rows: Vec<Vec<Vec<f32>>> = targets
            .iter()
            .map(|t| Vec::with_capacity(t.len()))
            .collect();
        let mut active: Vec<usize> = (0..targets.len()).collect();
        let mut tokens = vec![start; targets.len()];
        let mut step = 0;
        while !active.is_empty() {
            decoder.step(&tokens)?;
            let (weights, stride) = decoder.alignment()?;
            let mut keep = Vec::with_capacity(active.len());
            for (row, &pair) in active.iter().enumerate() {
                let len = sources[pair].len();
                rows[pair].push(weights[row * stride..row * stride + len].to_vec());
                if step + 1 < targets[pair].len() {
                    keep.push(row as u32);
                }
            }
            let next: Vec<usize> = keep.iter().map(|&r| active[r as usize]).collect();
            if next.len() != active.len() && !next.is_empty() {
                decoder.keep_sources(&keep)?;
            }
            active = next;
            tokens = active.iter().map(|&pair| targets[pair][step]).collect();
            step += 1;
        }
        Ok(rows)
    })
}

/// Hard alignment from soft weights, as Marian's `--alignment hard` and the Opus-MT server:
/// each row's target token goes to the source token it weighs most, the last source token
/// (`</s>`) excluded; the first one wins ties. Returns (source, target) pairs, one per row
/// (none for a source of `</s>` alone). Pass the rows of the tokens to align, usually all of
/// [`align`]'s rows but the one of the target's `</s>`.
pub fn hard_alignment(rows: &[Vec<f32>]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::with_capacity(rows.len());
    for (t, row) in rows.iter().enumerate() {
        let words = &row[..row.len().saturating_sub(1)];
        let mut best: Option<(usize, f32)> = None;
        for (s, &w) in words.iter().enumerate() {
            if best.is_none_or(|(_, b)| w > b) {
                best = Some((s, w));
            }
        }
        if let Some((s, _)) = best {
            pairs.push((s, t));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_alignment_skips_the_source_end_token_and_keeps_the_first_of_ties() {
        let rows = vec![
            vec![0.1, 0.7, 0.2],
            vec![0.2, 0.1, 0.7], // the source's </s> weighs most: the best word is 0
            vec![0.4, 0.4, 0.2],
        ];
        assert_eq!(hard_alignment(&rows), vec![(1, 0), (0, 1), (0, 2)]);
        // A source of </s> alone aligns nothing; no rows, nothing.
        assert!(hard_alignment(&[vec![1.0], vec![1.0]]).is_empty());
        assert!(hard_alignment(&[]).is_empty());
    }
}
