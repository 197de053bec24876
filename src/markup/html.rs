//! HTML pages and fragments: the text of their blocks translated, inline markup projected
//! onto the English words, everything else kept byte for byte.
//!
//! **Parsing.** lol_html (Cloudflare's streaming rewriter) tokenizes the page as the HTML5
//! specification does (tag, comment and doctype syntax, raw text in `script` and `style`,
//! RCDATA in `title` and `textarea`, CDATA and namespaces in SVG and MathML) and reports
//! where each token lies in the source. We chose it over an html5ever DOM because the output
//! is the source with translations spliced in: a DOM forgets the source's bytes (attribute
//! quotes, character references, omitted tags), so nothing could be given back byte for byte.
//! The nesting is rebuilt from the tokens with the HTML5 rules that matter for text: void
//! elements, end tags implied by the next start tag (`p`, `li`, `dt`/`dd`, table rows and
//! cells, `option`), and end tags that close every element opened after their own (misnested
//! inline tags are closed in order; a stray end tag is ignored, as browsers ignore it). No
//! input makes it fail or panic.
//!
//! **What is translated.** Each run of inline content (text and inline elements: `a`, `em`,
//! `strong`, `span`, `br`, `img`, ...) inside a block (`p`, `h1`–`h6`, `li`, `td`, `title`,
//! `div`, ...) is one [`Block`]: its plain text is translated sentence by sentence and its
//! inline elements are put back around the English words by [`projection`]. Kept as they are:
//! `script`, `style`, `code`, `pre`, `kbd`, `samp`, `var`, `textarea`, `svg`, `math`,
//! `template`, comments, and anything under `translate="no"` or `class="notranslate"` (inside
//! a sentence, these are placed like void elements). The `title`, `alt`, `placeholder` and
//! `aria-label` attributes are translated as sentences of their own; other attributes are
//! kept. Translations are escaped once; what is kept is never unescaped.
//!
//! **The page** says `lang="en"` (on `html`, and wherever a `lang` said French); a declared
//! charset becomes UTF-8, which the output is. Fragments (no `html`, `head`, `body` or
//! doctype, such as a Mastodon post) come back as fragments.

use std::cell::RefCell;
use std::ops::Range;

use anyhow::{anyhow, Result};
use lol_html::{doc_comments, doc_text, doctype, element, HtmlRewriter, Settings};

use super::block::{has_letters, per_block, Block};
use super::entities::{decode, escape_attribute, escape_text};
use super::projection::{project, weave, Element, Order};
use crate::document::ParagraphKind;
use crate::translator::Translation;

/// A parsed HTML page or fragment.
#[derive(Debug, Clone)]
pub struct Html {
    source: String,
    blocks: Vec<Block>,
    units: Vec<Unit>,
    tags: Vec<Tag>,
    /// Start tags rewritten in place (those not inside a translated run).
    spliced_tags: Vec<usize>,
    /// Where to add ` lang="en"` to an `html` start tag that has no `lang`.
    insert_lang: Option<usize>,
}

/// How a block goes back into the page.
#[derive(Debug, Clone)]
enum Unit {
    /// A run of inline content replaced by its translation.
    Run {
        range: Range<usize>,
        elements: Vec<Element<Piece>>,
    },
    /// An attribute value: the edit of tag `tag` that shows it.
    Attribute { tag: usize, edit: usize },
}

/// What an inline element writes.
#[derive(Debug, Clone)]
enum Piece {
    /// A paired element: start tag `tag`, its end tag as written (or `</name>`).
    Paired { tag: usize, end: String },
    /// A void element's start tag; `space`: a space follows (see [`Walker::plain`]).
    Tag { tag: usize, space: bool },
    /// Source bytes kept as they are (a comment, `code`, a `translate="no"` element).
    Kept { range: Range<usize>, space: bool },
}

/// A start tag and the changes to its attribute values.
#[derive(Debug, Clone)]
struct Tag {
    range: Range<usize>,
    edits: Vec<Edit>,
}

/// A change to an attribute value (its raw bytes, quotes excluded, relative to the tag).
#[derive(Debug, Clone)]
struct Edit {
    value: Range<usize>,
    /// `None` when unquoted: the new value is written in double quotes.
    quote: Option<char>,
    new: NewValue,
}

#[derive(Debug, Clone)]
enum NewValue {
    /// The translation of block `block`.
    Translation(usize),
    /// A fixed text (`en`, `utf-8`, ...).
    Fixed(&'static str),
}

/// Elements whose content is never translated.
const KEPT: [&str; 13] = [
    "script", "style", "code", "pre", "kbd", "samp", "var", "textarea", "svg", "math", "template",
    "noscript", "object",
];

/// Elements that stay inside the sentence they belong to.
const INLINE: [&str; 36] = [
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "br", "cite", "code", "data", "del", "dfn",
    "em", "font", "i", "img", "input", "ins", "kbd", "label", "mark", "nobr", "q", "s", "samp",
    "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var",
];

/// Inline elements placed like void ones (besides the `KEPT` ones).
const VOID: [&str; 16] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen", "frame",
];

/// Attributes translated as sentences of their own.
const TRANSLATED_ATTRIBUTES: [&str; 4] = ["title", "alt", "placeholder", "aria-label"];

/// Start tags that close an open `p`.
const CLOSES_P: [&str; 38] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
    "dd",
    "dt",
    "listing",
];

/// Elements an implied end tag does not look past.
const SCOPE: [&str; 12] = [
    "html", "table", "td", "th", "caption", "marquee", "object", "applet", "template", "button",
    "svg", "math",
];

/// One token of the page, with its bytes.
#[derive(Debug, Clone)]
enum Token {
    Start {
        range: Range<usize>,
        name: String,
        foreign: bool,
        self_closing: bool,
    },
    Text(Range<usize>),
    Other(Range<usize>),
}

#[derive(Debug, Clone)]
enum Node {
    Root {
        children: Vec<usize>,
    },
    Element {
        name: String,
        tag: usize,
        end_tag: Option<Range<usize>>,
        children: Vec<usize>,
        /// The bytes from the start tag to the end of its last content.
        extent: Range<usize>,
    },
    Text(Range<usize>),
    /// A comment or doctype.
    Other(Range<usize>),
}

impl Html {
    /// Parses `source` (already decoded, see [`decode_page`]).
    pub fn parse(source: String) -> Result<Self> {
        let tokens = tokenize(&source)?;
        let mut builder = Builder::new(&source);
        builder.build(tokens);
        let document = builder.is_document();
        let mut html = Html {
            source: String::new(),
            blocks: Vec::new(),
            units: Vec::new(),
            tags: builder.tags,
            spliced_tags: Vec::new(),
            insert_lang: None,
        };
        let nodes = builder.nodes;
        let mut walker = Walker {
            source: &source,
            nodes: &nodes,
            html: &mut html,
            in_run: Vec::new(),
            document,
        };
        walker.container(0, ParagraphKind::Paragraph);
        let in_run = std::mem::take(&mut walker.in_run);
        html.spliced_tags = (0..html.tags.len())
            .filter(|t| !html.tags[*t].edits.is_empty() && !in_run.contains(t))
            .collect();
        html.source = source;
        Ok(html)
    }

    /// The blocks to translate.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The page with every block replaced by its translation (`translations` in the order of
    /// the blocks' sentences).
    pub fn render(&self, translations: &[Translation]) -> String {
        let per = per_block(&self.blocks, translations);
        let english: Vec<String> = per
            .iter()
            .map(|ts| {
                let texts: Vec<&str> = ts.iter().map(|t| t.text.trim()).collect();
                texts.join(" ")
            })
            .collect();
        let mut splices: Vec<(Range<usize>, String)> = Vec::new();
        for &tag in &self.spliced_tags {
            splices.push((self.tags[tag].range.clone(), self.tag_text(tag, &english)));
        }
        for (index, unit) in self.units.iter().enumerate() {
            let Unit::Run { range, elements } = unit else {
                continue;
            };
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
                &mut escape_text,
                &mut |placed, open, out| match &placed.element.data {
                    Piece::Paired { tag, end } => {
                        if open {
                            out.push_str(&self.tag_text(*tag, &english));
                        } else {
                            out.push_str(end);
                        }
                    }
                    Piece::Tag { tag, space } => {
                        out.push_str(&self.tag_text(*tag, &english));
                        if *space {
                            out.push(' ');
                        }
                    }
                    Piece::Kept { range, space } => {
                        out.push_str(self.source.get(range.clone()).unwrap_or(""));
                        if *space {
                            out.push(' ');
                        }
                    }
                },
            );
            splices.push((range.clone(), text));
        }
        if let Some(at) = self.insert_lang {
            splices.push((at..at, " lang=\"en\"".to_string()));
        }
        splices.sort_by_key(|(range, _)| (range.start, range.end));
        let mut out = String::with_capacity(self.source.len() + self.source.len() / 4);
        let mut cursor = 0;
        for (range, text) in splices {
            if range.start < cursor {
                continue; // never happens: runs and tags outside runs do not overlap
            }
            out.push_str(&self.source[cursor..range.start]);
            out.push_str(&text);
            cursor = range.end;
        }
        out.push_str(&self.source[cursor..]);
        out
    }

    /// Start tag `tag` with its attribute edits applied.
    fn tag_text(&self, tag: usize, english: &[String]) -> String {
        let tag = &self.tags[tag];
        let raw = &self.source[tag.range.clone()];
        if tag.edits.is_empty() {
            return raw.to_string();
        }
        let mut edits: Vec<&Edit> = tag.edits.iter().collect();
        edits.sort_by_key(|e| e.value.start);
        let mut out = String::with_capacity(raw.len() + 16);
        let mut cursor = 0;
        for edit in edits {
            if edit.value.start < cursor || edit.value.end > raw.len() {
                continue;
            }
            out.push_str(&raw[cursor..edit.value.start]);
            let value = match &edit.new {
                NewValue::Translation(block) => english.get(*block).map_or("", String::as_str),
                NewValue::Fixed(text) => text,
            };
            match edit.quote {
                Some(quote) => escape_attribute(value, quote, &mut out),
                None => {
                    out.push('"');
                    escape_attribute(value, '"', &mut out);
                    out.push('"');
                }
            }
            cursor = edit.value.end;
        }
        out.push_str(&raw[cursor..]);
        out
    }
}

/// The page's tokens, in order, from lol_html. End tags are not reported on their own: they
/// lie in the gaps between the other tokens (see [`end_tags`]).
fn tokenize(source: &str) -> Result<Vec<Token>> {
    let tokens = RefCell::new(Vec::new());
    {
        let mut rewriter = HtmlRewriter::new(
            Settings {
                element_content_handlers: vec![element!("*", |el| {
                    tokens.borrow_mut().push(Token::Start {
                        range: el.source_location().bytes(),
                        name: el.tag_name(),
                        foreign: el.namespace_uri() != "http://www.w3.org/1999/xhtml",
                        self_closing: el.is_self_closing(),
                    });
                    Ok(())
                })],
                document_content_handlers: vec![
                    doc_text!(|t| {
                        let range = t.source_location().bytes();
                        if !range.is_empty() {
                            tokens.borrow_mut().push(Token::Text(range));
                        }
                        Ok(())
                    }),
                    doc_comments!(|c| {
                        tokens
                            .borrow_mut()
                            .push(Token::Other(c.source_location().bytes()));
                        Ok(())
                    }),
                    doctype!(|d| {
                        tokens
                            .borrow_mut()
                            .push(Token::Other(d.source_location().bytes()));
                        Ok(())
                    }),
                ],
                strict: false,
                ..Settings::new()
            },
            |_: &[u8]| {},
        );
        rewriter
            .write(source.as_bytes())
            .map_err(|e| anyhow!("cannot parse the HTML: {e}"))?;
        rewriter
            .end()
            .map_err(|e| anyhow!("cannot parse the HTML: {e}"))?;
    }
    let mut tokens = tokens.into_inner();
    // Every range on character boundaries and in order, whatever the input.
    tokens.retain(|t| {
        let r = t.range();
        r.start <= r.end
            && r.end <= source.len()
            && source.is_char_boundary(r.start)
            && source.is_char_boundary(r.end)
    });
    tokens.sort_by_key(|t| t.range().start);
    Ok(tokens)
}

impl Token {
    fn range(&self) -> Range<usize> {
        match self {
            Token::Start { range, .. } | Token::Text(range) | Token::Other(range) => range.clone(),
        }
    }
}

/// The end tags in a gap between tokens: `(name, range)`.
fn end_tags(source: &str, gap: Range<usize>) -> Vec<(String, Range<usize>)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = gap.start;
    while i + 2 < gap.end {
        if bytes[i] == b'<' && bytes[i + 1] == b'/' && bytes[i + 2].is_ascii_alphabetic() {
            let name_end = (i + 2..gap.end)
                .find(|&j| {
                    matches!(
                        bytes[j],
                        b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>'
                    )
                })
                .unwrap_or(gap.end);
            let close = (name_end..gap.end).find(|&j| bytes[j] == b'>');
            let end = close.map_or(gap.end, |j| j + 1);
            out.push((source[i + 2..name_end].to_ascii_lowercase(), i..end));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Builds the tree of nodes from the tokens.
struct Builder<'s> {
    source: &'s str,
    nodes: Vec<Node>,
    tags: Vec<Tag>,
    stack: Vec<usize>,
    saw_document_markup: bool,
}

impl<'s> Builder<'s> {
    fn new(source: &'s str) -> Self {
        Self {
            source,
            nodes: vec![Node::Root {
                children: Vec::new(),
            }],
            tags: Vec::new(),
            stack: vec![0],
            saw_document_markup: false,
        }
    }

    fn is_document(&self) -> bool {
        self.saw_document_markup
    }

    fn build(&mut self, tokens: Vec<Token>) {
        let mut cursor = 0;
        for token in tokens {
            let range = token.range();
            if range.start > cursor {
                for (name, end) in end_tags(self.source, cursor..range.start) {
                    self.end_tag(&name, end);
                }
            }
            cursor = cursor.max(range.end);
            match token {
                Token::Start {
                    range,
                    name,
                    foreign,
                    self_closing,
                } => self.start_tag(range, name, foreign, self_closing),
                Token::Text(range) => self.text(range),
                Token::Other(range) => {
                    if self.source[range.clone()].starts_with("<!")
                        && self.source[range.clone()]
                            .get(2..9)
                            .is_some_and(|s| s.eq_ignore_ascii_case("doctype"))
                    {
                        self.saw_document_markup = true;
                    }
                    let id = self.push_node(Node::Other(range.clone()));
                    self.extend(range.end);
                    let _ = id;
                }
            }
        }
        if cursor < self.source.len() {
            for (name, end) in end_tags(self.source, cursor..self.source.len()) {
                self.end_tag(&name, end);
            }
        }
    }

    fn current(&self) -> usize {
        *self.stack.last().unwrap_or(&0)
    }

    fn push_node(&mut self, node: Node) -> usize {
        let id = self.nodes.len();
        self.nodes.push(node);
        let parent = self.current();
        match &mut self.nodes[parent] {
            Node::Root { children } | Node::Element { children, .. } => children.push(id),
            _ => {}
        }
        id
    }

    /// Every open element now reaches `end`.
    fn extend(&mut self, end: usize) {
        for &id in &self.stack {
            if let Node::Element { extent, .. } = &mut self.nodes[id] {
                extent.end = extent.end.max(end);
            }
        }
    }

    fn name_of(&self, id: usize) -> &str {
        match &self.nodes[id] {
            Node::Element { name, .. } => name,
            _ => "",
        }
    }

    /// Closes the open element `names` (the nearest), if one is open below a scope boundary.
    fn close_open(&mut self, names: &[&str], boundaries: &[&str]) {
        for depth in (1..self.stack.len()).rev() {
            let name = self.name_of(self.stack[depth]);
            if names.contains(&name) {
                self.stack.truncate(depth);
                return;
            }
            if boundaries.contains(&name) || SCOPE.contains(&name) {
                return;
            }
        }
    }

    fn start_tag(&mut self, range: Range<usize>, name: String, foreign: bool, self_closing: bool) {
        if matches!(name.as_str(), "html" | "head" | "body") {
            self.saw_document_markup = true;
        }
        if !foreign {
            let n = name.as_str();
            if CLOSES_P.contains(&n) {
                self.close_open(&["p"], &[]);
            }
            match n {
                "li" => self.close_open(&["li"], &["ul", "ol"]),
                "dt" | "dd" => self.close_open(&["dt", "dd"], &["dl"]),
                "tr" => self.close_open(&["tr"], &["thead", "tbody", "tfoot"]),
                "td" | "th" => self.close_open(&["td", "th"], &["tr"]),
                "thead" | "tbody" | "tfoot" => self.close_open(&["thead", "tbody", "tfoot"], &[]),
                "option" => self.close_open(&["option"], &["select", "datalist", "optgroup"]),
                "optgroup" => self.close_open(&["optgroup", "option"], &["select"]),
                "a" => self.close_open(&["a"], &[]),
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                    let current = self.name_of(self.current());
                    if current.len() == 2 && current.starts_with('h') && current != "hr" {
                        self.stack.pop();
                    }
                }
                _ => {}
            }
        }
        let tag = self.tags.len();
        self.tags.push(Tag {
            range: range.clone(),
            edits: Vec::new(),
        });
        self.extend(range.end);
        let void = if foreign {
            self_closing
        } else {
            VOID.contains(&name.as_str())
        };
        let id = self.push_node(Node::Element {
            name,
            tag,
            end_tag: None,
            children: Vec::new(),
            extent: range,
        });
        if !void {
            self.stack.push(id);
        }
    }

    fn end_tag(&mut self, name: &str, range: Range<usize>) {
        let Some(depth) = (1..self.stack.len())
            .rev()
            .find(|&d| self.name_of(self.stack[d]) == name)
        else {
            return; // a stray end tag: ignored, as browsers ignore it
        };
        self.extend(range.end);
        let id = self.stack[depth];
        if let Node::Element { end_tag, .. } = &mut self.nodes[id] {
            *end_tag = Some(range);
        }
        self.stack.truncate(depth);
    }

    fn text(&mut self, range: Range<usize>) {
        self.extend(range.end);
        let parent = self.current();
        // lol_html may report one text node in several chunks: join them.
        let last = match &self.nodes[parent] {
            Node::Root { children } | Node::Element { children, .. } => children.last().copied(),
            _ => None,
        };
        if let Some(last) = last {
            if let Node::Text(previous) = &mut self.nodes[last] {
                if previous.end == range.start {
                    previous.end = range.end;
                    return;
                }
            }
        }
        self.push_node(Node::Text(range));
    }
}

/// An attribute value: its raw bytes (quotes excluded) and its quote.
type AttributeValue = (Range<usize>, Option<char>);

/// A start tag's attributes: lowercase name, raw value range (quotes excluded) and quote,
/// relative to the tag's first byte.
fn attributes(tag: &str) -> Vec<(String, Option<AttributeValue>)> {
    let bytes = tag.as_bytes();
    let space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut i = 1;
    while i < bytes.len() && !space(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
        i += 1;
    }
    let mut out = Vec::new();
    loop {
        while i < bytes.len() && (space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            break;
        }
        let name_start = i;
        i += 1; // a name may start with '='
        while i < bytes.len() && !space(bytes[i]) && !matches!(bytes[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let name = tag[name_start..i].to_ascii_lowercase();
        let mut j = i;
        while j < bytes.len() && space(bytes[j]) {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'=' {
            j += 1;
            while j < bytes.len() && space(bytes[j]) {
                j += 1;
            }
            let value = match bytes.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let start = j + 1;
                    let end = (start..bytes.len())
                        .find(|&k| bytes[k] == q)
                        .unwrap_or(bytes.len());
                    i = (end + 1).min(bytes.len());
                    (start..end, Some(q as char))
                }
                _ => {
                    let start = j;
                    let mut end = j;
                    while end < bytes.len() && !space(bytes[end]) && bytes[end] != b'>' {
                        end += 1;
                    }
                    i = end;
                    (start..end, None)
                }
            };
            out.push((name, Some(value)));
        } else {
            out.push((name, None));
        }
    }
    out
}

/// Walks the tree: finds the runs to translate and the attributes to change.
struct Walker<'a> {
    source: &'a str,
    nodes: &'a [Node],
    html: &'a mut Html,
    /// Tags written as part of a translated run.
    in_run: Vec<usize>,
    document: bool,
}

impl Walker<'_> {
    fn children(&self, id: usize) -> &[usize] {
        match &self.nodes[id] {
            Node::Root { children } | Node::Element { children, .. } => children,
            _ => &[],
        }
    }

    fn tag_source(&self, tag: usize) -> &str {
        let range = self.html.tags[tag].range.clone();
        self.source.get(range).unwrap_or("")
    }

    /// An element whose content is never translated.
    fn kept(&self, id: usize) -> bool {
        let Node::Element { name, tag, .. } = &self.nodes[id] else {
            return matches!(self.nodes[id], Node::Other(_));
        };
        if KEPT.contains(&name.as_str()) {
            return true;
        }
        attributes(self.tag_source(*tag))
            .iter()
            .any(|(attr, value)| {
                let value = value
                    .as_ref()
                    .map(|(r, _)| {
                        decode(self.tag_source(*tag).get(r.clone()).unwrap_or("")).into_owned()
                    })
                    .unwrap_or_default();
                (attr == "translate" && value.trim().eq_ignore_ascii_case("no"))
                    || (attr == "class"
                        && value.split_ascii_whitespace().any(|c| c == "notranslate"))
            })
    }

    /// Inline content: text, comments, and inline elements with no block inside.
    fn inline(&self, id: usize) -> bool {
        match &self.nodes[id] {
            Node::Text(_) | Node::Other(_) => true,
            Node::Element { name, .. } => {
                INLINE.contains(&name.as_str()) && (self.kept(id) || !self.has_block(id))
            }
            Node::Root { .. } => false,
        }
    }

    fn has_block(&self, id: usize) -> bool {
        self.children(id).iter().any(|&c| match &self.nodes[c] {
            Node::Element { name, .. } => !INLINE.contains(&name.as_str()) || self.has_block(c),
            _ => false,
        })
    }

    /// Records the attribute edits of element `id`'s start tag.
    fn attribute_edits(&mut self, id: usize) {
        let Node::Element { name, tag, .. } = &self.nodes[id] else {
            return;
        };
        let (tag, name) = (*tag, name.clone());
        let raw = self.tag_source(tag).to_string();
        let attrs = attributes(&raw);
        let mut has_lang = false;
        let mut http_equiv_charset = false;
        for (attr, value) in &attrs {
            if attr == "http-equiv" {
                http_equiv_charset = value.as_ref().is_some_and(|(r, _)| {
                    raw[r.clone()].trim().eq_ignore_ascii_case("content-type")
                });
            }
        }
        for (attr, value) in attrs {
            let Some((range, quote)) = value else {
                if attr == "lang" && name == "html" {
                    has_lang = true;
                }
                continue;
            };
            let text = decode(&raw[range.clone()]).into_owned();
            let fixed = |new: &'static str| Edit {
                value: range.clone(),
                quote,
                new: NewValue::Fixed(new),
            };
            if TRANSLATED_ATTRIBUTES.contains(&attr.as_str()) {
                if has_letters(&text) {
                    let block = self.html.blocks.len();
                    self.html
                        .blocks
                        .push(Block::single(ParagraphKind::Paragraph, text));
                    let edit = self.html.tags[tag].edits.len();
                    self.html.tags[tag].edits.push(Edit {
                        value: range,
                        quote,
                        new: NewValue::Translation(block),
                    });
                    self.html.units.push(Unit::Attribute { tag, edit });
                }
            } else if attr == "lang" || attr == "xml:lang" {
                if name == "html" {
                    has_lang = true;
                }
                if (name == "html" || text.trim().to_ascii_lowercase().starts_with("fr"))
                    && text != "en"
                {
                    self.html.tags[tag].edits.push(fixed("en"));
                }
            } else if name == "meta" && attr == "charset" {
                if !text.trim().eq_ignore_ascii_case("utf-8") {
                    self.html.tags[tag].edits.push(fixed("utf-8"));
                }
            } else if name == "meta" && attr == "content" && http_equiv_charset {
                let lower = text.to_ascii_lowercase();
                if lower.contains("charset") && !lower.contains("utf-8") {
                    self.html.tags[tag]
                        .edits
                        .push(fixed("text/html; charset=utf-8"));
                }
            }
        }
        if name == "html" && !has_lang && self.document {
            let name_end = 1 + raw[1..]
                .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                .unwrap_or(raw.len() - 1);
            self.html.insert_lang = Some(self.html.tags[tag].range.start + name_end);
        }
    }

    /// A block or the root: its runs of inline content and its other children.
    fn container(&mut self, id: usize, kind: ParagraphKind) {
        let children = self.children(id).to_vec();
        let mut run: Vec<usize> = Vec::new();
        for child in children {
            if self.inline(child) {
                run.push(child);
                continue;
            }
            self.flush(&mut run, kind);
            if self.kept(child) {
                continue;
            }
            self.attribute_edits(child);
            let child_kind = match &self.nodes[child] {
                Node::Element { name, .. } => match name.as_str() {
                    "title" => ParagraphKind::Title,
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => ParagraphKind::Heading,
                    "li" | "dt" | "dd" => ParagraphKind::ListItem,
                    _ => ParagraphKind::Paragraph,
                },
                _ => ParagraphKind::Paragraph,
            };
            self.container(child, child_kind);
        }
        self.flush(&mut run, kind);
    }

    /// Turns a run of inline nodes into a block, if it has words.
    fn flush(&mut self, run: &mut Vec<usize>, kind: ParagraphKind) {
        if run.is_empty() {
            return;
        }
        let nodes = std::mem::take(run);
        let mut text = String::new();
        let mut elements = Vec::new();
        let mut tags = Vec::new();
        for &node in &nodes {
            self.plain(node, &mut text, &mut elements, &mut tags);
        }
        let edits_before = self.html.units.len();
        // Attribute edits of the run's own tags (an image's alt, a link's title).
        for &tag_node in &tags {
            self.attribute_edits(tag_node);
        }
        let attribute_units = self.html.units.split_off(edits_before);
        if !has_letters(&text) {
            // Nothing to translate here; its tags' attributes still are.
            self.html.units.extend(attribute_units);
            return;
        }
        let Some(range) = self.run_range(&nodes) else {
            self.html.units.extend(attribute_units);
            return;
        };
        for &tag_node in &tags {
            if let Node::Element { tag, .. } = &self.nodes[tag_node] {
                self.in_run.push(*tag);
            }
        }
        // The attribute blocks come after the run's own, in document order within the run.
        let attribute_blocks = self
            .html
            .blocks
            .split_off(self.html.blocks.len() - attribute_units.len());
        self.html.blocks.push(Block::new(kind, text));
        self.html.units.push(Unit::Run { range, elements });
        self.html.blocks.extend(attribute_blocks);
        // Block indices of the attribute edits moved by one.
        for unit in &attribute_units {
            if let Unit::Attribute { tag, edit } = unit {
                if let NewValue::Translation(block) = &mut self.html.tags[*tag].edits[*edit].new {
                    *block += 1;
                }
            }
        }
        self.html.units.extend(attribute_units);
    }

    /// The bytes of a run, without the whitespace at its edges.
    fn run_range(&self, nodes: &[usize]) -> Option<Range<usize>> {
        let extent = |id: usize| match &self.nodes[id] {
            Node::Text(r) | Node::Other(r) => r.clone(),
            Node::Element { extent, .. } => extent.clone(),
            Node::Root { .. } => 0..0,
        };
        let first = extent(*nodes.first()?);
        let last = extent(*nodes.last()?);
        let mut start = first.start;
        if let Node::Text(r) = &self.nodes[nodes[0]] {
            let raw = &self.source[r.clone()];
            start += raw.len() - raw.trim_start_matches(is_html_space).len();
        }
        let mut end = last.end;
        if let Node::Text(r) = &self.nodes[*nodes.last()?] {
            let raw = &self.source[r.clone()];
            end -= raw.len() - raw.trim_end_matches(is_html_space).len();
        }
        (start < end).then_some(start..end)
    }

    /// Appends the plain text of `id` to `text` and its elements to `elements`; `tags`
    /// collects the element nodes whose start tags the run writes.
    fn plain(
        &self,
        id: usize,
        text: &mut String,
        elements: &mut Vec<Element<Piece>>,
        tags: &mut Vec<usize>,
    ) {
        match &self.nodes[id] {
            Node::Text(range) => push_collapsed(text, &decode(&self.source[range.clone()])),
            Node::Other(range) => {
                let space = self.spaced(text, range.end);
                let piece = Piece::Kept {
                    range: range.clone(),
                    space,
                };
                elements.push(void_at(text.len(), piece));
            }
            Node::Element {
                name,
                tag,
                end_tag,
                children,
                extent,
            } => {
                if self.kept(id) {
                    let space = self.spaced(text, extent.end);
                    let piece = Piece::Kept {
                        range: extent.clone(),
                        space,
                    };
                    elements.push(void_at(text.len(), piece));
                } else if VOID.contains(&name.as_str()) {
                    tags.push(id);
                    if name == "br" {
                        while text.ends_with(' ') {
                            text.pop();
                        }
                        let piece = Piece::Tag {
                            tag: *tag,
                            space: false,
                        };
                        elements.push(void_at(text.len(), piece));
                        text.push('\n');
                    } else {
                        let space = self.spaced(text, extent.end);
                        elements.push(void_at(text.len(), Piece::Tag { tag: *tag, space }));
                    }
                } else {
                    tags.push(id);
                    let start = text.len();
                    let mut inner = Vec::new();
                    for &child in children {
                        self.plain(child, text, &mut inner, tags);
                    }
                    let end = match end_tag {
                        Some(r) => self.source[r.clone()].to_string(),
                        None => format!("</{name}>"),
                    };
                    elements.push(Element {
                        range: start..text.len(),
                        void: false,
                        children: inner,
                        data: Piece::Paired { tag: *tag, end },
                    });
                }
            }
            Node::Root { .. } => {}
        }
    }
}

impl Walker<'_> {
    /// A void element with spaces on both sides in the source (`un <code>x</code> deux`):
    /// the projection puts it after the space before it, and it writes the space after it,
    /// which collapsing took out of the plain text.
    fn spaced(&self, text: &str, end: usize) -> bool {
        (text.is_empty() || text.ends_with(' '))
            && self
                .source
                .get(end..)
                .is_some_and(|after| after.starts_with(is_html_space))
    }
}

fn void_at(at: usize, piece: Piece) -> Element<Piece> {
    Element {
        range: at..at,
        void: true,
        children: Vec::new(),
        data: piece,
    }
}

fn is_html_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Appends `piece` with runs of HTML whitespace collapsed to one space, as a browser shows
/// them (no space at the very start, nor after a line break).
fn push_collapsed(text: &mut String, piece: &str) {
    for c in piece.chars() {
        if is_html_space(c) {
            if !text.is_empty() && !text.ends_with([' ', '\n']) {
                text.push(' ');
            }
        } else {
            text.push(c);
        }
    }
}

/// Decodes an HTML page's bytes: a byte-order mark, else the charset its `<meta>` declares
/// in the first 1024 bytes (as browsers pre-scan), else UTF-8, else windows-1252 (browsers'
/// default for French pages). Declared UTF-8 that is not valid is an error unless `lossy`.
pub fn decode_page(bytes: &[u8], lossy: bool) -> Result<String, usize> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        return decode_with(encoding, &bytes[bom..], lossy, bom);
    }
    let declared = declared_charset(&bytes[..bytes.len().min(1024)]);
    match declared {
        Some(encoding) => decode_with(encoding, bytes, lossy, 0),
        None => match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => decode_with(encoding_rs::WINDOWS_1252, bytes, lossy, 0),
        },
    }
}

fn decode_with(
    encoding: &'static encoding_rs::Encoding,
    bytes: &[u8],
    lossy: bool,
    offset: usize,
) -> Result<String, usize> {
    if encoding == encoding_rs::UTF_8 && !lossy {
        return match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(e) => Err(offset + e.valid_up_to()),
        };
    }
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Ok(text.into_owned())
}

/// The encoding a `<meta charset>` or `<meta http-equiv="content-type">` declares.
fn declared_charset(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut at = 0;
    while let Some(found) = find(&lower[at..], b"<meta") {
        let start = at + found;
        let end = lower[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = rest.trim_ascii_start();
            if let Some(value) = rest.strip_prefix(b"=") {
                let value = value.trim_ascii_start();
                let value = value
                    .strip_prefix(b"\"")
                    .or(value.strip_prefix(b"'"))
                    .unwrap_or(value);
                let len = value
                    .iter()
                    .position(|b| {
                        matches!(
                            b,
                            b'"' | b'\'' | b';' | b' ' | b'/' | b'>' | b'\t' | b'\n' | b'\r'
                        )
                    })
                    .unwrap_or(value.len());
                if let Some(encoding) = encoding_rs::Encoding::for_label(&value[..len]) {
                    // A page cannot declare UTF-16 in ASCII: browsers read it as UTF-8.
                    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
                        return Some(encoding_rs::UTF_8);
                    }
                    return Some(encoding.output_encoding());
                }
            }
        }
        at = end;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// True when `text` looks like HTML: it opens (after whitespace and comments) with a
/// doctype, `<html`, or holds a block tag in its first kilobyte.
pub fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    let trimmed = head.trim_start();
    trimmed.starts_with("<!doctype html")
        || trimmed.starts_with("<html")
        || ["<head", "<body", "<p>", "<p ", "<div", "<article", "<h1"]
            .iter()
            .any(|t| trimmed.starts_with(t))
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

    /// Parses `source`, "translates" each sentence into capitals, renders.
    fn round_trip(source: &str) -> (Vec<String>, String) {
        let html = Html::parse(source.to_string()).unwrap();
        let sentences: Vec<String> = super::super::block::sentences(html.blocks())
            .into_iter()
            .map(str::to_string)
            .collect();
        let translations: Vec<Translation> = sentences.iter().map(|s| upper(s)).collect();
        (sentences, html.render(&translations))
    }

    #[test]
    fn a_fragment_stays_a_fragment() {
        let (sentences, out) =
            round_trip("<p>Bonjour <a href=\"https://m.example/@x\">@x</a> !</p>");
        assert_eq!(sentences, ["Bonjour @x !"]);
        assert_eq!(
            out,
            "<p>BONJOUR <a href=\"https://m.example/@x\">@X</a> !</p>"
        );
    }

    #[test]
    fn a_page_says_english_and_keeps_what_is_not_text() {
        let page = "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"windows-1252\"><title>Le titre</title>\
            <script>var x = \"<p>non</p>\";</script><style>p{}</style></head>\
            <body><p>Un <code>code</code> ici.<!-- note --></p><pre>garder  ça</pre>\
            <div translate=\"no\">pas ça</div><p class=\"a notranslate\">ni ça</p>\
            <img src=\"a.png\" alt=\"Une image\" data-x=\"y\"></body></html>";
        let (sentences, out) = round_trip(page);
        assert_eq!(sentences, ["Le titre", "Un ici.", "Une image"]);
        assert!(out.starts_with("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>LE TITRE</title>"), "{out}");
        assert!(out.contains("<script>var x = \"<p>non</p>\";</script><style>p{}</style>"));
        assert!(out.contains("<code>code</code>"), "{out}");
        assert!(out.contains("<!-- note -->"));
        assert!(out.contains("<pre>garder  ça</pre><div translate=\"no\">pas ça</div><p class=\"a notranslate\">ni ça</p>"));
        assert!(
            out.contains("<img src=\"a.png\" alt=\"UNE IMAGE\" data-x=\"y\">"),
            "{out}"
        );
    }

    #[test]
    fn escaped_markup_in_french_stays_text() {
        let (sentences, out) = round_trip("<p>Il a écrit &lt;script&gt; &amp; rien.</p>");
        assert_eq!(sentences, ["Il a écrit <script> & rien."]);
        assert_eq!(out, "<p>IL A ÉCRIT &lt;SCRIPT&gt; &amp; RIEN.</p>");
    }

    #[test]
    fn malformed_markup_is_repaired_and_never_fails() {
        let (sentences, out) = round_trip("<p>Un <b>deux <i>trois</b> quatre<p>Cinq</div>");
        assert_eq!(sentences, ["Un deux trois quatre", "Cinq"]);
        assert_eq!(out, "<p>UN <b>DEUX <i>TROIS</i></b> QUATRE<p>CINQ</div>");
        for odd in [
            "<",
            "</",
            "<p",
            "<<>>",
            "<!--",
            "<svg><p>x",
            "&#",
            "<a href='x>y",
            "\u{0}<p>\u{FFFF}",
        ] {
            let _ = round_trip(odd);
        }
    }

    #[test]
    fn a_line_break_ends_a_sentence_and_stays() {
        let (sentences, out) = round_trip("<p>Première ligne<br>seconde ligne</p>");
        assert_eq!(sentences, ["Première ligne", "seconde ligne"]);
        assert_eq!(out, "<p>PREMIÈRE LIGNE<br> SECONDE LIGNE</p>");
    }

    #[test]
    fn windows_1252_is_decoded() {
        let bytes = b"<meta charset=windows-1252><p>caf\xe9</p>";
        assert_eq!(
            decode_page(bytes, false).unwrap(),
            "<meta charset=windows-1252><p>café</p>"
        );
        let html = Html::parse(decode_page(bytes, false).unwrap()).unwrap();
        let out = html.render(&[upper("café")]);
        assert_eq!(out, "<meta charset=\"utf-8\"><p>CAFÉ</p>");
        // Undeclared and not UTF-8: windows-1252, as browsers read French pages.
        assert_eq!(
            decode_page(b"<p>d\xe9j\xe0</p>", false).unwrap(),
            "<p>déjà</p>"
        );
        // Declared UTF-8 that is not: the offset of the bad byte.
        assert_eq!(decode_page(b"<meta charset=utf-8>\xff", false), Err(20));
    }
}
