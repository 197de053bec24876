//! Output writers, checked through the public API by parsing each format back.

use std::fs;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::Reader;
use traduire::flags::{Flag, Flags};
use traduire::write::{
    is_broken_pipe, open_writer, BilingualDocument, BilingualParagraph, BilingualSentence, Format,
    Output, ParagraphKind, WriterOptions,
};

fn sentence(fr: &str, en: &str, score: f32) -> BilingualSentence {
    BilingualSentence {
        fr: fr.to_string(),
        en: en.to_string(),
        score,
        flags: Flags::NONE,
        alignment: None,
    }
}

fn flagged(fr: &str, en: &str, score: f32, flags: Flags) -> BilingualSentence {
    BilingualSentence {
        flags,
        ..sentence(fr, en, score)
    }
}

/// The flags column of every row, in order.
fn expected_flags(docs: &[BilingualDocument]) -> Vec<String> {
    docs.iter()
        .flat_map(|d| &d.paragraphs)
        .flat_map(|p| &p.sentences)
        .map(|s| s.flags.text())
        .collect()
}

/// A document full of content that breaks naive writers.
fn awkward_document() -> BilingualDocument {
    BilingualDocument {
        name: "dir/article \"un\" & <deux>.txt".to_string(),
        paragraphs: vec![
            BilingualParagraph {
                kind: ParagraphKind::Title,
                sentences: vec![sentence("Le « grand » titre | <script>", "The \"big\" title | <script>", -0.1)],
            },
            BilingualParagraph {
                kind: ParagraphKind::Heading,
                sentences: vec![sentence("Sous-titre & co", "Subtitle & co", 0.0)],
            },
            BilingualParagraph {
                kind: ParagraphKind::Paragraph,
                sentences: vec![
                    sentence(
                        "Il a dit : <script>alert('x')</script> & «\u{a0}bonjour\u{a0}».",
                        "He said: <script>alert('x')</script> & \"hello\".",
                        -0.25,
                    ),
                    sentence("Une\ttabulation et un\nretour, puis\r\nCRLF.", "A\ttab and a\nnewline, then\r\nCRLF.", 1.0),
                    sentence("Emoji 🇫🇷 😀 et CJK 日本語, barre | et \\ antislash.", "Emoji 🇫🇷 😀 and CJK 日本語, bar | and \\ backslash.", f32::NAN),
                    sentence("Contrôle\u{1}\u{7}\u{1b}[31m et \u{fffe}\u{ffff}.", "Control\u{0}\u{b}\u{c} and \u{2028} sep.", f32::NEG_INFINITY),
                    sentence("", "", 0.5),
                    flagged(
                        "Les prix.",
                        "The prices prices prices prices prices prices prices prices",
                        -3.0,
                        Flags::NONE.with(Flag::Repeat).with(Flag::LengthLimit),
                    ),
                ],
            },
            // Empty paragraphs produce no output rows in any format.
            BilingualParagraph { kind: ParagraphKind::Paragraph, sentences: vec![] },
            BilingualParagraph {
                kind: ParagraphKind::Paragraph,
                sentences: vec![sentence(
                    "Un très long paragraphe avec anticonstitutionnellement beaucoup de mots qui devra être replié sur plusieurs lignes.",
                    "A very long paragraph with unconstitutionally many words that will have to be wrapped over several lines.",
                    -1.5,
                )],
            },
        ],
    }
}

fn second_document() -> BilingualDocument {
    BilingualDocument {
        name: "-".to_string(),
        paragraphs: vec![BilingualParagraph {
            kind: ParagraphKind::Paragraph,
            sentences: vec![sentence("Deuxième document.", "Second document.", -0.2)],
        }],
    }
}

fn documents() -> Vec<BilingualDocument> {
    vec![awkward_document(), second_document()]
}

/// Every (fr, en) pair, in order.
fn pairs(docs: &[BilingualDocument]) -> Vec<(String, String)> {
    docs.iter()
        .flat_map(|d| &d.paragraphs)
        .flat_map(|p| &p.sentences)
        .map(|s| (s.fr.clone(), s.en.clone()))
        .collect()
}

/// Rows as (doc, paragraph, sentence, fr, en, score) with the scores the writers promise.
fn expected_rows(docs: &[BilingualDocument]) -> Vec<(String, usize, usize, String, String, f32)> {
    let mut rows = Vec::new();
    for doc in docs {
        for (p, paragraph) in doc.paragraphs.iter().enumerate() {
            for (s, sent) in paragraph.sentences.iter().enumerate() {
                let score = if sent.score.is_finite() {
                    sent.score
                } else {
                    f32::MIN
                };
                rows.push((
                    doc.name.clone(),
                    p,
                    s,
                    sent.fr.clone(),
                    sent.en.clone(),
                    score,
                ));
            }
        }
    }
    rows
}

fn write_all(format: Format, path: &Path, options: &WriterOptions) {
    let mut writer = open_writer(format, Output::File(path.to_path_buf()), options).unwrap();
    for doc in documents() {
        writer.write_document(&doc).unwrap();
    }
    writer.finish().unwrap();
}

fn render(format: Format, options: &WriterOptions) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    write_all(format, &path, options);
    fs::read_to_string(&path).unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The TMX writer's documented replacement of characters illegal in XML 1.0.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

#[test]
fn tmx_parses_back_to_the_same_pairs() {
    let tmx = render(Format::Tmx, &WriterOptions::default());
    assert!(tmx.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tmx SYSTEM \"tmx14.dtd\">"
    ));
    assert!(tmx.contains(r#"<tmx version="1.4">"#));
    assert!(tmx.contains(r#"srclang="fr""#) && tmx.contains(r#"segtype="sentence""#));

    let mut reader = Reader::from_str(&tmx);
    let mut segs: Vec<(String, String)> = Vec::new(); // (lang, text)
    let mut docs = Vec::new();
    let mut lang = None;
    let mut text: Option<String> = None;
    let mut prop = None;
    let mut flag_props = Vec::new();
    loop {
        match reader.read_event().expect("TMX must be well-formed XML") {
            Event::Start(e) if e.name().as_ref() == b"tuv" => {
                let attr = e.try_get_attribute("xml:lang").unwrap().unwrap();
                lang = Some(attr.unescape_value().unwrap().into_owned());
            }
            Event::Start(e) if e.name().as_ref() == b"seg" => text = Some(String::new()),
            Event::Start(e) if e.name().as_ref() == b"prop" => {
                let attr = e.try_get_attribute("type").unwrap().unwrap();
                prop = Some(attr.unescape_value().unwrap().into_owned());
                text = Some(String::new());
            }
            // `xml10_content` applies XML's end-of-line normalisation, as any XML parser would.
            Event::Text(t) => {
                if let Some(buf) = text.as_mut() {
                    buf.push_str(&t.xml10_content().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(buf) = text.as_mut() {
                    match r.resolve_char_ref().unwrap() {
                        Some(c) => buf.push(c),
                        None => {
                            let name = r.decode().unwrap();
                            buf.push_str(
                                quick_xml::escape::resolve_predefined_entity(&name).unwrap(),
                            );
                        }
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == b"seg" => {
                segs.push((lang.take().unwrap(), text.take().unwrap()));
            }
            Event::End(e) if e.name().as_ref() == b"prop" => {
                let value = text.take().unwrap();
                match prop.take().as_deref() {
                    Some("x-doc") => docs.push(value),
                    Some("x-flags") => flag_props.push(value),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let parsed: Vec<(String, String)> = segs
        .chunks(2)
        .map(|pair| {
            assert_eq!(pair[0].0, "fr");
            assert_eq!(pair[1].0, "en");
            (pair[0].1.clone(), pair[1].1.clone())
        })
        .collect();
    let expected: Vec<(String, String)> = pairs(&documents())
        .into_iter()
        .map(|(fr, en)| (xml_safe(&fr), xml_safe(&en)))
        .collect();
    assert_eq!(parsed, expected);
    let expected_docs: Vec<String> = expected_rows(&documents())
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(docs, expected_docs);
    // Only flagged units carry the property.
    assert_eq!(flag_props, vec!["repeat,length_limit".to_string()]);
}

#[test]
fn tsv_parses_back_field_by_field() {
    let tsv = render(Format::Tsv, &WriterOptions::default());
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("doc\tparagraph\tsentence\tfr\ten\tscore\tflags")
    );
    let unescape = |field: &str| {
        let mut out = String::new();
        let mut chars = field.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('\\') => out.push('\\'),
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    other => panic!("bad escape {other:?} in {field:?}"),
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let mut flags = Vec::new();
    let rows: Vec<_> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 7, "line {line:?}");
            flags.push(fields[6].to_string());
            (
                unescape(fields[0]),
                fields[1].parse::<usize>().unwrap(),
                fields[2].parse::<usize>().unwrap(),
                unescape(fields[3]),
                unescape(fields[4]),
                fields[5].parse::<f32>().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, expected_rows(&documents()));
    assert_eq!(flags, expected_flags(&documents()));
    assert!(flags.contains(&"repeat,length_limit".to_string()));
}

#[test]
fn jsonl_parses_back_with_consistent_types() {
    let jsonl = render(Format::Jsonl, &WriterOptions::default());
    let expected = expected_rows(&documents());
    let lines: Vec<&str> = jsonl.lines().collect();
    assert_eq!(lines.len(), expected.len());
    let expected_flags = expected_flags(&documents());
    for ((line, row), flags) in lines.iter().zip(&expected).zip(&expected_flags) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = value.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 8, "{line}");
        let names: Vec<&str> = object["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names.join(","), *flags, "{line}");
        assert_eq!(object["doc"].as_str().unwrap(), row.0);
        assert_eq!(object["paragraph"].as_u64().unwrap() as usize, row.1);
        assert_eq!(object["sentence"].as_u64().unwrap() as usize, row.2);
        assert!(["title", "heading", "paragraph"].contains(&object["kind"].as_str().unwrap()));
        assert_eq!(object["fr"].as_str().unwrap(), row.3);
        assert_eq!(object["en"].as_str().unwrap(), row.4);
        // Always a float literal (never an integer, null or NaN), so the column type is stable.
        assert!(object["score"].is_f64(), "{line}");
        assert_eq!(object["score"].as_f64().unwrap() as f32, row.5);
    }
    assert!(jsonl.contains(r#""score":1.0"#));
}

/// With `alignments`, TSV gains an `alignment` column and JSONL an `alignment` key, holding
/// each sentence's Marian-style pairs (empty / absent when a sentence has none).
#[test]
fn alignments_are_a_column_and_a_key() {
    let mut aligned = sentence("Le chat dort.", "The cat sleeps.", -0.5);
    aligned.alignment = Some("0-0 1-1 2-2 3-3".to_string());
    let unaligned = sentence("Oui.", "Yes.", -0.1);
    let doc = BilingualDocument {
        name: "a.txt".into(),
        paragraphs: vec![BilingualParagraph {
            kind: ParagraphKind::Paragraph,
            sentences: vec![aligned, unaligned],
        }],
    };
    let options = WriterOptions {
        alignments: true,
        ..WriterOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let read = |format: Format| {
        let path = dir.path().join(format.name());
        let mut writer = open_writer(format, Output::File(path.clone()), &options).unwrap();
        writer.write_document(&doc).unwrap();
        writer.finish().unwrap();
        std::fs::read_to_string(path).unwrap()
    };
    let tsv = read(Format::Tsv);
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(
        lines[0],
        "doc\tparagraph\tsentence\tfr\ten\tscore\tflags\talignment"
    );
    assert!(lines[1].ends_with("\t\t0-0 1-1 2-2 3-3"), "{tsv}");
    assert_eq!(lines[2].split('\t').count(), 8, "{tsv}");
    assert!(lines[2].ends_with("\t\t"), "{tsv}");
    let jsonl = read(Format::Jsonl);
    let records: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["alignment"], "0-0 1-1 2-2 3-3");
    assert!(records[1].get("alignment").is_none());
    // Without the option, nothing changes.
    let plain = render(Format::Tsv, &WriterOptions::default());
    assert!(plain.starts_with("doc\tparagraph\tsentence\tfr\ten\tscore\tflags\n"));
}

#[test]
fn html_is_escaped_and_keeps_headings() {
    let html = render(Format::Html, &WriterOptions::default());
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(
        !html.to_lowercase().contains("<script"),
        "unescaped script tag"
    );
    assert!(html.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"));
    assert!(html.contains("&quot;big&quot;"));
    assert!(html.contains("Sous-titre &amp; co"));
    assert!(html.contains("dir/article &quot;un&quot; &amp; &lt;deux&gt;.txt"));
    assert!(
        html.contains("<h1 class=\"src\" lang=\"fr\">")
            && html.contains("<h2 class=\"tgt\" lang=\"en\">")
    );
    assert!(!html.contains('\u{1}') && !html.contains('\u{0}'));
    assert!(html.trim_end().ends_with("</html>"));
    // The page title is the English title of the first document, escaped.
    assert!(html.contains("<title>The &quot;big&quot; title | &lt;script&gt;</title>"));
}

#[test]
fn markdown_has_one_row_per_sentence() {
    let md = render(Format::Markdown, &WriterOptions::default());
    let headers = md
        .lines()
        .filter(|l| *l == "| Français | English |")
        .count();
    let separators = md.lines().filter(|l| *l == "| --- | --- |").count();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with('|') && *l != "| Français | English |" && *l != "| --- | --- |")
        .collect();
    assert_eq!(rows.len(), pairs(&documents()).len());
    assert_eq!(headers, separators);
    assert_eq!(headers, 5, "one table per non-empty paragraph");
    for row in &rows {
        // Exactly three unescaped pipes: two cells.
        let bare_pipes = row
            .match_indices('|')
            .filter(|(i, _)| !row[..*i].ends_with('\\'))
            .count();
        assert_eq!(bare_pipes, 3, "{row}");
    }
    assert!(!md.contains("<script"));
    assert!(md.contains("| **Le « grand » titre \\| &lt;script&gt;** |"));
    assert!(md.contains("# standard input"));
}

#[test]
fn moses_files_are_line_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("corpus");
    write_all(Format::Moses, &prefix, &WriterOptions::default());
    assert_eq!(
        files_in(dir.path()),
        vec![dir.path().join("corpus.en"), dir.path().join("corpus.fr")]
    );
    let fr = fs::read_to_string(dir.path().join("corpus.fr")).unwrap();
    let en = fs::read_to_string(dir.path().join("corpus.en")).unwrap();
    let expected = pairs(&documents());
    // Python's splitlines is the strictest reader: it must see the same number of lines.
    let breaks = |s: &str| {
        s.chars()
            .filter(|c| {
                matches!(
                    c,
                    '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}'
                        ..='\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
                )
            })
            .count()
    };
    assert_eq!(breaks(&fr), expected.len());
    assert_eq!(breaks(&en), expected.len());
    assert!(!fr.contains('\t') && !en.contains('\t'));
    assert_eq!(
        fr.lines().nth(3),
        Some("Une tabulation et un retour, puis  CRLF.")
    );
}

#[test]
fn moses_to_stdout_is_a_clear_error() {
    let err = open_writer(Format::Moses, Output::Stdout, &WriterOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("PREFIX.fr"), "{err}");
}

#[test]
fn text_shows_every_sentence() {
    let text = render(Format::Text, &WriterOptions::default());
    // Control characters (other than tab) show as U+FFFD: a terminal never gets an escape
    // sequence from a translation.
    let shown = |line: &str| -> String {
        line.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect()
    };
    assert!(!text.contains('\u{1b}'));
    for (fr, en) in pairs(&documents()) {
        for line in fr.lines() {
            assert!(text.lines().any(|l| l == shown(line)), "missing {line:?}");
        }
        for line in en.lines() {
            assert!(text.contains(&shown(line)), "missing {line:?}");
        }
    }
    assert!(text.starts_with("==> dir/article \"un\" & <deux>.txt <==\n"));
    assert!(text.contains("\n==> standard input <==\n"));
    assert!(text.contains("Deuxième document.\n  → Second document.\n"));
}

#[test]
fn text_columns_fit_the_width() {
    for width in [30, 57, 80, 120] {
        let options = WriterOptions {
            columns: Some(width),
            ..WriterOptions::default()
        };
        let text = render(Format::Text, &options);
        // Document headers (`==> name <==`) are never cut: a truncated file name helps nobody.
        for line in text.lines().filter(|l| !l.starts_with("==> ")) {
            let shown: usize = line
                .chars()
                .map(|c| unicode_width::UnicodeWidthChar::width(c).unwrap_or(0))
                .sum();
            assert!(shown <= width, "{shown} > {width}: {line:?}");
            assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        }
        // Every character is still there, in its own column: words wider than a column are
        // cut across lines, never dropped. Rebuild each column from the lines and compare
        // without whitespace (wrapping only moves characters to the next line).
        let (mut left, mut right) = (String::new(), String::new());
        for line in text.lines().filter(|l| l.contains(" │ ")) {
            let (l, r) = line.split_once(" │ ").unwrap();
            left.extend(l.chars().filter(|c| !c.is_whitespace()));
            right.extend(r.chars().filter(|c| !c.is_whitespace()));
        }
        for word in [
            "anticonstitutionnellement",
            "😀",
            "日本語,",
            "Deuxièmedocument.",
        ] {
            assert!(left.contains(word), "{word} at {width}:\n{text}");
        }
        for word in ["unconstitutionally", "😀", "日本語,", "Seconddocument."] {
            assert!(right.contains(word), "{word} at {width}:\n{text}");
        }
        assert!(text.contains(" │ "));
    }
}

#[test]
fn narrow_columns_fall_back_to_stacked() {
    let options = WriterOptions {
        columns: Some(12),
        ..WriterOptions::default()
    };
    let text = render(Format::Text, &options);
    assert!(text.contains("Deuxième document.\n  → Second document.\n"));
}

#[test]
fn dropped_writer_leaves_no_file() {
    for format in Format::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut writer = open_writer(
            format,
            Output::File(path.clone()),
            &WriterOptions::default(),
        )
        .unwrap();
        writer.write_document(&awkward_document()).unwrap();
        drop(writer); // as on an error mid-run
        assert_eq!(files_in(dir.path()), Vec::<PathBuf>::new(), "{format}");
    }
}

#[test]
fn existing_output_is_replaced_only_on_success() {
    for format in Format::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let finals: Vec<PathBuf> = if format == Format::Moses {
            vec![dir.path().join("out.fr"), dir.path().join("out.en")]
        } else {
            vec![path.clone()]
        };
        for file in &finals {
            fs::write(file, "old").unwrap();
        }
        let mut writer = open_writer(
            format,
            Output::File(path.clone()),
            &WriterOptions::default(),
        )
        .unwrap();
        writer.write_document(&awkward_document()).unwrap();
        drop(writer);
        for file in &finals {
            assert_eq!(fs::read_to_string(file).unwrap(), "old", "{format}");
        }
        assert_eq!(
            files_in(dir.path()).len(),
            finals.len(),
            "{format}: temp file left"
        );

        write_all(format, &path, &WriterOptions::default());
        for file in &finals {
            let new = fs::read_to_string(file).unwrap();
            assert_ne!(new, "old", "{format}");
            assert!(!new.is_empty());
        }
        assert_eq!(
            files_in(dir.path()).len(),
            finals.len(),
            "{format}: temp file left"
        );
    }
}

#[cfg(unix)]
#[test]
fn new_files_are_not_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tsv");
    write_all(Format::Tsv, &path, &WriterOptions::default());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn missing_directory_is_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/out.tmx");
    let err = open_writer(Format::Tmx, Output::File(path), &WriterOptions::default())
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("no/such/dir"), "{err:#}");
}

#[test]
fn empty_runs_are_still_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Tmx, Format::Html, Format::Tsv] {
        let path = dir.path().join(format.name());
        open_writer(
            format,
            Output::File(path.clone()),
            &WriterOptions::default(),
        )
        .unwrap()
        .finish()
        .unwrap();
        let out = fs::read_to_string(&path).unwrap();
        match format {
            Format::Tmx => assert!(out.contains("<body>") && out.trim_end().ends_with("</tmx>")),
            Format::Html => assert!(out.trim_end().ends_with("</html>")),
            _ => assert_eq!(out, "doc\tparagraph\tsentence\tfr\ten\tscore\tflags\n"),
        }
    }
}

#[test]
fn format_names_round_trip() {
    for format in Format::ALL {
        assert_eq!(format.name().parse::<Format>().unwrap(), format);
    }
    assert!("docx".parse::<Format>().is_err());
}

#[test]
fn broken_pipe_is_recognisable() {
    let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed");
    let err = anyhow::Error::new(io).context("writing text to standard output");
    assert!(is_broken_pipe(&err));
    assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
}
