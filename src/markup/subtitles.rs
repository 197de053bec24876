//! Subtitles (SubRip `.srt` and WebVTT `.vtt`): sentences that run over several cues are
//! translated once, then spread over the same cues again.
//!
//! - **Sentences**: a cue whose text does not end a sentence (no `.`, `!`, `?` or `…` at its
//!   end) merges with the next one when the next starts less than a second after it ends (at
//!   most [`MAX_MERGED`] cues). The merged text is segmented and translated like a paragraph.
//! - **Back into the cues**: each cue is an element of the merged text, kept in source order
//!   by the projection, so each gets the English words aligned with its French words: the cut
//!   between two cues is where the alignment crosses their boundary (without an alignment, by
//!   length). Inline styling (`<i>`, `<b>`, `<u>`, `<font>`, WebVTT's `<c>`, `<v>`, ...) is
//!   projected inside its cue; a leading `{\an8}` stays at the start of its cue.
//! - **Kept**: every cue's number or identifier, timings and WebVTT settings, the `WEBVTT`
//!   header, `NOTE`, `STYLE` and `REGION` blocks, and blank lines, byte for byte.
//! - **Lines**: at most 2 lines of at most [`MAX_LINE`] characters per cue, where the text
//!   allows (a longer text gets 2 balanced lines); dialogue cues keep one line per speaker.
//!   No cue is left empty.
//!
//! A timing line that does not parse is an error naming its line.

use std::ops::Range;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use regex::Regex;

use super::block::{has_letters, per_block, Block};
use super::entities;
use super::projection::{project, Element, Order, Placed};
use crate::document::ParagraphKind;
use crate::translator::Translation;

/// The most cues merged into one sentence run.
pub const MAX_MERGED: usize = 6;
/// Characters per subtitle line.
pub const MAX_LINE: usize = 42;
/// Cues this close (in milliseconds) may continue each other's sentence.
const MERGE_GAP_MS: i64 = 1000;

/// Which subtitle format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SubRip.
    Srt,
    /// WebVTT.
    Vtt,
}

/// A parsed subtitle file.
#[derive(Debug, Clone)]
pub struct Subtitles {
    kind: Kind,
    source: String,
    newline: &'static str,
    cues: Vec<Cue>,
    blocks: Vec<Block>,
    /// The cues (indices into `cues`) of each block.
    groups: Vec<Range<usize>>,
}

#[derive(Debug, Clone)]
struct Cue {
    /// The bytes of its text lines.
    text: Range<usize>,
    start_ms: i64,
    end_ms: i64,
    /// A leading `{\an8}`-style override, written first again.
    prefix: String,
    /// Its plain text and inline styling.
    plain: String,
    elements: Vec<Element<Style>>,
    /// Every line a speaker's (`- Oui.` / `- Non.`).
    dialogue: bool,
}

/// Inline styling: its start tag and end tag as written (the end empty where the source
/// leaves it out, as WebVTT's `<v Name>` often is).
#[derive(Debug, Clone)]
enum Style {
    Cue(usize),
    Tag { open: String, close: String },
    Kept(String),
}

fn srt_timing() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})(\s.*)?$")
            .expect("a valid regex")
    })
}

fn vtt_timing() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})[ \t]+-->[ \t]+(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})([ \t].*)?$")
            .expect("a valid regex")
    })
}

/// Lines of `text` as byte ranges without their terminators.
fn lines(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            out.push(start..i);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(start..bytes.len());
    }
    out
}

impl Subtitles {
    /// Parses an SRT or WebVTT file.
    pub fn parse(source: String, kind: Kind) -> Result<Self> {
        let newline = if source.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let all = lines(&source);
        let blank = |r: &Range<usize>| source[r.clone()].trim().is_empty();
        // Blocks of non-blank lines.
        let mut chunks: Vec<Range<usize>> = Vec::new();
        let mut i = 0;
        while i < all.len() {
            if blank(&all[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < all.len() && !blank(&all[i]) {
                i += 1;
            }
            chunks.push(start..i);
        }
        let mut cues = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            let first = &source[all[chunk.start].clone()];
            if kind == Kind::Vtt && n == 0 {
                if !first.trim_start_matches('\u{feff}').starts_with("WEBVTT") {
                    bail!("line {}: a WebVTT file starts with WEBVTT", chunk.start + 1);
                }
                continue;
            }
            if kind == Kind::Vtt
                && ["NOTE", "STYLE", "REGION"].iter().any(|w| {
                    first == *w
                        || first.starts_with(&format!("{w} "))
                        || first.starts_with(&format!("{w}\t"))
                })
            {
                continue;
            }
            // The timing line: the first or the second of the block.
            let timing_line = (chunk.start..chunk.end.min(chunk.start + 2))
                .find(|&l| source[all[l].clone()].contains("-->"));
            let Some(timing_line) = timing_line else {
                bail!(
                    "line {}: expected a cue timing line (start --> end), found {:?}",
                    chunk.start + 1,
                    preview(first)
                );
            };
            let timing = source[all[timing_line].clone()].trim_end();
            let re = match kind {
                Kind::Srt => srt_timing(),
                Kind::Vtt => vtt_timing(),
            };
            let Some(caps) = re.captures(timing) else {
                bail!(
                    "line {}: broken timestamp {:?}",
                    timing_line + 1,
                    preview(timing)
                );
            };
            let ms = |base: usize| -> i64 {
                let get = |i: usize| {
                    caps.get(base + i)
                        .map_or(0, |m| m.as_str().parse::<i64>().unwrap_or(i64::MAX / 4))
                };
                let frac = caps.get(base + 3).map_or(0, |m| {
                    let digits = m.as_str();
                    digits.parse::<i64>().unwrap_or(0) * 10i64.pow(3 - digits.len().min(3) as u32)
                });
                get(0)
                    .saturating_mul(3_600_000)
                    .saturating_add(get(1).saturating_mul(60_000))
                    .saturating_add(get(2).saturating_mul(1000))
                    .saturating_add(frac)
            };
            if (timing_line + 1..chunk.end).is_empty() {
                continue; // a cue without text: nothing to translate, kept as it is
            }
            let text = all[timing_line + 1].start..all[chunk.end - 1].end;
            let raw_lines: Vec<&str> = (timing_line + 1..chunk.end)
                .map(|l| &source[all[l].clone()])
                .collect();
            cues.push(Cue::new(kind, text, ms(1), ms(5), &raw_lines));
        }
        let mut groups: Vec<Range<usize>> = Vec::new();
        for (index, cue) in cues.iter().enumerate() {
            let continues = groups.last().is_some_and(|group| {
                let previous = &cues[index - 1];
                group.end == index
                    && group.len() < MAX_MERGED
                    && !ends_sentence(&previous.plain)
                    && cue.start_ms - previous.end_ms < MERGE_GAP_MS
            });
            match groups.last_mut() {
                Some(group) if continues => group.end = index + 1,
                _ => groups.push(index..index + 1),
            }
        }
        let blocks = groups
            .iter()
            .map(|group| {
                let text: Vec<&str> = cues[group.clone()]
                    .iter()
                    .map(|c| c.plain.as_str())
                    .collect();
                let text = text.join(" ");
                if has_letters(&text) {
                    Block::new(ParagraphKind::Paragraph, text)
                } else {
                    Block::single(ParagraphKind::Paragraph, String::new())
                }
            })
            .collect();
        Ok(Subtitles {
            kind,
            source,
            newline,
            cues,
            blocks,
            groups,
        })
    }

    /// SRT or WebVTT.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The blocks to translate: one per run of merged cues.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The file with each cue's text replaced by its part of the translation.
    pub fn render(&self, translations: &[Translation]) -> String {
        let per = per_block(&self.blocks, translations);
        let mut splices: Vec<(Range<usize>, String)> = Vec::new();
        for ((block, group), translated) in self.blocks.iter().zip(&self.groups).zip(per) {
            if block.sentences.is_empty() {
                continue;
            }
            let cues = &self.cues[group.clone()];
            // The group's text with one top-level element per cue.
            let mut elements = Vec::with_capacity(cues.len());
            let mut offset = 0;
            for (i, cue) in cues.iter().enumerate() {
                elements.push(Element {
                    range: offset..offset + cue.plain.len(),
                    void: false,
                    children: shifted(&cue.elements, offset),
                    data: Style::Cue(i),
                });
                offset += cue.plain.len() + 1;
            }
            let projection = project(
                &block.text,
                &block.pairs(translated),
                &elements,
                Order::Source,
            );
            let target = &projection.target;
            // Cut points: each cue from where its words start to where the next cue's start.
            let mut cuts: Vec<usize> = projection
                .placed
                .iter()
                .map(|p| p.range.start.min(target.len()))
                .collect();
            if let Some(first) = cuts.first_mut() {
                *first = 0;
            }
            for i in 1..cuts.len() {
                cuts[i] = cuts[i].max(cuts[i - 1]);
            }
            for (i, placed) in projection.placed.iter().enumerate() {
                let Style::Cue(c) = placed.element.data else {
                    continue;
                };
                let cut = cuts[i]..cuts.get(i + 1).copied().unwrap_or(target.len());
                let cue = &cues[c];
                let mut text = self.weave_cue(target, &cut, &placed.children);
                if text.trim().is_empty() {
                    // The translation had fewer words than cues: never an empty cue.
                    text = "…".to_string();
                }
                let wrapped = wrap(text.trim(), cue.dialogue);
                let mut out = cue.prefix.clone();
                out.push_str(&wrapped.join(self.newline));
                splices.push((cue.text.clone(), out));
            }
        }
        splices.sort_by_key(|(r, _)| r.start);
        let mut out = String::with_capacity(self.source.len() + self.source.len() / 4);
        let mut cursor = 0;
        for (range, text) in splices {
            if range.start < cursor {
                continue;
            }
            out.push_str(&self.source[cursor..range.start]);
            out.push_str(&text);
            cursor = range.end;
        }
        out.push_str(&self.source[cursor..]);
        out
    }

    /// The part `cut` of the translation with the styling placed inside it.
    fn weave_cue(&self, target: &str, cut: &Range<usize>, placed: &[Placed<'_, Style>]) -> String {
        let mut out = String::new();
        let mut cursor = cut.start;
        self.weave_into(target, cut, placed, &mut cursor, &mut out);
        self.escape(target.get(cursor..cut.end).unwrap_or(""), &mut out);
        out
    }

    fn weave_into(
        &self,
        target: &str,
        cut: &Range<usize>,
        placed: &[Placed<'_, Style>],
        cursor: &mut usize,
        out: &mut String,
    ) {
        for node in placed {
            let start = node.range.start.clamp(*cursor, cut.end);
            self.escape(target.get(*cursor..start).unwrap_or(""), out);
            *cursor = start;
            match &node.element.data {
                Style::Tag { open, close } => {
                    out.push_str(open);
                    self.weave_into(target, cut, &node.children, cursor, out);
                    let end = node.range.end.clamp(*cursor, cut.end);
                    self.escape(target.get(*cursor..end).unwrap_or(""), out);
                    *cursor = end;
                    out.push_str(close);
                }
                Style::Kept(text) => out.push_str(text),
                Style::Cue(_) => {}
            }
        }
    }

    fn escape(&self, text: &str, out: &mut String) {
        match self.kind {
            Kind::Vtt => entities::escape_text(text, out),
            Kind::Srt => out.push_str(text),
        }
    }
}

impl Cue {
    fn new(kind: Kind, text: Range<usize>, start_ms: i64, end_ms: i64, raw_lines: &[&str]) -> Self {
        let dialogue =
            raw_lines.len() >= 2 && raw_lines.iter().all(|l| l.trim_start().starts_with('-'));
        let mut joined = raw_lines.join("\n");
        let mut prefix = String::new();
        // A leading override (`{\an8}`) places the whole cue.
        while joined.starts_with("{\\") {
            let Some(end) = joined.find('}') else { break };
            prefix.push_str(&joined[..=end]);
            joined = joined[end + 1..].to_string();
        }
        let (plain, elements) = styled(&joined, kind);
        Cue {
            text,
            start_ms,
            end_ms,
            prefix,
            plain,
            elements,
            dialogue,
        }
    }
}

/// A cue's text without its styling, and the styling as elements over it.
fn styled(raw: &str, kind: Kind) -> (String, Vec<Element<Style>>) {
    struct Open {
        name: String,
        open: String,
        start: usize,
        children: Vec<Element<Style>>,
    }
    let mut plain = String::new();
    let mut top: Vec<Element<Style>> = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let push = |stack: &mut Vec<Open>, top: &mut Vec<Element<Style>>, e: Element<Style>| match stack
        .last_mut()
    {
        Some(open) => open.children.push(e),
        None => top.push(e),
    };
    let mut rest = raw;
    let mut text = String::new();
    let flush_text = |text: &mut String, plain: &mut String| {
        let decoded = match kind {
            Kind::Vtt => entities::decode(text).into_owned(),
            Kind::Srt => text.clone(),
        };
        for c in decoded.chars() {
            if c.is_whitespace() {
                if !plain.is_empty() && !plain.ends_with(' ') {
                    plain.push(' ');
                }
            } else {
                plain.push(c);
            }
        }
        text.clear();
    };
    while let Some(c) = rest.chars().next() {
        let markup_end = match c {
            '<' => rest.find('>').map(|e| e + 1),
            '{' if rest.starts_with("{\\") => rest.find('}').map(|e| e + 1),
            _ => None,
        };
        let Some(end) = markup_end else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        flush_text(&mut text, &mut plain);
        let markup = &rest[..end];
        rest = &rest[end..];
        if let Some(name) = markup.strip_prefix("</") {
            let name = tag_name(name);
            if let Some(depth) = stack.iter().rposition(|o| o.name == name) {
                while stack.len() > depth {
                    let open = stack.pop().expect("depth is inside the stack");
                    let close = if stack.len() == depth {
                        markup.to_string()
                    } else {
                        String::new()
                    };
                    let element = Element {
                        range: open.start..plain.len(),
                        void: false,
                        children: open.children,
                        data: Style::Tag {
                            open: open.open,
                            close,
                        },
                    };
                    push(&mut stack, &mut top, element);
                }
                continue;
            }
            // A stray end tag: kept where it was.
        } else if markup.starts_with('<')
            && markup[1..].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            stack.push(Open {
                name: tag_name(&markup[1..]),
                open: markup.to_string(),
                start: plain.len(),
                children: Vec::new(),
            });
            continue;
        }
        let at = plain.len();
        push(
            &mut stack,
            &mut top,
            Element {
                range: at..at,
                void: true,
                children: Vec::new(),
                data: Style::Kept(markup.to_string()),
            },
        );
    }
    flush_text(&mut text, &mut plain);
    // Tags left open (WebVTT's `<v Name>`) close at the end, writing no end tag.
    while let Some(open) = stack.pop() {
        let element = Element {
            range: open.start..plain.len(),
            void: false,
            children: open.children,
            data: Style::Tag {
                open: open.open,
                close: String::new(),
            },
        };
        push(&mut stack, &mut top, element);
    }
    // Trailing space from collapsing: elements must stay inside the text.
    while plain.ends_with(' ') {
        plain.pop();
    }
    clamp(&mut top, plain.len());
    (plain, top)
}

fn clamp(elements: &mut [Element<Style>], len: usize) {
    for e in elements {
        e.range = e.range.start.min(len)..e.range.end.min(len);
        clamp(&mut e.children, len);
    }
}

fn tag_name(after_bracket: &str) -> String {
    after_bracket
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn shifted(elements: &[Element<Style>], offset: usize) -> Vec<Element<Style>> {
    elements
        .iter()
        .map(|e| Element {
            range: e.range.start + offset..e.range.end + offset,
            void: e.void,
            children: shifted(&e.children, offset),
            data: e.data.clone(),
        })
        .collect()
}

/// Whether a cue's text ends a sentence.
fn ends_sentence(text: &str) -> bool {
    let core = text.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '»' | '"' | '”' | '\'' | '’' | ')' | ']' | '♪')
    });
    core.is_empty() || core.ends_with(['.', '!', '?', '…'])
}

/// The number of characters a viewer sees (tags and overrides excluded).
fn visible_len(text: &str) -> usize {
    let mut n = 0;
    let mut in_tag: Option<char> = None;
    for c in text.chars() {
        match (in_tag, c) {
            (None, '<') => in_tag = Some('>'),
            (None, '{') => in_tag = Some('}'),
            (Some(end), c) if c == end => in_tag = None,
            (Some(_), _) => {}
            (None, _) => n += 1,
        }
    }
    n
}

/// Spaces of `text` outside tags, where a line may break.
fn break_points(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_tag: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (in_tag, c) {
            (None, '<') => in_tag = Some('>'),
            (None, '{') => in_tag = Some('}'),
            (Some(end), c) if c == end => in_tag = None,
            (None, ' ') => out.push(i),
            _ => {}
        }
    }
    out
}

/// A cue's text in lines: one if it fits in [`MAX_LINE`], else two balanced lines (a
/// dialogue: one line per speaker).
pub fn wrap(text: &str, dialogue: bool) -> Vec<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let points = break_points(&text);
    if dialogue {
        let speakers: Vec<usize> = points
            .iter()
            .copied()
            .filter(|&p| text[p + 1..].starts_with('-') && p > 0)
            .collect();
        if !speakers.is_empty() {
            let mut lines = Vec::new();
            let mut start = 0;
            for p in speakers {
                lines.push(text[start..p].to_string());
                start = p + 1;
            }
            lines.push(text[start..].to_string());
            return lines;
        }
    }
    if visible_len(&text) <= MAX_LINE || points.is_empty() {
        return vec![text];
    }
    let best = points
        .iter()
        .copied()
        .min_by_key(|&p| {
            let (a, b) = (visible_len(&text[..p]), visible_len(&text[p + 1..]));
            (a.max(b), b < a)
        })
        .expect("points is not empty");
    vec![text[..best].to_string(), text[best + 1..].to_string()]
}

fn preview(line: &str) -> String {
    line.chars().take(60).collect()
}

/// True when `text` looks like WebVTT.
pub fn looks_like_vtt(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').starts_with("WEBVTT")
}

/// True when `text` looks like SubRip: a number line, then a timing line.
pub fn looks_like_srt(text: &str) -> bool {
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.trim().is_empty());
    let (Some(number), Some(timing)) = (lines.next(), lines.next()) else {
        return false;
    };
    number.trim().bytes().all(|b| b.is_ascii_digit()) && srt_timing().is_match(timing.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Flags;

    fn upper(sentence: &str) -> Translation {
        Translation {
            text: sentence.to_uppercase(),
            score: 0.0,
            source_tokens: 1,
            target_tokens: 1,
            flags: Flags::NONE,
            alternatives: Vec::new(),
            alignment: None,
        }
    }

    fn round_trip(source: &str, kind: Kind) -> (Vec<String>, String) {
        let subs = Subtitles::parse(source.to_string(), kind).unwrap();
        let sentences: Vec<String> = super::super::block::sentences(subs.blocks())
            .into_iter()
            .map(str::to_string)
            .collect();
        let translations: Vec<Translation> = sentences.iter().map(|s| upper(s)).collect();
        (sentences, subs.render(&translations))
    }

    #[test]
    fn cues_merge_into_sentences_and_split_back() {
        let srt = "1\n00:00:01,000 --> 00:00:02,000\n{\\an8}Je pense\n\n2\n00:00:02,500 --> 00:00:04,000\nque <i>oui</i>.\n\n3\n00:00:09,000 --> 00:00:10,000\nAu revoir\n\n4\n00:00:12,000 --> 00:00:13,000\ntout le monde.\n";
        let (sentences, out) = round_trip(srt, Kind::Srt);
        // 1 and 2 are 0.5 s apart; 3 and 4 are 2 s apart: not merged.
        assert_eq!(
            sentences,
            ["Je pense que oui.", "Au revoir", "tout le monde."]
        );
        assert_eq!(
            out,
            "1\n00:00:01,000 --> 00:00:02,000\n{\\an8}JE PENSE\n\n2\n00:00:02,500 --> 00:00:04,000\nQUE <i>OUI</i>.\n\n3\n00:00:09,000 --> 00:00:10,000\nAU REVOIR\n\n4\n00:00:12,000 --> 00:00:13,000\nTOUT LE MONDE.\n"
        );
    }

    #[test]
    fn webvtt_keeps_header_notes_styles_and_settings() {
        let vtt = "WEBVTT - titre\n\nSTYLE\n::cue { color: red }\n\nNOTE garder ceci\n\nid-1\n00:01.000 --> 00:02.000 align:start line:0\n<v Marie>Bonjour &amp; bienvenue.\n";
        let (sentences, out) = round_trip(vtt, Kind::Vtt);
        assert_eq!(sentences, ["Bonjour & bienvenue."]);
        assert_eq!(
            out,
            "WEBVTT - titre\n\nSTYLE\n::cue { color: red }\n\nNOTE garder ceci\n\nid-1\n00:01.000 --> 00:02.000 align:start line:0\n<v Marie>BONJOUR &amp; BIENVENUE.\n"
        );
    }

    #[test]
    fn broken_timestamps_name_the_line() {
        let err = Subtitles::parse(
            "1\n00:00:01,000 --> 00:00:02,000\nUn.\n\n2\n00:00:0x,000 --> 00:00:03,000\nDeux.\n"
                .into(),
            Kind::Srt,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 6: broken timestamp \"00:00:0x,000 --> 00:00:03,000\""
        );
        let err = Subtitles::parse("1\nDeux.\n".into(), Kind::Srt).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1: expected a cue timing line"),
            "{err}"
        );
        assert!(Subtitles::parse("00:01.000 --> 00:02.000\nx\n".into(), Kind::Vtt).is_err());
    }

    #[test]
    fn long_cues_wrap_into_two_balanced_lines() {
        let lines = wrap(
            "Ceci est une phrase bien trop longue pour tenir sur une seule ligne",
            false,
        );
        assert_eq!(lines.len(), 2);
        assert!(
            lines.iter().all(|l| l.chars().count() <= MAX_LINE),
            "{lines:?}"
        );
        assert_eq!(wrap("<i>Court</i>", false), ["<i>Court</i>"]);
        assert_eq!(wrap("- Oui. - Non.", true), ["- Oui.", "- Non."]);
    }

    #[test]
    fn odd_cues_never_panic() {
        for odd in [
            "",
            "1\n00:00:01,000 --> 00:00:02,000\n",
            "1\n00:00:01,000 --> 00:00:02,000\n<i\n",
            "1\n00:00:01,000 --> 00:00:02,000\n</b>{\\an8\n",
        ] {
            let _ = Subtitles::parse(odd.to_string(), Kind::Srt).map(|s| {
                let n = super::super::block::sentences(s.blocks()).len();
                s.render(&vec![upper("x"); n])
            });
        }
    }
}
