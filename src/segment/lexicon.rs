//! Word lists that drive the segmentation rules, loaded once from the data files.

use std::collections::HashMap;
use std::sync::OnceLock;

/// How a known abbreviation behaves before a following word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abbrev {
    /// Never ends a sentence ("M.", "Mme.", "cf.").
    Always,
    /// Does not end a sentence when a number follows ("p. 12", "le 7 déc. 2021").
    NumericOnly,
    /// Ends a sentence when an upper-case word follows ("etc.", "J.-C.").
    MayEnd,
}

struct Lexicon {
    abbreviations: HashMap<&'static str, Abbrev>,
    starters: HashMap<&'static str, ()>,
}

fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| Lexicon {
        abbreviations: data_lines(include_str!("abbreviations.txt"))
            .map(|line| match line.split_once(' ') {
                Some((word, marker)) => {
                    let kind = match marker.trim() {
                        "#NUMERIC_ONLY#" => Abbrev::NumericOnly,
                        "#MAY_END#" => Abbrev::MayEnd,
                        _ => Abbrev::Always,
                    };
                    (word, kind)
                }
                None => (line, Abbrev::Always),
            })
            .collect(),
        starters: data_lines(include_str!("starters.txt"))
            .map(|w| (w, ()))
            .collect(),
    })
}

/// Non-empty, non-comment lines of a data file.
fn data_lines(data: &'static str) -> impl Iterator<Item = &'static str> {
    data.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Looks up an abbreviation written without its final dot. A capitalised word also matches
/// its lower-case entry, because any abbreviation may open a sentence ("Cf. ...").
pub(crate) fn abbreviation(word: &str) -> Option<Abbrev> {
    let abbreviations = &lexicon().abbreviations;
    if let Some(kind) = abbreviations.get(word) {
        return Some(*kind);
    }
    let mut chars = word.chars();
    let first = chars.next()?;
    if first.is_uppercase() {
        let lowered: String = first.to_lowercase().chain(chars).collect();
        return abbreviations.get(lowered.as_str()).copied();
    }
    None
}

/// Whether `word` is a frequent sentence-initial word ("Il", "Le", "L'").
pub(crate) fn is_starter(word: &str) -> bool {
    let starters = &lexicon().starters;
    if starters.contains_key(word) {
        return true;
    }
    // "L'Etat" counts as "L'": look at the elided article alone.
    match word.find('\'') {
        Some(pos) => starters.contains_key(&word[..=pos]),
        None => false,
    }
}
