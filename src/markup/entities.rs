//! HTML character references: decoded for the model's input, escaped on the way out.
//!
//! Only what the model reads is decoded; what is kept from the source is never decoded nor
//! re-escaped, so it comes back byte for byte. The named references are HTML5's full list
//! (quick-xml's table).

use std::borrow::Cow;

/// Decodes the character references of raw HTML text (`&eacute;`, `&#233;`, `&#xE9;`).
/// Unknown or malformed references stay as written, as browsers leave them.
pub fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match reference(rest) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The reference at the start of `text` (which starts with `&`): what it stands for and
/// how many bytes it takes.
fn reference(text: &str) -> Option<(Cow<'static, str>, usize)> {
    let body = &text[1..];
    if let Some(number) = body.strip_prefix('#') {
        let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (number, 10, 1),
        };
        let len = digits
            .bytes()
            .take_while(|b| (*b as char).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let value = u32::from_str_radix(&digits[..len.min(8)], radix).unwrap_or(u32::MAX);
        let c = if len > 8 { '\u{FFFD}' } else { numeric(value) };
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some((Cow::Owned(c.to_string()), 1 + prefix + len + semicolon));
    }
    let len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let resolved = quick_xml::escape::resolve_html5_entity(name)?;
    let semicolon = usize::from(body[len..].starts_with(';'));
    Some((Cow::Borrowed(resolved), 1 + len + semicolon))
}

/// A numeric reference's character, as HTML5 maps it (C1 controls read as windows-1252,
/// what no character can be becomes U+FFFD).
fn numeric(value: u32) -> char {
    const WINDOWS_1252: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    let value = match value {
        0x80..=0x9F => u32::from(WINDOWS_1252[(value - 0x80) as usize]),
        0 => 0xFFFD,
        v => v,
    };
    char::from_u32(value).unwrap_or('\u{FFFD}')
}

/// Escapes text for an HTML text node: `&`, `<` and `>`.
pub fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Escapes text for an attribute value between `quote`s.
pub fn escape_attribute(text: &str, quote: char, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_decode_and_odd_ones_stay() {
        assert_eq!(
            decode("caf&eacute; &amp; th&#233; &#xE9;t&#xe9;"),
            "café & thé été"
        );
        assert_eq!(decode("&lt;script&gt;"), "<script>");
        assert_eq!(
            decode("AT&T &unknown; & &#; &#x;"),
            "AT&T &unknown; & &#; &#x;"
        );
        assert_eq!(decode("&#150;&#0;&#99999999999;"), "–\u{FFFD}\u{FFFD}");
        assert_eq!(decode("&nbsp"), "\u{a0}");
    }

    #[test]
    fn escaping_is_done_once() {
        let mut out = String::new();
        escape_text("<script>&amp;", &mut out);
        assert_eq!(out, "&lt;script&gt;&amp;amp;");
        let mut out = String::new();
        escape_attribute("l'\"a\"", '"', &mut out);
        assert_eq!(out, "l'&quot;a&quot;");
    }
}
