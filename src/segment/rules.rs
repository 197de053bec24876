//! The boundary rules: a single linear scan over the text that looks at each run of final
//! punctuation and decides, from the words around it, whether a sentence ends there.

use std::ops::Range;

use super::lexicon::{self, Abbrev};

/// How far ahead a parenthesis opened mid-sentence may close and still be treated as a
/// parenthetical remark. Bounding the look-ahead keeps the scan linear.
const MAX_PARENTHETICAL: usize = 300;

/// Splits one piece of text into trimmed sentence byte ranges.
pub(crate) fn split(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut sentences = Vec::new();
    let mut start = 0;
    // Terminators before this offset sit inside a parenthetical remark: never a boundary.
    let mut skip_until = 0;
    let mut closers = NextClosers::default();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' => {
                if i >= skip_until && !at_sentence_start(text, start, i) {
                    let close = closers.after(bytes, i);
                    if close - i <= MAX_PARENTHETICAL {
                        skip_until = close;
                    }
                }
                i += 1;
            }
            b'.' | b'!' | b'?' => {
                i = on_terminator(text, i, &mut start, skip_until, &mut sentences)
            }
            0xE2 if bytes[i..].starts_with("…".as_bytes()) => {
                i = on_terminator(text, i, &mut start, skip_until, &mut sentences)
            }
            _ => i += 1,
        }
    }
    push_trimmed(text, start..text.len(), &mut sentences);
    sentences
}

/// Handles the terminator at `i`; returns the offset where scanning resumes.
fn on_terminator(
    text: &str,
    i: usize,
    start: &mut usize,
    skip_until: usize,
    sentences: &mut Vec<Range<usize>>,
) -> usize {
    // Inside "www.site.fr", "3.5", "x@y.fr" or "?id=3" the punctuation touches the next word.
    if i < skip_until || next_char(text, i + char_len(text, i)).is_some_and(is_word_char) {
        return i + char_len(text, i);
    }
    let ending = scan_ending(text, i);
    if is_boundary(text, *start, i, &ending) {
        push_trimmed(text, *start..ending.end, sentences);
        *start = ending.end;
    }
    ending.end
}

/// The punctuation that would close a sentence: terminators, closing quotes and brackets.
struct Ending {
    /// Offset just after the last punctuation mark that belongs to the sentence.
    end: usize,
    /// True when the first run is a single "." (the abbreviation rules apply).
    single_dot: bool,
}

/// Consumes a run such as `?!`, `...`, `. »`, `! »).` or `. .` starting at `i`.
fn scan_ending(text: &str, i: usize) -> Ending {
    let mut end = i;
    let mut single_dot = None;
    loop {
        let run_start = end;
        while is_terminator_at(text, end) {
            end += char_len(text, end);
        }
        if single_dot.is_none() {
            single_dot = Some(&text[run_start..end] == ".");
        }
        // Guillemets may follow a (narrow) space; ASCII quotes and brackets must touch the
        // punctuation, otherwise they more likely open the next sentence.
        let after_space = skip_whitespace(text, end);
        match next_char(text, after_space) {
            Some(c @ ('»' | '”')) => end = after_space + c.len_utf8(),
            Some(c @ ('"' | '\'' | '’' | ')' | ']')) if after_space == end => end += c.len_utf8(),
            // A stray second dot (". .") belongs to the same ending.
            Some('.' | '!' | '?' | '…') if after_space > end => end = after_space,
            _ => break,
        }
    }
    Ending {
        end,
        single_dot: single_dot.unwrap_or(false),
    }
}

/// Decides whether the sentence ends with the punctuation run starting at `i`.
fn is_boundary(text: &str, start: usize, i: usize, ending: &Ending) -> bool {
    let next = skip_whitespace(text, ending.end);
    let Some(first) = next_char(text, next) else {
        return true;
    };
    // An incise or a continuation: "», a-t-il dit", "etc.)", "(...) ; la suite".
    if matches!(first, ',' | ';' | ':' | ')' | ']' | '}' | '»' | '”') {
        return false;
    }
    // "(...)" and "[…]" mark a cut inside a quotation, not the end of a sentence.
    if matches!(prev_char(text, i), Some('(' | '[')) {
        return false;
    }
    let word_start = skip_openers(text, next);
    let opened = word_start > next;
    let word = next_word(text, word_start);
    let Some(c) = word.chars().next().or_else(|| next_char(text, word_start)) else {
        return true;
    };
    if c.is_lowercase() {
        return false;
    }
    if !ending.single_dot {
        return true;
    }
    let upper = c.is_uppercase() || opened;
    let number = starts_with_number(word);
    let token = token_before(text, start, i);
    if token.is_empty() {
        return true;
    }
    if let Some(kind) = lexicon::abbreviation(token) {
        return abbreviation_ends(kind, upper, number);
    }
    if is_initials(token) {
        return false;
    }
    let last = token.rsplit(['-', '.']).next().unwrap_or(token);
    if let Some(kind) = lexicon::abbreviation(last).filter(|_| last.len() < token.len()) {
        return abbreviation_ends(kind, upper, number);
    }
    let mut chars = last.chars();
    match (chars.next(), chars.next()) {
        (Some(l), None) if l.is_uppercase() => initial_ends(text, start, i - last.len(), word),
        (Some(l), None) if l.is_lowercase() => !number,
        // "1. Le premier point", at the start of a line or of a sentence.
        _ if is_enumerator(last)
            && (at_line_start(text, i - token.len())
                || text[start..i - token.len()].trim().is_empty()) =>
        {
            false
        }
        _ => true,
    }
}

fn abbreviation_ends(kind: Abbrev, upper: bool, number: bool) -> bool {
    match kind {
        Abbrev::Always => false,
        Abbrev::NumericOnly => !number,
        Abbrev::MayEnd => upper && !number,
    }
}

/// A lone capital is an initial ("J. Dupont", "George W. Bush") unless a lower-case word
/// precedes it and a typical sentence opener follows ("le plan B. Il ...").
fn initial_ends(text: &str, start: usize, letter_at: usize, next: &str) -> bool {
    if !lexicon::is_starter(next) {
        return false;
    }
    let before = text[start..letter_at].trim_end();
    let prev_word = before
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("");
    prev_word.chars().next().is_some_and(char::is_lowercase)
        && !matches!(
            prev_word,
            "de" | "du" | "des" | "d'" | "d’" | "von" | "van" | "da" | "di" | "del"
        )
}

/// The word glued to the dot: letters, digits and the dots and hyphens inside "J.-C" or
/// "c.-à-d", stopping at spaces, quotes, apostrophes and brackets.
fn token_before(text: &str, start: usize, i: usize) -> &str {
    let head = &text[start..i];
    let from = head
        .char_indices()
        .rev()
        .take_while(|&(_, c)| c.is_alphanumeric() || matches!(c, '.' | '-' | '°'))
        .last()
        .map_or(head.len(), |(idx, _)| idx);
    head[from..].trim_start_matches(['-', '.'])
}

/// "J.-P", "U.S", "J.R.R": single letters joined by dots (an acronym or initials).
fn is_initials(token: &str) -> bool {
    token.contains('.')
        && token.split('.').all(|part| {
            let part = part.trim_start_matches('-');
            let mut chars = part.chars();
            matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic())
        })
}

/// "1", "12", "IV": the marker of an enumerated item ("1. Le premier point").
fn is_enumerator(word: &str) -> bool {
    (word.len() <= 3 && word.bytes().all(|b| b.is_ascii_digit())) || is_roman(word)
}

fn is_roman(word: &str) -> bool {
    !word.is_empty() && word.len() <= 6 && word.bytes().all(|b| b"IVXLCDM".contains(&b))
}

/// Digits, or a roman numeral ("chap. IV").
fn starts_with_number(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_digit()) || is_roman(word)
}

/// Whether only spaces separate `pos` from the start of its line.
fn at_line_start(text: &str, pos: usize) -> bool {
    let before =
        text[..pos].trim_end_matches(|c: char| c.is_whitespace() && c != '\n' && c != '\r');
    before.is_empty() || before.ends_with(['\n', '\r'])
}

/// Whether only spaces and opening quotes or dashes lie between the sentence start and
/// `pos`. Brackets and long runs do not count, so that the check stays cheap.
fn at_sentence_start(text: &str, start: usize, pos: usize) -> bool {
    text[start..pos].len() <= 64
        && text[start..pos]
            .chars()
            .all(|c| c.is_whitespace() || (is_opener(c) && c != '(' && c != '['))
}

/// The next ")" and "]" after a position, remembered so that a text full of brackets is
/// still scanned in linear time. Nesting is ignored: the first closer ends the remark.
#[derive(Default)]
struct NextClosers {
    paren: Option<usize>,
    bracket: Option<usize>,
}

impl NextClosers {
    /// The offset of the closer matching the opener at `open`, or `usize::MAX` if none.
    fn after(&mut self, bytes: &[u8], open: usize) -> usize {
        let (cached, closing) = if bytes[open] == b'(' {
            (&mut self.paren, b')')
        } else {
            (&mut self.bracket, b']')
        };
        match *cached {
            Some(pos) if pos > open => pos,
            _ => {
                let pos = bytes[open..]
                    .iter()
                    .position(|&b| b == closing)
                    .map_or(usize::MAX, |p| open + p);
                *cached = Some(pos);
                pos
            }
        }
    }
}

fn push_trimmed(text: &str, range: Range<usize>, sentences: &mut Vec<Range<usize>>) {
    let piece = &text[range.clone()];
    let trimmed = piece.trim_start();
    let begin = range.start + (piece.len() - trimmed.len());
    let end = begin + trimmed.trim_end().len();
    if end > begin {
        sentences.push(begin..end);
    }
}

fn is_terminator_at(text: &str, pos: usize) -> bool {
    matches!(next_char(text, pos), Some('.' | '!' | '?' | '…'))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '/' | '_')
}

/// Opening marks that may precede the first word of a sentence.
fn is_opener(c: char) -> bool {
    matches!(
        c,
        '«' | '“' | '"' | '‘' | '\'' | '(' | '[' | '—' | '–' | '-' | '¿' | '¡' | '„'
    )
}

fn skip_whitespace(text: &str, pos: usize) -> usize {
    let rest = &text[pos..];
    pos + (rest.len() - rest.trim_start().len())
}

fn skip_openers(text: &str, pos: usize) -> usize {
    let rest = &text[pos..];
    pos + (rest.len()
        - rest
            .trim_start_matches(|c: char| c.is_whitespace() || is_opener(c))
            .len())
}

/// The word starting at `pos`: letters, digits and apostrophes ("L'Etat", "2021").
fn next_word(text: &str, pos: usize) -> &str {
    let rest = &text[pos..];
    let len = rest
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map_or(rest.len(), |(idx, _)| idx);
    &rest[..len]
}

fn next_char(text: &str, pos: usize) -> Option<char> {
    text.get(pos..)?.chars().next()
}

fn prev_char(text: &str, pos: usize) -> Option<char> {
    text[..pos].chars().next_back()
}

fn char_len(text: &str, pos: usize) -> usize {
    next_char(text, pos).map_or(1, char::len_utf8)
}
