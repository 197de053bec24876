//! Splitting sentences too long for one model pass at clause boundaries.
//!
//! The model has a fixed number of positions and translates very long inputs badly; rather than
//! truncating (losing text) or failing, a long sentence is cut at the clause boundary nearest
//! its middle (`;`, `:`, `,`, dashes, closing brackets), then between words, and as a last
//! resort inside a word, until every part fits.

use std::ops::Range;

use anyhow::Result;

/// Punctuation after which a clause may end, best first.
const CLAUSE_ENDS: [&[char]; 3] = [&[';', ':'], &['—', '–', ')', ']', '»', '”'], &[',']];

/// Splits `text` into byte ranges whose token counts (by `count_tokens`) are at most `limit`.
/// The ranges are in order, trimmed of surrounding whitespace, and cover every non-space
/// character of `text`. `limit` must leave room for at least one character.
pub fn split_long_sentence(
    text: &str,
    limit: usize,
    count_tokens: &mut dyn FnMut(&str) -> Result<usize>,
) -> Result<Vec<Range<usize>>> {
    let mut parts = Vec::new();
    split_into(text, 0, limit, count_tokens, &mut parts)?;
    Ok(parts)
}

fn split_into(
    text: &str,
    offset: usize,
    limit: usize,
    count_tokens: &mut dyn FnMut(&str) -> Result<usize>,
    parts: &mut Vec<Range<usize>>,
) -> Result<()> {
    let start = text.len() - text.trim_start().len();
    let end = text.trim_end().len();
    if start >= end {
        return Ok(());
    }
    let piece = &text[start..end];
    let single_char = piece.chars().nth(1).is_none();
    if single_char || count_tokens(piece)? <= limit {
        parts.push(offset + start..offset + end);
        return Ok(());
    }
    let cut = best_cut(piece);
    split_into(&piece[..cut], offset + start, limit, count_tokens, parts)?;
    split_into(
        &piece[cut..],
        offset + start + cut,
        limit,
        count_tokens,
        parts,
    )
}

/// The byte offset at which to cut `piece` (never 0 nor `piece.len()`): after the clause
/// punctuation nearest the middle, else at the space nearest the middle, else at the char
/// boundary nearest the middle.
fn best_cut(piece: &str) -> usize {
    let middle = piece.len() / 2;
    let nearest = |cuts: &mut dyn Iterator<Item = usize>| {
        cuts.filter(|&c| c > 0 && c < piece.len())
            .min_by_key(|&c| c.abs_diff(middle))
    };
    for marks in CLAUSE_ENDS {
        // A cut right after the mark, where whitespace follows it.
        let mut cuts = piece.char_indices().filter_map(|(i, ch)| {
            let after = i + ch.len_utf8();
            let followed_by_space = piece[after..].starts_with(char::is_whitespace);
            (marks.contains(&ch) && followed_by_space).then_some(after)
        });
        if let Some(cut) = nearest(&mut cuts) {
            return cut;
        }
    }
    let mut spaces = piece
        .char_indices()
        .filter(|(_, ch)| ch.is_whitespace())
        .map(|(i, _)| i);
    if let Some(cut) = nearest(&mut spaces) {
        return cut;
    }
    let mut boundaries = piece.char_indices().map(|(i, _)| i);
    nearest(&mut boundaries).unwrap_or(piece.len() / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(s: &str) -> Result<usize> {
        Ok(s.split_whitespace().count() + s.chars().filter(|c| c.is_ascii_punctuation()).count())
    }

    #[test]
    fn short_sentence_is_one_part() {
        let text = "Une phrase courte.";
        assert_eq!(
            split_long_sentence(text, 10, &mut words).unwrap(),
            vec![0..text.len()]
        );
    }

    #[test]
    fn prefers_clause_boundaries() {
        let text =
            "Le président a parlé longuement ce matin ; les ministres ont écouté sans rien dire.";
        let parts = split_long_sentence(text, 10, &mut words).unwrap();
        let texts: Vec<&str> = parts.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(
            texts,
            vec![
                "Le président a parlé longuement ce matin ;",
                "les ministres ont écouté sans rien dire."
            ]
        );
    }

    #[test]
    fn splits_a_giant_word_without_losing_text() {
        let text = "é".repeat(100);
        let mut chars = |s: &str| Ok(s.chars().count());
        let parts = split_long_sentence(&text, 16, &mut chars).unwrap();
        let joined: String = parts.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(joined, text);
        assert!(parts.iter().all(|r| text[r.clone()].chars().count() <= 16));
    }

    proptest! {
        #[test]
        fn parts_fit_and_keep_every_character(text in "\\PC{0,300}", limit in 1usize..20) {
            let mut chars = |s: &str| Ok(s.chars().count());
            let parts = split_long_sentence(&text, limit, &mut chars).unwrap();
            let kept: String = parts.iter().map(|r| &text[r.clone()]).collect::<String>();
            let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            prop_assert_eq!(strip(&kept), strip(&text));
            for r in &parts {
                prop_assert!(text[r.clone()].chars().count() <= limit.max(1));
            }
        }
    }
}
