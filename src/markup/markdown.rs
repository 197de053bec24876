//! Markdown (CommonMark with GitHub tables, strikethrough, task lists and footnotes; YAML
//! front matter): the text of headings, paragraphs, list items, table cells and block quotes
//! translated, written back by splicing the translations into the source.
//!
//! pulldown-cmark parses the file and says where each event lies in the source. Each run of
//! inline content is one [`Block`]; emphasis, strong emphasis, strikethrough and link text are
//! projected onto the English words as HTML inline elements are ([`projection`]), keeping
//! their source markup (`**`, `[`, `](https://...)`). Kept byte for byte: code blocks, inline
//! code, URLs, reference definitions, HTML blocks and inline HTML, YAML front matter, footnote
//! labels, and everything between blocks (list markers, `>`, table pipes, blank lines). Image
//! alt text is translated as a sentence of its own. Reference links whose text is their label
//! (`[Paris]` and `[Paris][]`) become full references (`[EN][Paris]`) so that they still find
//! their definition. Translated text is escaped where Markdown would read it as markup.

use std::ops::Range;

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

use super::block::{has_letters, per_block, Block};
use super::projection::{project, weave, Element, Order};
use crate::document::ParagraphKind;
use crate::translator::Translation;

/// A parsed Markdown document.
#[derive(Debug, Clone)]
pub struct Markdown {
    source: String,
    blocks: Vec<Block>,
    units: Vec<Unit>,
}

#[derive(Debug, Clone)]
enum Unit {
    /// A run of inline content, replaced by its translation.
    Run {
        range: Range<usize>,
        elements: Vec<Element<Piece>>,
    },
    /// An image's alt text; `spliced` when it is not written by a translated run.
    Alt { range: Range<usize>, spliced: bool },
}

#[derive(Debug, Clone)]
enum Piece {
    /// Emphasis, strong, strikethrough or a link: its markup before and after its text.
    Span { open: String, close: String },
    /// Source bytes kept as they are (inline code, inline HTML, a footnote reference, a
    /// hard line break, an autolink).
    Kept(String),
    /// An image: `![`, the translation of block `alt`, `](...)`.
    Image {
        prefix: String,
        alt: usize,
        suffix: String,
    },
}

/// The pulldown-cmark extensions read.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
}

/// An inline element being read.
struct Frame {
    /// The whole element in the source.
    range: Range<usize>,
    /// Where its text starts in the run's plain text.
    text_start: usize,
    children: Vec<Element<Piece>>,
    /// The source bytes of its content, from the first to the last inner event.
    inner: Option<Range<usize>>,
    /// `[text]` and `[text][]` references: their text is their label.
    label_is_text: bool,
}

/// An image being read.
struct ImageFrame {
    range: Range<usize>,
    alt: String,
    inner: Option<Range<usize>>,
}

/// The run being read.
#[derive(Default)]
struct Run {
    text: String,
    elements: Vec<Element<Piece>>,
    range: Option<Range<usize>>,
    /// A hard break waiting for the next inline event (its markup reaches it).
    pending_break: Option<(usize, usize)>,
}

struct Reader<'s> {
    source: &'s str,
    blocks: Vec<Block>,
    units: Vec<Unit>,
    run: Run,
    frames: Vec<Frame>,
    image: Option<ImageFrame>,
    /// Alt units of the current run (moved after the run's own unit when it is flushed).
    alts: Vec<(Block, Unit)>,
    kinds: Vec<ParagraphKind>,
    /// Inside a code block, an HTML block or front matter: nothing to translate.
    skip: usize,
    /// Inside an autolink (`<https://...>`), already kept whole.
    autolink: usize,
}

impl Markdown {
    /// Parses `source`. Never fails: every input is some Markdown.
    pub fn parse(source: String) -> Self {
        let mut reader = Reader {
            source: &source,
            blocks: Vec::new(),
            units: Vec::new(),
            run: Run::default(),
            frames: Vec::new(),
            image: None,
            alts: Vec::new(),
            kinds: Vec::new(),
            skip: 0,
            autolink: 0,
        };
        for (event, range) in Parser::new_ext(&source, options()).into_offset_iter() {
            let range = range.start.min(source.len())..range.end.min(source.len());
            reader.event(event, range);
        }
        reader.flush();
        let (blocks, units) = (reader.blocks, reader.units);
        Markdown {
            source,
            blocks,
            units,
        }
    }

    /// The blocks to translate.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The document with every block replaced by its translation.
    pub fn render(&self, translations: &[Translation]) -> String {
        let per = per_block(&self.blocks, translations);
        let english: Vec<String> = per
            .iter()
            .map(|ts| {
                ts.iter()
                    .map(|t| t.text.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let mut splices: Vec<(Range<usize>, String)> = Vec::new();
        for (index, unit) in self.units.iter().enumerate() {
            match unit {
                Unit::Alt { range, spliced } => {
                    if *spliced {
                        let mut out = String::new();
                        escape(&english[index], &mut out, false);
                        splices.push((range.clone(), out));
                    }
                }
                Unit::Run { range, elements } => {
                    let block = &self.blocks[index];
                    let projection = project(
                        &block.text,
                        &block.pairs(per[index]),
                        elements,
                        Order::Target,
                    );
                    let text = weave(
                        &projection.target,
                        &projection.placed,
                        // Block markers only matter at the very start of the block.
                        &mut |text, out| {
                            let at_start = out.is_empty();
                            escape(text, out, at_start)
                        },
                        &mut |placed, open, out| match &placed.element.data {
                            // Emphasis left with no word is dropped: `****` alone would
                            // read as a thematic break.
                            Piece::Span { open: o, .. }
                                if placed.range.is_empty()
                                    && o.chars().all(|c| matches!(c, '*' | '_' | '~')) => {}
                            Piece::Span { open: o, close } => {
                                out.push_str(if open { o } else { close })
                            }
                            Piece::Kept(text) => out.push_str(text),
                            Piece::Image {
                                prefix,
                                alt,
                                suffix,
                            } => {
                                out.push_str(prefix);
                                escape(&english[*alt], out, false);
                                out.push_str(suffix);
                            }
                        },
                    );
                    splices.push((range.clone(), text));
                }
            }
        }
        splices.sort_by_key(|(range, _)| (range.start, range.end));
        let mut out = String::with_capacity(self.source.len() + self.source.len() / 4);
        let mut cursor = 0;
        for (range, text) in splices {
            if range.start < cursor || range.end > self.source.len() {
                continue;
            }
            out.push_str(&self.source[cursor..range.start]);
            out.push_str(&text);
            cursor = range.end;
        }
        out.push_str(&self.source[cursor..]);
        out
    }
}

impl Reader<'_> {
    fn kind(&self) -> ParagraphKind {
        self.kinds
            .last()
            .copied()
            .unwrap_or(ParagraphKind::Paragraph)
    }

    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        if self.skip > 0 {
            match event {
                Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::MetadataBlock(_)) => {
                    self.skip += 1
                }
                Event::End(TagEnd::CodeBlock | TagEnd::HtmlBlock | TagEnd::MetadataBlock(_)) => {
                    self.skip -= 1
                }
                _ => {}
            }
            return;
        }
        if self.autolink > 0 {
            match event {
                Event::Start(Tag::Link { .. }) => self.autolink += 1,
                Event::End(TagEnd::Link) => self.autolink -= 1,
                _ => {}
            }
            return;
        }
        if let Some(image) = self.image.as_mut() {
            match event {
                Event::End(TagEnd::Image) => self.end_image(),
                Event::Text(text) | Event::Code(text) => {
                    image.alt.push_str(&text);
                    let inner = image.inner.get_or_insert(range.clone());
                    inner.end = range.end;
                }
                _ => {
                    let inner = image.inner.get_or_insert(range.clone());
                    inner.end = inner.end.max(range.end);
                }
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                self.inline(&range);
                self.push_text(&text);
            }
            Event::SoftBreak => {
                self.inline(&range);
                self.push_text(" ");
            }
            Event::HardBreak => {
                self.inline(&range);
                while self.run.text.ends_with(' ') {
                    self.run.text.pop();
                }
                self.run.pending_break = Some((range.start, self.run.text.len()));
                self.run.text.push('\n');
            }
            Event::Code(_)
            | Event::InlineHtml(_)
            | Event::FootnoteReference(_)
            | Event::TaskListMarker(_)
            | Event::InlineMath(_)
            | Event::DisplayMath(_) => {
                self.inline(&range);
                let mut kept = self.source[range.clone()].to_string();
                if self.spaced(range.end) {
                    kept.push(' ');
                }
                self.push_void(Piece::Kept(kept));
            }
            Event::Html(_) | Event::Rule => self.flush(),
        }
    }

    /// A void element with spaces on both sides in the source: the projection puts it after
    /// the space before it, and it writes the space after it, which collapsing took out of
    /// the plain text.
    fn spaced(&self, end: usize) -> bool {
        (self.run.text.is_empty() || self.run.text.ends_with(' '))
            && self
                .source
                .get(end..)
                .is_some_and(|after| after.starts_with([' ', '\t', '\n']))
    }

    /// An inline event at `range`: the run reaches it.
    fn inline(&mut self, range: &Range<usize>) {
        if let Some((start, at)) = self.run.pending_break.take() {
            let kept = self.source[start..range.start.max(start)].to_string();
            self.insert_void(at, Piece::Kept(kept));
        }
        let run = self.run.range.get_or_insert(range.clone());
        run.end = run.end.max(range.end);
        for frame in &mut self.frames {
            let inner = frame.inner.get_or_insert(range.clone());
            inner.end = inner.end.max(range.end);
        }
    }

    fn push_text(&mut self, text: &str) {
        for c in text.chars() {
            if c == '\n' || c == ' ' || c == '\t' {
                if !self.run.text.is_empty() && !self.run.text.ends_with([' ', '\n']) {
                    self.run.text.push(' ');
                }
            } else {
                self.run.text.push(c);
            }
        }
    }

    fn push_void(&mut self, piece: Piece) {
        let at = self.run.text.len();
        self.insert_void(at, piece);
    }

    fn insert_void(&mut self, at: usize, piece: Piece) {
        let element = Element {
            range: at..at,
            void: true,
            children: Vec::new(),
            data: piece,
        };
        match self.frames.last_mut() {
            Some(frame) => frame.children.push(element),
            None => self.run.elements.push(element),
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        match tag {
            Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript => {
                self.inline(&range);
                self.open_frame(range, false);
            }
            Tag::Link { link_type, .. } => {
                self.inline(&range);
                match link_type {
                    LinkType::Autolink | LinkType::Email => {
                        // The text is the URL: kept whole, its inner events skipped.
                        let kept = self.source[range.clone()].to_string();
                        self.push_void(Piece::Kept(kept));
                        self.autolink = 1;
                    }
                    LinkType::Shortcut | LinkType::Collapsed => self.open_frame(range, true),
                    _ => self.open_frame(range, false),
                }
            }
            Tag::Image { .. } => {
                self.inline(&range);
                self.image = Some(ImageFrame {
                    range,
                    alt: String::new(),
                    inner: None,
                });
            }
            Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::MetadataBlock(_) => {
                self.flush();
                self.skip = 1;
            }
            Tag::Heading { .. } => {
                self.flush();
                self.kinds.push(ParagraphKind::Heading);
            }
            Tag::Item => {
                self.flush();
                self.kinds.push(ParagraphKind::ListItem);
            }
            Tag::Paragraph | Tag::TableCell => {
                self.flush();
                let kind = self.kind();
                self.kinds.push(kind);
            }
            _ => self.flush(),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link => self.close_frame(),
            TagEnd::Heading(_) | TagEnd::Item | TagEnd::Paragraph | TagEnd::TableCell => {
                self.flush();
                self.kinds.pop();
            }
            _ => self.flush(),
        }
    }

    fn open_frame(&mut self, range: Range<usize>, label_is_text: bool) {
        self.frames.push(Frame {
            range,
            text_start: self.run.text.len(),
            children: Vec::new(),
            inner: None,
            label_is_text,
        });
    }

    fn close_frame(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        let source = self.source;
        let element = match frame.inner.clone() {
            Some(inner) if inner.start >= frame.range.start && inner.end <= frame.range.end => {
                let open = source[frame.range.start..inner.start].to_string();
                let close = if frame.label_is_text {
                    format!("][{}]", &source[inner.clone()])
                } else {
                    source[inner.end..frame.range.end].to_string()
                };
                Element {
                    range: frame.text_start..self.run.text.len(),
                    void: false,
                    children: frame.children,
                    data: Piece::Span { open, close },
                }
            }
            _ => {
                // No text inside (`[](url)`): kept as it is.
                let at = frame.text_start.min(self.run.text.len());
                Element {
                    range: at..at,
                    void: true,
                    children: Vec::new(),
                    data: Piece::Kept(source[frame.range.clone()].to_string()),
                }
            }
        };
        match self.frames.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.run.elements.push(element),
        }
    }

    fn end_image(&mut self) {
        let Some(image) = self.image.take() else {
            return;
        };
        let mut whole = self.source[image.range.clone()].to_string();
        if self.spaced(image.range.end) {
            whole.push(' ');
        }
        let Some(inner) = image.inner.filter(|_| has_letters(&image.alt)) else {
            self.push_void(Piece::Kept(whole));
            return;
        };
        let prefix = self.source[image.range.start..inner.start].to_string();
        let mut suffix = self.source[inner.end..image.range.end].to_string();
        if self.spaced(image.range.end) {
            suffix.push(' ');
        }
        let block = Block::single(ParagraphKind::Paragraph, image.alt);
        self.alts.push((
            block,
            Unit::Alt {
                range: inner,
                spliced: true,
            },
        ));
        // The alt's block index is fixed when the run is flushed.
        let alt = self.alts.len() - 1;
        self.push_void(Piece::Image {
            prefix,
            alt,
            suffix,
        });
    }

    /// Ends the current run: a block if it has words, and its images' alt texts.
    fn flush(&mut self) {
        while !self.frames.is_empty() {
            self.close_frame();
        }
        if self.image.is_some() {
            self.end_image();
        }
        if let Some((start, at)) = self.run.pending_break.take() {
            let end = self.run.range.as_ref().map_or(start, |r| r.end.max(start));
            let kept = self.source[start..end].to_string();
            self.insert_void(at, Piece::Kept(kept));
        }
        let run = std::mem::take(&mut self.run);
        let alts = std::mem::take(&mut self.alts);
        let translated = has_letters(&run.text) && run.range.is_some();
        let mut elements = run.elements;
        if translated {
            let base = self.blocks.len() + 1;
            renumber_alts(&mut elements, base);
            self.blocks.push(Block::new(self.kind(), run.text));
            self.units.push(Unit::Run {
                range: run.range.expect("checked above"),
                elements,
            });
        }
        for (block, unit) in alts {
            let unit = match unit {
                Unit::Alt { range, .. } => Unit::Alt {
                    range,
                    spliced: !translated,
                },
                other => other,
            };
            self.blocks.push(block);
            self.units.push(unit);
        }
    }
}

/// Image alt indices are counted within their run until it is flushed: make them block
/// indices.
fn renumber_alts(elements: &mut [Element<Piece>], base: usize) {
    for element in elements {
        if let Piece::Image { alt, .. } = &mut element.data {
            *alt += base;
        }
        renumber_alts(&mut element.children, base);
    }
}

/// Escapes what Markdown would read as markup in translated text: backslashes before ASCII
/// punctuation that opens or closes inline markup, `&` that would start a character
/// reference, and a block marker (`#`, `-`, `+`, `1.`) at the start of a block.
fn escape(text: &str, out: &mut String, at_start: bool) {
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let escaped = match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' => true,
            '&' => {
                let rest = &bytes[i + 1..];
                let name = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'#')
                    .count();
                name > 0 && rest.get(name) == Some(&b';')
            }
            '#' | '-' | '+' | '=' if at_start && i == 0 => true,
            '.' | ')' if at_start && i > 0 && bytes[..i].iter().all(u8::is_ascii_digit) => true,
            _ => false,
        };
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
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

    fn round_trip(source: &str) -> (Vec<String>, String) {
        let markdown = Markdown::parse(source.to_string());
        let sentences: Vec<String> = super::super::block::sentences(markdown.blocks())
            .into_iter()
            .map(str::to_string)
            .collect();
        let translations: Vec<Translation> = sentences.iter().map(|s| upper(s)).collect();
        (sentences, markdown.render(&translations))
    }

    #[test]
    fn text_is_translated_and_code_urls_and_labels_kept() {
        let source = "---\ntitle: Un titre\n---\n\n# Le titre\n\nUn **mot** et [un lien](https://ex.fr/a_b \"t\") ici.\n\n```\ncode bloc\n```\n\n- Premier `x` point\n- Second[^1]\n\n[^1]: Une note.\n\n[ref]: https://ex.fr\n";
        let (sentences, out) = round_trip(source);
        assert_eq!(
            sentences,
            [
                "Le titre",
                "Un mot et un lien ici.",
                "Premier point",
                "Second",
                "Une note."
            ]
        );
        assert_eq!(
            out,
            "---\ntitle: Un titre\n---\n\n# LE TITRE\n\nUN **MOT** ET [UN LIEN](https://ex.fr/a_b \"t\") ICI.\n\n```\ncode bloc\n```\n\n- PREMIER `x` POINT\n- SECOND[^1]\n\n[^1]: UNE NOTE.\n\n[ref]: https://ex.fr\n"
        );
    }

    #[test]
    fn tables_quotes_images_and_references() {
        let source = "| Ville | Pays |\n|---|---|\n| Paris | France |\n\n> Une citation\n> sur deux lignes.\n\n![Une image](a.png) Voir [Paris].\n\n[Paris]: https://paris.fr\n";
        let (sentences, out) = round_trip(source);
        assert_eq!(
            sentences,
            [
                "Ville",
                "Pays",
                "Paris",
                "France",
                "Une citation sur deux lignes.",
                "Voir Paris.",
                "Une image"
            ]
        );
        assert_eq!(
            out,
            "| VILLE | PAYS |\n|---|---|\n| PARIS | FRANCE |\n\n> UNE CITATION SUR DEUX LIGNES.\n\n![UNE IMAGE](a.png) VOIR [PARIS][Paris].\n\n[Paris]: https://paris.fr\n"
        );
    }

    #[test]
    fn markup_in_translations_is_escaped() {
        let mut out = String::new();
        escape("a*b_c [d] <e> &amp; AT&T", &mut out, false);
        assert_eq!(out, "a\\*b\\_c \\[d\\] \\<e\\> \\&amp; AT&T");
        let mut out = String::new();
        escape("# 1. x", &mut out, true);
        assert_eq!(out, "\\# 1. x");
        let mut out = String::new();
        escape("12. x", &mut out, true);
        assert_eq!(out, "12\\. x");
    }

    #[test]
    fn odd_input_never_panics() {
        for odd in [
            "",
            "*",
            "**a",
            "[a](",
            "![",
            "![a](b",
            "<div>\n",
            "> \n>",
            "|a|\n|-|\n|",
            "\\",
            "`",
            "[^x]",
            "---\n",
        ] {
            let _ = round_trip(odd);
        }
    }
}
