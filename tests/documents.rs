//! Documents as they come: HTML pages and fragments, Markdown, SRT and WebVTT, through
//! `Markup` and through `traduire translate`. Every output is read back with a real parser
//! (html5ever through scraper, pulldown-cmark, srtparse, vtt).
//!
//! Two kinds of tests:
//! - **Property tests** on generated documents, "translated" with made-up English (one word
//!   per French word, random alignments that cross, reorder and gather): the output parses,
//!   has the same elements with the same attributes (translated ones aside) at the same
//!   depth, and what is not translated is identical. No input bytes make anything panic.
//! - **End to end** with the tiny random checkpoint (`tests/fixtures/marian/tiny-swish`),
//!   whose English is nonsense ("rea rea rea"), often empty: those tests check the plumbing
//!   (formats detected, outputs parse, untranslated content identical, timings kept), never
//!   where a tag lands.

mod common;

use std::path::Path;

use common::cli::{assert_failure, assert_success, run, stdout, traduire};
use proptest::prelude::*;
use traduire::flags::Flags;
use traduire::markup::{InputFormat, Markup};
use traduire::segment::SegmentOptions;
use traduire::translator::{Alignment, Translation};

// --------------------------------------------------------------------------------------------
// Made-up translations
// --------------------------------------------------------------------------------------------

/// Byte ranges of the whitespace-separated words of `text`.
fn words(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// One English word per French word ("w0 w1 ..."), each aligned to a source word picked by
/// `seed` (so alignments cross, reorder, and leave words out).
fn made_up(sentences: &[&str], seed: u64) -> Vec<Translation> {
    let mut state = seed | 1;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    sentences
        .iter()
        .map(|sentence| {
            let source = words(sentence);
            let text: Vec<String> = (0..source.len()).map(|i| format!("w{i}")).collect();
            let text = text.join(" ");
            let target = words(&text);
            let pairs = (0..target.len()).map(|t| (next(source.len()), t)).collect();
            Translation {
                text,
                score: 0.0,
                source_tokens: source.len(),
                target_tokens: target.len(),
                flags: Flags::NONE,
                alternatives: Vec::new(),
                alignment: Some(Alignment {
                    source,
                    target,
                    pairs,
                }),
            }
        })
        .collect()
}

fn translate_with(markup: &Markup, seed: u64) -> String {
    let translations = made_up(&markup.sentences(), seed);
    markup.render(&translations).expect("render")
}

// --------------------------------------------------------------------------------------------
// HTML
// --------------------------------------------------------------------------------------------

/// Attributes translated as text: their values change.
const TRANSLATED: [&str; 5] = ["title", "alt", "placeholder", "aria-label", "lang"];

/// Every element of an HTML document or fragment as (ancestor names, name, attributes
/// without the translated ones), sorted: siblings may change order in a translation.
fn html_elements(html: &str, fragment: bool) -> Vec<String> {
    let doc = if fragment {
        scraper::Html::parse_fragment(html)
    } else {
        scraper::Html::parse_document(html)
    };
    let mut out: Vec<String> = doc
        .root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
        .map(|e| {
            let path: Vec<&str> = e
                .ancestors()
                .filter_map(scraper::ElementRef::wrap)
                .map(|a| a.value().name())
                .collect();
            let mut attrs: Vec<String> = e
                .value()
                .attrs()
                .filter(|(name, _)| !TRANSLATED.contains(name))
                .map(|(n, v)| format!("{n}={v:?}"))
                .collect();
            attrs.sort();
            format!(
                "{}/{} {}",
                path.join("/"),
                e.value().name(),
                attrs.join(" ")
            )
        })
        .collect();
    out.sort();
    out
}

/// The inner HTML of every element of these kinds, sorted (a translation may reorder
/// them).
fn kept_html(html: &str, fragment: bool) -> Vec<String> {
    let doc = if fragment {
        scraper::Html::parse_fragment(html)
    } else {
        scraper::Html::parse_document(html)
    };
    let selector = scraper::Selector::parse("script, style, code, pre, [translate=no]").unwrap();
    let mut out: Vec<String> = doc.select(&selector).map(|e| e.inner_html()).collect();
    out.sort();
    out
}

fn html_word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("maison".to_string()),
        Just("la".to_string()),
        Just("Paris".to_string()),
        Just("&lt;script&gt;".to_string()),
        Just("d&eacute;j&agrave;".to_string()),
        Just("l'été".to_string()),
        Just("«".to_string()),
        Just("vingt.".to_string()),
        Just("rouge,".to_string()),
    ]
}

fn html_inline(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        4 => html_word(),
        1 => Just("<br>".to_string()),
        1 => Just("<img src=\"i.png\" alt=\"Une image\">".to_string()),
        1 => Just("<code>a &lt; b</code>".to_string()),
        1 => Just("<!-- note -->".to_string()),
        1 => Just("<span translate=\"no\">garder  ça</span>".to_string()),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let words = prop::collection::vec(html_inline(depth - 1), 1..4).prop_map(|w| w.join(" "));
    prop_oneof![
        3 => leaf,
        1 => words.clone().prop_map(|w| format!("<a href=\"https://ex.fr/?a=1&amp;b=2\" title=\"Un lien\">{w}</a>")),
        1 => words.clone().prop_map(|w| format!("<b>{w}</b>")),
        1 => words.prop_map(|w| format!("<em class='x'>{w}</em>")),
    ]
    .boxed()
}

fn html_block() -> impl Strategy<Value = String> {
    let inline = prop::collection::vec(html_inline(2), 1..8).prop_map(|w| w.join(" "));
    prop_oneof![
        inline.clone().prop_map(|i| format!("<p>{i}</p>")),
        inline
            .clone()
            .prop_map(|i| format!("<h2 id=\"t\">{i}</h2>")),
        prop::collection::vec(inline.clone(), 1..3).prop_map(|items| {
            let items: Vec<String> = items.iter().map(|i| format!("<li>{i}</li>")).collect();
            format!("<ul>{}</ul>", items.join("\n"))
        }),
        inline
            .clone()
            .prop_map(|i| format!("<div data-x=\"1\"><p>{i}</p>\n{i}</div>")),
        Just("<pre>  garder\n  ça </pre>".to_string()),
        Just("<script>if (a < b) { x = \"<p>non</p>\"; }</script>".to_string()),
        inline.prop_map(|i| format!("<table><tr><td>{i}</td><th>Nom</th></tr></table>")),
    ]
}

fn html_page() -> impl Strategy<Value = (String, bool)> {
    (prop::collection::vec(html_block(), 1..5), any::<bool>()).prop_map(|(blocks, fragment)| {
        let body = blocks.join("\n");
        if fragment {
            (body, true)
        } else {
            (
                format!(
                    "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Le titre</title>\
                     <style>p {{ color: red }}</style></head>\n<body>\n{body}\n</body></html>\n"
                ),
                false,
            )
        }
    })
}

proptest! {
    /// Generated pages and fragments: the output parses to the same elements with the same
    /// attributes at the same depth, what is never translated is identical, escaped French
    /// markup stays text, and a page says `lang="en"` while a fragment gains nothing.
    #[test]
    fn html_keeps_its_elements((page, fragment) in html_page(), seed in any::<u64>()) {
        let markup = Markup::parse(page.clone(), InputFormat::Html, &SegmentOptions::default()).unwrap();
        let out = translate_with(&markup, seed);
        prop_assert_eq!(html_elements(&out, fragment), html_elements(&page, fragment), "{}", out);
        prop_assert_eq!(kept_html(&out, fragment), kept_html(&page, fragment));
        // No `<script>` appeared from the escaped French `&lt;script&gt;`.
        prop_assert_eq!(out.matches("<script").count(), page.matches("<script").count());
        if fragment {
            prop_assert!(!out.contains("<html") && !out.contains("lang="), "{}", out);
        } else {
            prop_assert!(out.contains("<html lang=\"en\">"));
        }
        // Determinism.
        prop_assert_eq!(translate_with(&markup, seed), out);
    }

    /// Arbitrary bytes, as HTML, Markdown, SRT and WebVTT: decoding, parsing and rendering
    /// never panic; HTML and Markdown always parse.
    #[test]
    fn documents_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), seed in any::<u64>()) {
        for format in InputFormat::ALL {
            let Ok(text) = format.decode(bytes.clone(), "fuzz", true) else { continue };
            if let Ok(markup) = Markup::parse(text, format, &SegmentOptions::default()) {
                let _ = translate_with(&markup, seed);
                let _ = markup.plain_text();
            }
        }
    }

    /// Arbitrary markup-heavy text the same way.
    #[test]
    fn documents_from_tag_soup(pieces in prop::collection::vec(prop_oneof![
        Just("<p>"), Just("</p>"), Just("<b>"), Just("</i>"), Just("<a href=x>"), Just("<br/>"),
        Just("<!--"), Just("-->"), Just("<script>"), Just("</script>"), Just("<svg>"), Just("&amp"),
        Just("**"), Just("["), Just("](u)"), Just("`"), Just("\n\n"), Just("\n"), Just("- "),
        Just("# "), Just("| a |"), Just("00:00:01,000 --> 00:00:02,000"), Just("WEBVTT"),
        Just("{\\an8}"), Just("mot"), Just("Il pleut."), Just(" "), Just("é"),
    ], 0..40), seed in any::<u64>()) {
        let text = pieces.concat();
        for format in InputFormat::ALL {
            if let Ok(markup) = Markup::parse(text.clone(), format, &SegmentOptions::default()) {
                let out = translate_with(&markup, seed);
                if format == InputFormat::Markdown {
                    let _ = pulldown_cmark::Parser::new(&out).count();
                }
            }
        }
    }
}

#[test]
fn french_that_reads_like_markup_stays_text() {
    let page = "<p>Il a écrit &lt;script&gt;alert(1)&lt;/script&gt; dans le champ.</p>";
    let markup = Markup::parse(page.into(), InputFormat::Html, &SegmentOptions::default()).unwrap();
    assert_eq!(
        markup.sentences(),
        ["Il a écrit <script>alert(1)</script> dans le champ."]
    );
    // Whatever the translation says, its text is escaped once.
    let english = Translation {
        text: "He wrote <script>alert(1)</script> in the field.".into(),
        ..made_up(&markup.sentences(), 1).remove(0)
    };
    let out = markup.render(&[english]).unwrap();
    assert_eq!(
        out,
        "<p>He wrote &lt;script&gt;alert(1)&lt;/script&gt; in the field.</p>"
    );
    let doc = scraper::Html::parse_fragment(&out);
    let script = scraper::Selector::parse("script").unwrap();
    assert_eq!(doc.select(&script).count(), 0);
}

// --------------------------------------------------------------------------------------------
// Markdown
// --------------------------------------------------------------------------------------------

/// The structure of a Markdown document: each element as its path of tag names with link
/// and image destinations, plus inline code, code blocks and HTML, sorted.
fn markdown_structure(text: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut in_code = false;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(tag) => {
                let name = match &tag {
                    Tag::Link { dest_url, .. } => format!("link({dest_url})"),
                    Tag::Image { dest_url, .. } => format!("image({dest_url})"),
                    Tag::CodeBlock(_) => {
                        in_code = true;
                        "codeblock".to_string()
                    }
                    Tag::Heading { level, .. } => format!("{level:?}"),
                    other => format!("{other:?}")
                        .split(['(', ' ', '{'])
                        .next()
                        .unwrap_or("")
                        .to_string(),
                };
                path.push(name);
                out.push(path.join("/"));
            }
            Event::End(_) => {
                in_code = false;
                path.pop();
            }
            Event::Code(code) => out.push(format!("{}/`{code}`", path.join("/"))),
            Event::Html(h) | Event::InlineHtml(h) => {
                out.push(format!("{}/html {h}", path.join("/")))
            }
            Event::Text(t) if in_code => out.push(format!("{}/code {t}", path.join("/"))),
            Event::FootnoteReference(f) => out.push(format!("{}/[^{f}]", path.join("/"))),
            _ => {}
        }
    }
    out.sort();
    out
}

fn markdown_inline() -> BoxedStrategy<String> {
    let word = prop_oneof![
        Just("maison"),
        Just("Paris"),
        Just("l'été"),
        Just("vingt."),
        Just("rouge,"),
    ]
    .prop_map(str::to_string);
    let words = prop::collection::vec(word.clone(), 1..4).prop_map(|w| w.join(" "));
    prop_oneof![
        4 => word,
        1 => words.clone().prop_map(|w| format!("**{w}**")),
        1 => words.clone().prop_map(|w| format!("*{w}*")),
        1 => words.clone().prop_map(|w| format!("[{w}](https://ex.fr/a_b?c=d)")),
        1 => words.prop_map(|w| format!("~~{w}~~")),
        1 => Just("`x = 1`".to_string()),
        1 => Just("![Une image](i.png)".to_string()),
        1 => Just("<kbd>Ctrl</kbd>".to_string()),
        1 => Just("[^1]".to_string()),
    ]
    .boxed()
}

fn markdown_document() -> impl Strategy<Value = String> {
    let inline = prop::collection::vec(markdown_inline(), 1..8)
        .prop_map(|w| w.join(" "))
        .boxed();
    let block = prop_oneof![
        inline.clone(),
        inline.clone().prop_map(|i| format!("## {i}")),
        prop::collection::vec(inline.clone(), 1..3).prop_map(|items| {
            items
                .iter()
                .map(|i| format!("- {i}"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
        inline.clone().prop_map(|i| format!("> {i}")),
        Just("```rust\nlet x = \"garder\";\n```".to_string()),
        Just("<div class=\"x\">\nGarder ce bloc HTML.\n</div>".to_string()),
        inline.clone().prop_map(|i| format!(
            "| Ville | Pays |\n|---|---|\n| {} | France |",
            i.replace('|', "")
        )),
    ];
    (prop::collection::vec(block, 1..6), any::<bool>()).prop_map(|(blocks, front)| {
        let mut doc = String::new();
        if front {
            doc.push_str("---\ntitre: Garder\n---\n\n");
        }
        doc.push_str(&blocks.join("\n\n"));
        doc.push_str("\n\n[^1]: Une note.\n\n[ref]: https://ex.fr/ref\n");
        doc
    })
}

proptest! {
    /// Generated Markdown: the output has the same structure (elements, links, images,
    /// code, HTML), and everything outside the translated runs is unchanged.
    #[test]
    fn markdown_keeps_its_structure(doc in markdown_document(), seed in any::<u64>()) {
        let markup = Markup::parse(doc.clone(), InputFormat::Markdown, &SegmentOptions::default()).unwrap();
        let out = translate_with(&markup, seed);
        prop_assert_eq!(markdown_structure(&out), markdown_structure(&doc), "{}", out);
        prop_assert!(out.ends_with("[ref]: https://ex.fr/ref\n"));
        if doc.starts_with("---\n") {
            prop_assert!(out.starts_with("---\ntitre: Garder\n---\n\n"));
        }
    }
}

// --------------------------------------------------------------------------------------------
// Subtitles
// --------------------------------------------------------------------------------------------

fn srt_file() -> impl Strategy<Value = String> {
    let cue_text = prop::collection::vec(
        prop_oneof![
            Just("je"),
            Just("pense"),
            Just("que"),
            Just("oui."),
            Just("Bonjour"),
            Just("<i>vraiment</i>"),
            Just("monde,"),
        ],
        1..6,
    )
    .prop_map(|w| w.join(" "));
    let cue = (
        cue_text,
        100u32..3000,
        0u32..1500,
        any::<bool>(),
        any::<bool>(),
    );
    prop::collection::vec(cue, 1..8).prop_map(|cues| {
        let mut out = String::new();
        let mut t = 1000u32;
        for (i, (text, length, gap, top, two_lines)) in cues.into_iter().enumerate() {
            let stamp = |ms: u32| {
                format!(
                    "{:02}:{:02}:{:02},{:03}",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                )
            };
            let text = if two_lines {
                text.replacen(' ', "\n", 1)
            } else {
                text
            };
            let prefix = if top { "{\\an8}" } else { "" };
            out.push_str(&format!(
                "{}\n{} --> {}\n{prefix}{text}\n\n",
                i + 1,
                stamp(t),
                stamp(t + length)
            ));
            t += length + gap;
        }
        out
    })
}

proptest! {
    /// Generated SRT: srtparse reads the output; every cue keeps its number and timings
    /// and gets some English; lines are at most 42 characters where the text allows.
    #[test]
    fn srt_keeps_its_cues(file in srt_file(), seed in any::<u64>()) {
        let markup = Markup::parse(file.clone(), InputFormat::Srt, &SegmentOptions::default()).unwrap();
        let out = translate_with(&markup, seed);
        let before = srtparse::from_str(&file).expect("the generated file parses");
        let after = srtparse::from_str(&out).expect("the output parses");
        prop_assert_eq!(after.len(), before.len(), "{}", out);
        for (a, b) in after.iter().zip(&before) {
            prop_assert_eq!(a.pos, b.pos);
            prop_assert_eq!(a.start_time, b.start_time);
            prop_assert_eq!(a.end_time, b.end_time);
            prop_assert!(!a.text.trim().is_empty(), "{}", out);
            prop_assert_eq!(a.text.starts_with("{\\an8}"), b.text.starts_with("{\\an8}"));
            prop_assert!(a.text.lines().count() <= 2);
            if a.text.chars().count() <= 84 {
                for line in a.text.lines() {
                    let visible = line.replace("<i>", "").replace("</i>", "").replace("{\\an8}", "");
                    prop_assert!(visible.chars().count() <= 42, "{:?}", a.text);
                }
            }
        }
    }
}

// --------------------------------------------------------------------------------------------
// End to end, with the tiny random model (its English is nonsense)
// --------------------------------------------------------------------------------------------

fn translate_file(path: &Path, args: &[&str]) -> std::process::Output {
    run(
        traduire()
            .arg("translate")
            .arg("--model-dir")
            .arg(common::model_dir("tiny-swish"))
            .args(["--max-new-tokens", "6"])
            .args(args)
            .arg(path),
        b"",
    )
}

const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"windows-1252\">\n<title>La pluie revient sur Paris</title>\n<style>h1 { color: navy }</style>\n</head>\n<body>\n<h1>La pluie revient</h1>\n<p>Les averses <a href=\"https://meteo.example/paris\" title=\"Prévisions\">reprendront</a> dès <strong>mardi matin</strong>, selon <abbr title=\"Météo-France\">MF</abbr>.</p>\n<p>Tapez <code>meteo --ville paris</code> pour en savoir plus.<br>Bonne journée !</p>\n<script>document.title = \"<p>pas traduit</p>\";</script>\n<p translate=\"no\">Le Monde</p>\n<img src=\"pluie.jpg\" alt=\"Des parapluies\">\n</body>\n</html>\n";

#[test]
fn a_web_page_comes_back_as_a_web_page() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("article.html");
    // Declared windows-1252, written in it.
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(PAGE);
    std::fs::write(&input, &bytes).unwrap();
    let out = translate_file(&input, &["-f", "same"]);
    assert_success(&out);
    let html = stdout(&out);
    // The same elements and attributes, but the charset, which is now UTF-8.
    let utf8_page = PAGE.replace("windows-1252", "utf-8");
    assert_eq!(
        html_elements(&html, false),
        html_elements(&utf8_page, false),
        "{html}"
    );
    assert_eq!(kept_html(&html, false), kept_html(PAGE, false));
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<code>meteo --ville paris</code>"));
    assert!(html.contains("<p translate=\"no\">Le Monde</p>"));
    assert!(html.contains("<script>document.title = \"<p>pas traduit</p>\";</script>"));
    // The bilingual formats read the same sentences.
    let out = translate_file(&input, &["-f", "jsonl"]);
    assert_success(&out);
    let fr: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["fr"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        fr,
        [
            "La pluie revient sur Paris",
            "La pluie revient",
            "Les averses reprendront dès mardi matin, selon MF.",
            "Prévisions",
            "Météo-France",
            "Tapez pour en savoir plus.",
            "Bonne journée !",
            "Des parapluies"
        ]
    );
}

#[test]
fn markdown_and_subtitles_come_back_in_their_format() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("billet.md");
    let markdown = "# Le billet\n\nUn **mot** et [un lien](https://ex.fr/a_b).\n\n```\nne pas traduire\n```\n\n- Lancez `make` puis attendez.\n";
    std::fs::write(&md, markdown).unwrap();
    let out = translate_file(&md, &["-f", "same"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("```\nne pas traduire\n```"), "{text}");
    assert!(
        text.contains("`make`") && text.contains("(https://ex.fr/a_b)"),
        "{text}"
    );
    assert!(text.starts_with("# "));
    let _ = pulldown_cmark::Parser::new(&text).count();

    let srt = dir.path().join("film.srt");
    let subtitles = "1\n00:00:01,000 --> 00:00:02,500\n{\\an8}Je pense\n\n2\n00:00:02,900 --> 00:00:04,000\nque <i>oui</i>.\n\n3\n00:00:06,000 --> 00:00:08,000\nÀ demain.\n";
    std::fs::write(&srt, subtitles).unwrap();
    let out = translate_file(&srt, &["-f", "same"]);
    assert_success(&out);
    let after = srtparse::from_str(stdout(&out)).expect("SRT output parses");
    let before = srtparse::from_str(subtitles).unwrap();
    assert_eq!(after.len(), 3);
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(
            (a.pos, a.start_time, a.end_time),
            (b.pos, b.start_time, b.end_time)
        );
        assert!(!a.text.trim().is_empty());
    }
    assert!(after[0].text.starts_with("{\\an8}"));

    let vtt = dir.path().join("film.vtt");
    let webvtt = "WEBVTT\n\n1\n00:01.000 --> 00:02.500 align:start\nJe pense\n\n2\n00:02.900 --> 00:04.000\nque <i>oui</i>.\n";
    std::fs::write(&vtt, webvtt).unwrap();
    let out = translate_file(&vtt, &["-f", "same"]);
    assert_success(&out);
    let text = stdout(&out);
    let parsed: vtt::prelude::WebVtt = text.parse().expect("WebVTT output parses");
    assert_eq!(parsed.cues.len(), 2);
    assert!(text.contains("00:01.000 --> 00:02.500 align:start\n"));
    assert!(parsed.cues.iter().all(|c| !c.payload.trim().is_empty()));
}

#[test]
fn format_detection_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    // By content when the name says nothing.
    let page = dir.path().join("page");
    std::fs::write(&page, "<!DOCTYPE html><p>Bonjour <b>Paris</b>.</p>").unwrap();
    let out = translate_file(&page, &["-f", "same"]);
    assert_success(&out);
    assert!(
        stdout(&out).starts_with("<!DOCTYPE html><html lang=\"en\">")
            || stdout(&out).starts_with("<!DOCTYPE html><p>")
    );
    // Plain text stays plain text, even with a Markdown-looking heading.
    let text = dir.path().join("a.txt");
    std::fs::write(&text, "# Titre\n\nUn [lien](u).\n").unwrap();
    let out = translate_file(&text, &["-f", "jsonl"]);
    assert_success(&out);
    assert!(stdout(&out).contains("\"fr\":\"Un [lien](u).\""));
    // A broken timestamp names the file and the line.
    let srt = dir.path().join("bad.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:02,000\nUn.\n\n2\n00:00:0x,000 --> 00:00:03,000\nDeux.\n",
    )
    .unwrap();
    let err = assert_failure(&translate_file(&srt, &["-f", "same"]));
    assert!(
        err.contains(&format!("{}: line 6: broken timestamp", srt.display())),
        "{err}"
    );
    // --sentences is for plain text.
    let err = assert_failure(&translate_file(
        &srt,
        &["--input-format", "srt", "--sentences"],
    ));
    assert!(err.contains("--sentences"), "{err}");
    // Several inputs with -f same need a directory.
    let out = run(
        traduire()
            .args(["translate", "-f", "same"])
            .arg(&text)
            .arg(&page),
        b"",
    );
    let err = assert_failure(&out);
    assert!(err.contains("-o an existing directory"), "{err}");
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = run(
        traduire()
            .arg("translate")
            .arg("--model-dir")
            .arg(common::model_dir("tiny-swish"))
            .args(["--max-new-tokens", "6", "-f", "same", "-o"])
            .arg(&outdir)
            .arg(&text)
            .arg(&page),
        b"",
    );
    assert_success(&out);
    assert!(outdir.join("a.txt").is_file() && outdir.join("page").is_file());
}

#[test]
fn corpus_documents_read_html_and_markdown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let articles = dir.path().join("articles");
    std::fs::create_dir(&articles).unwrap();
    std::fs::write(
        articles.join("a.html"),
        "<html><head><script>var x;</script></head><body><p>Il <b>pleut</b>.</p></body></html>",
    )
    .unwrap();
    std::fs::write(
        articles.join("b.md"),
        "# Titre\n\nUn [lien](https://ex.fr).\n\n```\ncode\n```\n",
    )
    .unwrap();
    let output = dir.path().join("out.tsv");
    let out = run(
        traduire()
            .args([
                "corpus",
                "--documents",
                "-f",
                "tsv",
                "--quiet",
                "--max-new-tokens",
                "4",
                "--model-dir",
            ])
            .arg(common::model_dir("tiny-swish"))
            .arg(&articles)
            .arg("-o")
            .arg(&output),
        b"",
    );
    assert_success(&out);
    let tsv = std::fs::read_to_string(&output).unwrap();
    let fr: Vec<&str> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(fr, ["Il pleut.", "Titre", "Un lien."]);
}

// --------------------------------------------------------------------------------------------
// End to end, with the copy model: the projection seen working
// --------------------------------------------------------------------------------------------

/// A page whose every sentence the copy model copies exactly (it drops some characters of its
/// own accord, such as `!`, `<` and a capital `V` or `À` opening a sentence, so the texts
/// avoid them).
const COPY_PAGE: &str = r#"<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>La pluie revient sur Paris</title>
<style>h1 { color: navy }</style>
</head>
<body>
<h1>La pluie revient</h1>
<p>Les averses <a href="https://meteo.example/paris" title="Prévisions">reprendront</a> dès <strong>mardi matin</strong>, selon <abbr title="Météo-France">MF</abbr>.</p>
<p>Tapez <code>meteo --ville paris</code> pour en savoir plus.<br>Bonne journée.</p>
<ul>
<li>Il a écrit un article dans le champ.</li>
<li><em>Attention</em> aux <b>orages <i>violents</i></b> demain.</li>
</ul>
<script>document.title = "<p>pas traduit</p>";</script>
<p translate="no">Le Monde</p>
<img src="pluie.jpg" alt="Des parapluies">
</body>
</html>
"#;

const COPY_MARKDOWN: &str = r#"---
titre: Garder
---

# Le billet du jour

Un **mot** et [un lien](https://ex.fr/a_b "titre") ici, puis *une emphase*.

```
ne pas traduire
```

- Lancez `make` puis attendez.
- Regardez [Paris][] et la note[^1].

| Cité | Pays |
|---|---|
| Lyon | France |

> Une citation.

![Une image](i.png)

[^1]: Une note.

[Paris]: https://paris.fr
"#;

const COPY_VTT: &str = r#"WEBVTT

STYLE
::cue { color: yellow }

NOTE garder ceci

1
00:01.000 --> 00:02.500 align:start line:10%
<v Marie>Je pense

2
00:02.900 --> 00:04.000
que <i>oui</i>.

3
00:06.000 --> 00:08.000
{\an8}Bonne nuit.
"#;

const COPY_SRT: &str = r#"1
00:00:01,000 --> 00:00:02,500
{\an8}Je pense

2
00:00:02,900 --> 00:00:04,000
que <i>oui</i>.

3
00:00:06,000 --> 00:00:08,000
Les averses reprendront dès mardi matin, selon la météo nationale.
"#;

/// `traduire translate` with the copy model (`tests/fixtures/marian/copy`), greedy.
fn copy_translate(path: &Path, args: &[&str]) -> String {
    let out = run(
        traduire()
            .arg("translate")
            .arg("--model-dir")
            .arg(common::model_dir("copy"))
            .args(["--beams", "1"])
            .args(args)
            .arg(path),
        b"",
    );
    assert_success(&out);
    stdout(&out)
}

/// With a model that copies its input and aligns each token with itself, a document comes
/// back as it was, but for what the format itself changes: `lang="en"`, the space the
/// joined sentences put after a `<br>`, a collapsed reference link written in full, and a
/// cue longer than 42 characters wrapped on two lines. Every alignment is the diagonal.
#[test]
fn the_copy_model_gives_every_document_back() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "page.html",
            COPY_PAGE,
            COPY_PAGE
                .replace("<html lang=\"fr\">", "<html lang=\"en\">")
                .replace("<br>Bonne", "<br> Bonne"),
        ),
        (
            "billet.md",
            COPY_MARKDOWN,
            COPY_MARKDOWN.replace("[Paris][]", "[Paris][Paris]"),
        ),
        ("film.vtt", COPY_VTT, COPY_VTT.to_string()),
        (
            "film.srt",
            COPY_SRT,
            COPY_SRT.replace("mardi matin, selon", "mardi\nmatin, selon"),
        ),
    ];
    for (name, source, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, source).unwrap();
        assert_eq!(copy_translate(&path, &["-f", "same"]), expected, "{name}");
        for line in copy_translate(&path, &["-f", "jsonl", "--alignments"]).lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["fr"], record["en"], "{name}: {record}");
            let alignment = record["alignment"].as_str().expect("an alignment");
            for pair in alignment.split_whitespace() {
                let (s, t) = pair.split_once('-').expect("s-t");
                assert_eq!(s, t, "{name}: {record}");
            }
        }
    }
}
