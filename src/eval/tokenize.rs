//! The tokenizers of sacreBLEU 2.6.0 (Apache-2.0) that traduire's metrics need, ported for exact
//! parity: BLEU's `none`, `13a`, `intl` and `char`, and TER's tercom normalisation with its
//! default options. Also the few Python string primitives (`str.split()`, `str.rstrip()`,
//! `str.lower()`) whose Unicode behaviour every metric depends on.

use std::sync::OnceLock;

use regex::Regex;

/// Python's `str.isspace()`, the whitespace of `str.split()` and `str.rstrip()`: Unicode
/// `White_Space` (Rust's `char::is_whitespace`) plus U+001C..U+001F, the information
/// separators, which Python also counts as whitespace (bidirectional class B or S).
pub fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `line.split()` with no argument: runs of whitespace separate words, and no word
/// is empty.
pub fn py_split(line: &str) -> impl Iterator<Item = &str> {
    line.split(is_py_whitespace).filter(|w| !w.is_empty())
}

/// Python's `line.rstrip()` with no argument.
pub fn py_rstrip(line: &str) -> &str {
    line.trim_end_matches(is_py_whitespace)
}

/// Python's `' '.join(line.split())`: single spaces between words, none at the ends.
pub fn py_normalize_spaces(line: &str) -> String {
    py_split(line).collect::<Vec<_>>().join(" ")
}

/// Python's `str.lower()`: the full Unicode lowercase mapping with the special cases (final
/// sigma, `İ` to `i̇`), which Rust's `str::to_lowercase` implements the same way.
///
/// Python 3.11 (which recorded the fixture) knows Unicode 14.0; characters that only got a
/// lowercase mapping in later Unicode versions are left unchanged, as Python leaves them.
pub fn py_lower(line: &str) -> String {
    if !line.chars().any(lowercase_added_after_unicode_14) {
        return line.to_lowercase();
    }
    let mut out = String::with_capacity(line.len());
    let mut chunk_start = 0;
    for (i, c) in line.char_indices() {
        if lowercase_added_after_unicode_14(c) {
            out.push_str(&line[chunk_start..i].to_lowercase());
            out.push(c);
            chunk_start = i + c.len_utf8();
        }
    }
    out.push_str(&line[chunk_start..].to_lowercase());
    out
}

/// Uppercase letters whose lowercase mapping Unicode added after version 14.0 (the Unicode
/// of Python 3.11's `str.lower`): Latin Extended-D additions of Unicode 16, Cyrillic TJE, and
/// the Garay capitals. (Final sigma is unaffected: these are not sigma's case context.)
fn lowercase_added_after_unicode_14(c: char) -> bool {
    matches!(c,
        '\u{1C89}' | '\u{A7CB}' | '\u{A7CC}' | '\u{A7CE}' | '\u{A7D2}' | '\u{A7D4}'
        | '\u{A7DA}' | '\u{A7DC}' | '\u{10D50}'..='\u{10D65}' | '\u{16EA0}'..='\u{16EB8}')
}

/// The BLEU tokenizers traduire supports (sacreBLEU's `--tokenize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BleuTokenizer {
    /// `none`: the line as it is (sacreBLEU `NoneTokenizer`).
    None,
    /// `13a`: mteval-v13a.pl, sacreBLEU's default (`Tokenizer13a`).
    #[default]
    Thirteen,
    /// `intl`: mteval-v14.pl's international tokenization (`TokenizerV14International`).
    Intl,
    /// `char`: every character a token (`TokenizerChar`).
    Char,
}

impl BleuTokenizer {
    /// sacreBLEU's name of the tokenizer, as in the signature's `tok:` field.
    pub fn name(&self) -> &'static str {
        match self {
            BleuTokenizer::None => "none",
            BleuTokenizer::Thirteen => "13a",
            BleuTokenizer::Intl => "intl",
            BleuTokenizer::Char => "char",
        }
    }

    /// The tokenizer of a sacreBLEU name (`none`, `13a`, `intl`, `char`).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "none" => Ok(BleuTokenizer::None),
            "13a" => Ok(BleuTokenizer::Thirteen),
            "intl" => Ok(BleuTokenizer::Intl),
            "char" => Ok(BleuTokenizer::Char),
            "zh" | "ja-mecab" | "ko-mecab" | "spm" | "flores101" | "flores200" | "spBLEU-1K" => {
                Err(format!(
                    "the BLEU tokenizer {name:?} is not supported (sacreBLEU's zh, ja-mecab, \
                     ko-mecab, spm, flores101, flores200 and spBLEU-1K need dictionaries or \
                     models); supported: none, 13a, intl, char"
                ))
            }
            _ => Err(format!(
                "unknown BLEU tokenizer {name:?}; supported: none, 13a, intl, char \
                 (zh, ja-mecab, ko-mecab, flores101 and flores200 are not supported)"
            )),
        }
    }

    /// Tokenizes one line as sacreBLEU does (its tokenizer's `__call__`); the result's tokens
    /// are what `str.split()` finds in it.
    pub fn tokenize(&self, line: &str) -> String {
        match self {
            BleuTokenizer::None => line.to_string(),
            BleuTokenizer::Thirteen => tokenize_13a(line),
            BleuTokenizer::Intl => tokenize_intl(line),
            BleuTokenizer::Char => tokenize_char(line),
        }
    }
}

/// Compiles one of the fixed patterns below once per process.
fn cached(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    // The patterns are constants covered by the tests, so compilation cannot fail at run time.
    cell.get_or_init(|| Regex::new(pattern).expect("constant tokenizer pattern"))
}

/// sacreBLEU `Tokenizer13a.__call__`: mteval-v13a's language-independent part, then
/// `TokenizerRegexp` on the line padded with a space on each side.
fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        // In this order, as sacreBLEU: "&amp;quot;" becomes "&quot;", not '"'.
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    tokenize_regexp(&format!(" {line} "))
}

/// sacreBLEU `TokenizerRegexp.__call__` (the Western part of mteval-v13a), its four `re.sub`
/// steps in order, then `' '.join(line.split())`.
fn tokenize_regexp(line: &str) -> String {
    static PERIOD_COMMA_AFTER_NON_DIGIT: OnceLock<Regex> = OnceLock::new();
    static PERIOD_COMMA_BEFORE_NON_DIGIT: OnceLock<Regex> = OnceLock::new();
    static DASH_AFTER_DIGIT: OnceLock<Regex> = OnceLock::new();

    // Step 1, `([\{-\~\[-\` -\&\(-\+\:-\@\/])` -> ` \1 `: a one-character class, so a plain
    // character map does the same as the regex.
    let mut spaced = String::with_capacity(line.len() * 2);
    for c in line.chars() {
        if matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/') {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    // Steps 2 to 4: Python's `re` and the regex crate both replace leftmost non-overlapping
    // matches, and `[^0-9]` matches any other character, newlines included, in both.
    let re = cached(&PERIOD_COMMA_AFTER_NON_DIGIT, r"([^0-9])([\.,])");
    let step2 = re.replace_all(&spaced, "${1} ${2} ");
    let re = cached(&PERIOD_COMMA_BEFORE_NON_DIGIT, r"([\.,])([^0-9])");
    let step3 = re.replace_all(&step2, " ${1} ${2}");
    let re = cached(&DASH_AFTER_DIGIT, r"([0-9])(-)");
    let step4 = re.replace_all(&step3, "${1} ${2} ");
    py_normalize_spaces(&step4)
}

/// sacreBLEU `TokenizerV14International.__call__`: punctuation (`\p{P}`) is split off unless
/// it sits between digits on the relevant side, symbols (`\p{S}`) always are.
fn tokenize_intl(line: &str) -> String {
    static PUNCT_AFTER_NON_NUMBER: OnceLock<Regex> = OnceLock::new();
    static PUNCT_BEFORE_NON_NUMBER: OnceLock<Regex> = OnceLock::new();
    static SYMBOL: OnceLock<Regex> = OnceLock::new();

    let re = cached(&PUNCT_AFTER_NON_NUMBER, r"(\P{N})(\p{P})");
    let step1 = re.replace_all(line, "${1} ${2} ");
    let re = cached(&PUNCT_BEFORE_NON_NUMBER, r"(\p{P})(\P{N})");
    let step2 = re.replace_all(&step1, " ${1} ${2}");
    let re = cached(&SYMBOL, r"(\p{S})");
    let step3 = re.replace_all(&step2, " ${1} ");
    py_normalize_spaces(&step3)
}

/// sacreBLEU `TokenizerChar.__call__`: `" ".join(line)`, every code point (whitespace too)
/// separated by a space.
fn tokenize_char(line: &str) -> String {
    let mut out = String::with_capacity(line.len() * 2);
    for (i, c) in line.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// sacreBLEU `TercomTokenizer.__call__` with its defaults (`normalized=False`,
/// `no_punct=False`, `asian_support=False`, `case_sensitive=False`): lowercase, then single
/// spaces between words.
pub fn tokenize_tercom(line: &str) -> String {
    if line.is_empty() {
        return String::new();
    }
    py_normalize_spaces(&py_lower(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_information_separators() {
        assert_eq!(
            py_split("a\u{1c}b\u{1f}c\u{85}d\u{a0}e\u{200b}f").collect::<Vec<_>>(),
            ["a", "b", "c", "d", "e\u{200b}f"]
        );
        assert_eq!(py_rstrip("x \t\u{1e}\u{3000}"), "x");
        assert_eq!(py_split("  ").count(), 0);
    }

    #[test]
    fn lowercase_as_python() {
        assert_eq!(py_lower("ΟΔΟΣ ΣΑΣ."), "οδος σας.");
        assert_eq!(py_lower("İ"), "i\u{307}");
        // Unicode 16's capital TJE has no lowercase in Python 3.11.
        assert_eq!(py_lower("A\u{1C89}B"), "a\u{1C89}b");
    }

    #[test]
    fn names_round_trip_and_errors_are_clear() {
        for tok in [
            BleuTokenizer::None,
            BleuTokenizer::Thirteen,
            BleuTokenizer::Intl,
            BleuTokenizer::Char,
        ] {
            assert_eq!(BleuTokenizer::parse(tok.name()), Ok(tok));
        }
        let err = BleuTokenizer::parse("ja-mecab").unwrap_err();
        assert!(
            err.contains("not supported") && err.contains("13a"),
            "{err}"
        );
        let err = BleuTokenizer::parse("foo").unwrap_err();
        assert!(err.contains("flores200") && err.contains("intl"), "{err}");
    }

    #[test]
    fn thirteen_a() {
        let tok = BleuTokenizer::Thirteen;
        assert_eq!(
            tok.tokenize("Hello, world! It's 3.5 or 1,000 (2-3)."),
            "Hello , world ! It's 3.5 or 1,000 ( 2 - 3 ) ."
        );
        assert_eq!(tok.tokenize("&amp;quot; &lt;b&gt;"), "& quot ; < b >");
        assert_eq!(tok.tokenize("end-\nof <skipped>line"), "endof line");
        assert_eq!(tok.tokenize(""), "");
    }

    #[test]
    fn intl() {
        let tok = BleuTokenizer::Intl;
        assert_eq!(
            tok.tokenize("Price: $3.50, in 2021. «Oui»"),
            "Price : $ 3.50 , in 2021 . « Oui »"
        );
    }

    #[test]
    fn char_and_none() {
        assert_eq!(BleuTokenizer::Char.tokenize("ab c"), "a b   c");
        assert_eq!(BleuTokenizer::None.tokenize(" a  b "), " a  b ");
    }

    #[test]
    fn tercom() {
        assert_eq!(tokenize_tercom("  Hello,  WORLD\t!"), "hello, world !");
        assert_eq!(tokenize_tercom(""), "");
    }
}
