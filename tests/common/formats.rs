//! Readers for the output formats, used to check the writers by parsing what they wrote with a
//! real parser (quick-xml for TMX and HTML, pulldown-cmark for Markdown, serde_json for JSONL).

use quick_xml::events::Event;

/// Undoes the TSV writer's escapes (`\\`, `\t`, `\n`, `\r`).
pub fn tsv_unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            other => panic!("bad TSV escape \\{other:?} in {field:?}"),
        }
    }
    out
}

/// Appends the text of a quick-xml text or reference event.
fn push_text(event: &Event<'_>, into: &mut String) {
    match event {
        Event::Text(t) => into.push_str(&t.decode().expect("UTF-8")),
        Event::GeneralRef(r) => match r.resolve_char_ref().expect("character reference") {
            Some(c) => into.push(c),
            None => {
                let name = r.decode().expect("UTF-8");
                let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                    .unwrap_or_else(|| panic!("unknown entity &{name};"));
                into.push_str(resolved);
            }
        },
        _ => {}
    }
}

/// A TMX document: its `srclang` and, per `<tu>`, the `(xml:lang, seg text)` pairs.
pub fn parse_tmx(xml: &str) -> (String, Vec<Vec<(String, String)>>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut srclang = String::new();
    let mut units: Vec<Vec<(String, String)>> = Vec::new();
    let mut lang = String::new();
    let mut seg: Option<String> = None;
    loop {
        let event = reader.read_event().expect("well-formed TMX");
        match &event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"header" => {
                    let attr = e
                        .try_get_attribute("srclang")
                        .expect("attribute")
                        .expect("srclang");
                    srclang = attr.unescape_value().expect("value").into_owned();
                }
                b"tu" => units.push(Vec::new()),
                b"tuv" => {
                    let attr = e
                        .try_get_attribute("xml:lang")
                        .expect("attribute")
                        .expect("xml:lang");
                    lang = attr.unescape_value().expect("value").into_owned();
                }
                b"seg" => seg = Some(String::new()),
                _ => {}
            },
            Event::Text(_) | Event::GeneralRef(_) => {
                if let Some(seg) = seg.as_mut() {
                    push_text(&event, seg);
                }
            }
            Event::End(e) if e.name().as_ref() == b"seg" => {
                let text = seg.take().expect("inside <seg>");
                units
                    .last_mut()
                    .expect("<seg> inside <tu>")
                    .push((lang.clone(), text));
            }
            _ => {}
        }
    }
    (srclang, units)
}

/// The text of every element of class `src` or `tgt` of an HTML page written by traduire, in
/// order, as `(class, text)`. The page is HTML5 (unclosed `<meta>`), read leniently.
pub fn parse_html_cells(html: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(html);
    reader.config_mut().check_end_names = false;
    let mut cells = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        let event = reader.read_event().expect("parsable HTML");
        match &event {
            Event::Eof => break,
            Event::Start(e) => {
                let class = e
                    .try_get_attribute("class")
                    .ok()
                    .flatten()
                    .map(|a| a.unescape_value().expect("value").into_owned());
                if let Some(class @ ("src" | "tgt")) = class.as_deref() {
                    current = Some((class.to_string(), String::new()));
                }
            }
            Event::Text(_) | Event::GeneralRef(_) => {
                if let Some((_, text)) = current.as_mut() {
                    push_text(&event, text);
                }
            }
            Event::End(_) => {
                if let Some(cell) = current.take() {
                    cells.push(cell);
                }
            }
            _ => {}
        }
    }
    cells
}

/// The cells of every table row of a Markdown document, parsed with pulldown-cmark (GitHub
/// tables), header rows excluded (pulldown-cmark puts them outside rows); a `<br>` inside a
/// cell reads as a line break.
pub fn parse_markdown_rows(markdown: &str) -> Vec<Vec<String>> {
    use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};
    let mut rows = Vec::new();
    let mut row: Option<Vec<String>> = None;
    let mut cell: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Md::Start(Tag::TableRow) => row = Some(Vec::new()),
            Md::End(TagEnd::TableRow) => rows.extend(row.take()),
            Md::Start(Tag::TableCell) => cell = Some(String::new()),
            Md::End(TagEnd::TableCell) => {
                if let (Some(row), Some(cell)) = (row.as_mut(), cell.take()) {
                    row.push(cell);
                }
            }
            Md::Text(t) | Md::Code(t) => {
                if let Some(cell) = cell.as_mut() {
                    cell.push_str(&t);
                }
            }
            Md::InlineHtml(h) | Md::Html(h) if h.as_ref() == "<br>" => {
                if let Some(cell) = cell.as_mut() {
                    cell.push('\n');
                }
            }
            Md::InlineHtml(h) | Md::Html(h) => {
                if let Some(cell) = cell.as_mut() {
                    cell.push_str(&h);
                }
            }
            Md::SoftBreak | Md::HardBreak => {
                if let Some(cell) = cell.as_mut() {
                    cell.push('\n');
                }
            }
            _ => {}
        }
    }
    rows
}
