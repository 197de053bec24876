//! The fuzz campaign: property tests on arbitrary input for every part that reads untrusted
//! data. Each property must hold and nothing may panic.
//!
//! CI runs proptest's default 256 cases per target. The full campaign (10^6 cases per target,
//! release build, about ten minutes on two cores):
//!
//!     PROPTEST_CASES=1000000 cargo test --release --test fuzz
//!
//! Targets: the segmenter and document model (arbitrary bytes and Unicode), the tokenizer
//! (arbitrary strings, control and private-use characters), every writer (round trip through a
//! real parser where one exists), config.json and generation_config.json (arbitrary JSON in
//! every field), decoding options. The command line's options are fuzzed in the binary's own
//! tests (`src/main.rs`), the server's request parsing in `tests/serve_fuzz.rs`.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};
use traduire::bilingual::{BilingualDocument, BilingualParagraph, BilingualSentence};
use traduire::document::{Document, ParagraphKind};
use traduire::flags::Flags;
use traduire::input::decode;
use traduire::marian::config::{opus_mt_fr_en, OPUS_MT_FR_EN_CONFIG};
use traduire::marian::{DecodeOptions, EarlyStopping, GenerationConfig, MarianConfig};
use traduire::segment::{split_sentences, SegmentOptions};
use traduire::tokenizer::MarianTokenizer;
use traduire::write::{open_writer, Format, Output, WriterOptions};

/// Text that stresses parsers: any Unicode, control and private-use characters, French
/// punctuation and spacing, and every kind of line break.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]{0,8}",
        "[\\u{e000}-\\u{f8ff}\\u{f0000}-\\u{f00ff}]{0,6}",
        "[\\u{fffe}\\u{ffff}\\u{feff}\\u{200b}-\\u{200f}\\u{2028}\\u{2029}\\u{85}]{0,4}",
        "[a-zA-ZéèêàçœÉÀ0-9 .,;:!?'’()«»\\-—…\\u{a0}\\u{202f}]{0,24}",
        Just("M. ".to_string()),
        Just("etc. ".to_string()),
        Just("\r\n".to_string()),
        Just("\n\n".to_string()),
        Just(" ».".to_string()),
        Just("</s> <unk> <pad> >>fr<< ".to_string()),
        Just("|*_`[]#~<>&\\\"".to_string()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

// --------------------------------------------------------------------------------------------
// Segmenter and document model
// --------------------------------------------------------------------------------------------

proptest! {
    /// Arbitrary bytes, decoded lossily as `--lossy` does: the document rebuilds the text
    /// byte for byte, and every sentence is a non-empty, trimmed, in-order span.
    #[test]
    fn document_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..3000), wrapped in any::<bool>(), lines in any::<bool>()) {
        let text = decode(bytes.clone(), "fuzz", true).unwrap();
        // Strict decoding succeeds exactly on valid UTF-8, and then agrees with lossy decoding.
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        match decode(bytes.clone(), "fuzz", false) {
            Ok(strict) => prop_assert_eq!(&strict, &text),
            Err(e) => {
                prop_assert!(std::str::from_utf8(body).is_err());
                prop_assert!(e.to_string().starts_with("fuzz: invalid UTF-8 at byte "));
            }
        }
        let doc = if lines {
            Document::from_lines(text.clone())
        } else {
            Document::parse(text.clone(), &SegmentOptions { wrapped })
        };
        prop_assert_eq!(doc.rebuild(), text.clone());
        let mut end = 0;
        for (_, _, sentence) in doc.sentences() {
            prop_assert!(!sentence.is_empty());
            prop_assert_eq!(sentence.trim(), sentence);
            let start = sentence.as_ptr() as usize - doc.text.as_ptr() as usize;
            prop_assert!(start >= end);
            end = start + sentence.len();
        }
    }

    /// Arbitrary Unicode through the sentence splitter: spans are in order, inside the
    /// text, on character boundaries, and cover every non-space character.
    #[test]
    fn sentences_from_arbitrary_unicode(text in hostile_text()) {
        let spans = split_sentences(&text);
        let mut end = 0;
        let mut kept = String::new();
        for span in &spans {
            prop_assert!(span.start >= end && span.start < span.end && span.end <= text.len());
            prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
            kept.push_str(&text[span.clone()]);
            end = span.end;
        }
        let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        prop_assert_eq!(strip(&kept), strip(&text));
    }
}

// --------------------------------------------------------------------------------------------
// Tokenizer
// --------------------------------------------------------------------------------------------

fn tokenizer() -> &'static MarianTokenizer {
    static TOKENIZER: OnceLock<MarianTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        MarianTokenizer::from_dir(&common::fixtures().join("tokenizer")).expect("fixture")
    })
}

proptest! {
    /// Any string encodes to ids inside the vocabulary ending with `</s>` (on both sides),
    /// and decodes again without error.
    #[test]
    fn tokenizer_on_arbitrary_strings(text in hostile_text()) {
        let t = tokenizer();
        for ids in [t.encode(&text).unwrap(), t.encode_target(&text).unwrap()] {
            prop_assert_eq!(ids.last(), Some(&t.eos_id()));
            prop_assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()));
            let decoded = t.decode(&ids).unwrap();
            prop_assert!(!decoded.contains("</s>") || text.contains("</s>"));
        }
    }

    /// Arbitrary ids decode to a string, or (outside the vocabulary) to a clean error.
    #[test]
    fn tokenizer_decodes_arbitrary_ids(ids in prop::collection::vec(0u32..70_000, 0..40)) {
        let t = tokenizer();
        let inside = ids.iter().all(|&id| (id as usize) < t.vocab_size());
        match t.decode(&ids) {
            Ok(_) => prop_assert!(inside || ids.iter().all(|&id| id < 70_000)),
            Err(e) => {
                prop_assert!(!inside, "ids inside the vocabulary failed: {}", e);
                prop_assert!(e.to_string().contains("outside the vocabulary"));
            }
        }
    }
}

// --------------------------------------------------------------------------------------------
// Writers
// --------------------------------------------------------------------------------------------

fn kind() -> impl Strategy<Value = ParagraphKind> {
    prop_oneof![
        Just(ParagraphKind::Title),
        Just(ParagraphKind::Heading),
        Just(ParagraphKind::Paragraph),
        Just(ParagraphKind::ListItem),
    ]
}

fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        -50f32..0.0
    ]
}

fn document() -> impl Strategy<Value = BilingualDocument> {
    let sentence =
        (hostile_text(), hostile_text(), score(), any::<u8>()).prop_map(|(fr, en, score, bits)| {
            BilingualSentence {
                fr,
                en,
                score,
                flags: Flags::from_bits(bits),
                alignment: None,
            }
        });
    let paragraph = (kind(), prop::collection::vec(sentence, 0..4))
        .prop_map(|(kind, sentences)| BilingualParagraph { kind, sentences });
    (hostile_text(), prop::collection::vec(paragraph, 0..4))
        .prop_map(|(name, paragraphs)| BilingualDocument { name, paragraphs })
}

fn render(format: Format, docs: &[BilingualDocument], dir: &std::path::Path) -> String {
    let path = dir.join("out");
    let mut writer = open_writer(
        format,
        Output::File(path.clone()),
        &WriterOptions::default(),
    )
    .unwrap();
    for doc in docs {
        writer.write_document(doc).unwrap();
    }
    writer.finish().unwrap();
    match format {
        // Two files: the caller reads out.fr and out.en.
        Format::Moses => String::new(),
        _ => std::fs::read_to_string(&path).unwrap(),
    }
}

fn sentences(
    docs: &[BilingualDocument],
) -> Vec<(
    &BilingualDocument,
    usize,
    usize,
    &BilingualSentence,
    ParagraphKind,
)> {
    let mut all = Vec::new();
    for doc in docs {
        for (p, para) in doc.paragraphs.iter().enumerate() {
            for (s, sentence) in para.sentences.iter().enumerate() {
                all.push((doc, p, s, sentence, para.kind));
            }
        }
    }
    all
}

/// What XML 1.0 (TMX, HTML) can carry: forbidden characters become U+FFFD.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn finite(score: f32) -> f32 {
    if score.is_nan() || score == f32::NEG_INFINITY {
        f32::MIN
    } else if score == f32::INFINITY {
        f32::MAX
    } else {
        score
    }
}

proptest! {
    /// Every writer's output parses back to the sentences written: JSONL (serde_json), TSV
    /// (unescaped), TMX and HTML (quick-xml), Markdown (pulldown-cmark), Moses (aligned lines),
    /// text (every sentence's characters present).
    #[test]
    fn writers_round_trip(docs in prop::collection::vec(document(), 1..3)) {
        // In memory where the system has it: every case writes seven files atomically, and
        // the syncs dominate on a disk.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let all = sentences(&docs);

        let jsonl = render(Format::Jsonl, &docs, dir.path());
        let records: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        prop_assert_eq!(records.len(), all.len());
        for (record, (doc, p, s, sentence, _)) in records.iter().zip(&all) {
            prop_assert_eq!(&record["doc"], &json!(doc.name));
            prop_assert_eq!(&record["paragraph"], &json!(p));
            prop_assert_eq!(&record["sentence"], &json!(s));
            prop_assert_eq!(&record["fr"], &json!(sentence.fr));
            prop_assert_eq!(&record["en"], &json!(sentence.en));
            prop_assert_eq!(record["score"].as_f64().unwrap() as f32, finite(sentence.score));
            prop_assert_eq!(&record["flags"], &serde_json::to_value(sentence.flags).unwrap());
        }

        let tsv = render(Format::Tsv, &docs, dir.path());
        let mut lines = tsv.split('\n');
        prop_assert_eq!(lines.next(), Some("doc\tparagraph\tsentence\tfr\ten\tscore\tflags"));
        let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        prop_assert_eq!(rows.len(), all.len());
        for (row, (doc, p, s, sentence, _)) in rows.iter().zip(&all) {
            let fields: Vec<String> = row.split('\t').map(common::formats::tsv_unescape).collect();
            prop_assert_eq!(fields.len(), 7);
            prop_assert_eq!(&fields[6], &sentence.flags.text());
            prop_assert_eq!(&fields[0], &doc.name);
            prop_assert_eq!(fields[1].parse::<usize>().unwrap(), *p);
            prop_assert_eq!(fields[2].parse::<usize>().unwrap(), *s);
            prop_assert_eq!(&fields[3], &sentence.fr);
            prop_assert_eq!(&fields[4], &sentence.en);
            prop_assert_eq!(fields[5].parse::<f32>().unwrap(), finite(sentence.score));
        }

        let tmx = render(Format::Tmx, &docs, dir.path());
        let (srclang, units) = common::formats::parse_tmx(&tmx);
        prop_assert_eq!(srclang, "fr");
        prop_assert_eq!(units.len(), all.len());
        for (unit, (_, _, _, sentence, _)) in units.iter().zip(&all) {
            prop_assert_eq!(unit, &vec![("fr".to_string(), xml_safe(&sentence.fr)), ("en".to_string(), xml_safe(&sentence.en))]);
        }

        let html = render(Format::Html, &docs, dir.path());
        let cells = common::formats::parse_html_cells(&html);
        let mut want = Vec::new();
        for doc in &docs {
            for para in doc.paragraphs.iter().filter(|p| !p.sentences.is_empty()) {
                match para.kind {
                    ParagraphKind::Title | ParagraphKind::Heading => {
                        let join = |f: &dyn Fn(&BilingualSentence) -> &str| para.sentences.iter().map(|s| f(s).trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
                        want.push(("src".to_string(), xml_safe(&join(&|s| &s.fr))));
                        want.push(("tgt".to_string(), xml_safe(&join(&|s| &s.en))));
                    }
                    _ => for s in &para.sentences {
                        want.push(("src".to_string(), xml_safe(&s.fr)));
                        want.push(("tgt".to_string(), xml_safe(&s.en)));
                    },
                }
            }
        }
        prop_assert_eq!(cells, want);

        let markdown = render(Format::Markdown, &docs, dir.path());
        let rows = common::formats::parse_markdown_rows(&markdown);
        prop_assert_eq!(rows.len(), all.len());
        let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        // The writer trims a cell, turns line breaks into <br> and tabs into spaces, and other
        // control characters into U+FFFD; whitespace is compared collapsed.
        let written = |s: &str| -> String {
            let safe: String = s
                .trim()
                .chars()
                .map(|c| if c.is_control() && !"\t\n\r".contains(c) { '\u{fffd}' } else { c })
                .collect();
            collapse(&safe)
        };
        for (row, (_, _, _, sentence, _)) in rows.iter().zip(&all) {
            prop_assert_eq!(row.len(), 2);
            prop_assert_eq!(collapse(&row[0]), written(&sentence.fr));
            prop_assert_eq!(collapse(&row[1]), written(&sentence.en));
        }

        render(Format::Moses, &docs, dir.path());
        let fr = std::fs::read_to_string(dir.path().join("out.fr")).unwrap();
        let en = std::fs::read_to_string(dir.path().join("out.en")).unwrap();
        // One line per sentence in both files, as every line-splitting reader sees them
        // (Python's str.splitlines is the widest definition of a line break).
        let breaks = ['\n', '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}', '\u{2029}'];
        for (file, side) in [(&fr, 0), (&en, 1)] {
            let lines: Vec<&str> = file.strip_suffix('\n').unwrap_or(file).split(&breaks[..]).collect();
            if all.is_empty() {
                prop_assert!(file.is_empty());
                continue;
            }
            prop_assert_eq!(lines.len(), all.len());
            for (line, (_, _, _, sentence, _)) in lines.iter().zip(&all) {
                let original = if side == 0 { &sentence.fr } else { &sentence.en };
                let flat: String = original.chars().map(|c| if breaks.contains(&c) || c == '\t' { ' ' } else { c }).collect();
                prop_assert_eq!(*line, flat.as_str());
            }
        }

        // Text output: every sentence's characters in order (whitespace aside), control
        // characters shown as U+FFFD (never raw escape sequences on a terminal).
        let text = render(Format::Text, &docs, dir.path());
        prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
        let kept: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for (_, _, _, sentence, _) in &all {
            for side in [&sentence.fr, &sentence.en] {
                let chars: String = side
                    .lines()
                    .flat_map(|line| line.chars())
                    .map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c })
                    .filter(|c| !c.is_whitespace())
                    .collect();
                prop_assert!(kept.contains(&chars), "{:?} missing", side);
            }
        }
    }
}

// --------------------------------------------------------------------------------------------
// Checkpoint configuration and decoding options
// --------------------------------------------------------------------------------------------

/// Any JSON value, with numbers at the edges (0, huge, negative, fractional).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (0u64..600).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("never")),
        Just(json!("swish")),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const CONFIG_FIELDS: &[&str] = &[
    "model_type",
    "d_model",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "activation_function",
    "scale_embedding",
    "max_position_embeddings",
    "vocab_size",
    "decoder_vocab_size",
    "pad_token_id",
    "eos_token_id",
    "decoder_start_token_id",
    "normalize_before",
    "normalize_embedding",
    "static_position_embeddings",
    "tie_word_embeddings",
    "share_encoder_decoder_embeddings",
    "num_beams",
    "max_length",
    "max_new_tokens",
    "min_new_tokens",
    "min_length",
    "length_penalty",
    "early_stopping",
    "bad_words_ids",
    "forced_eos_token_id",
    "forced_bos_token_id",
    "renormalize_logits",
    "num_return_sequences",
    "do_sample",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "diversity_penalty",
];

proptest! {
    /// opus-mt-fr-en's config with arbitrary JSON in up to four fields: it loads or is refused
    /// with a message naming the field; what loads is within the limits and consistent.
    #[test]
    fn config_with_arbitrary_fields(changes in prop::collection::vec((0..CONFIG_FIELDS.len(), json_value()), 1..5)) {
        let mut json: Value = serde_json::from_str(OPUS_MT_FR_EN_CONFIG).unwrap();
        for (field, value) in &changes {
            json[CONFIG_FIELDS[*field]] = value.clone();
        }
        match MarianConfig::from_json(&json) {
            Err(e) => {
                let message = e.to_string();
                prop_assert!(changes.iter().any(|(f, _)| message.contains(CONFIG_FIELDS[*f])), "{}", message);
            }
            Ok(config) => {
                prop_assert!(config.d_model >= 1 && config.d_model <= 16_384);
                prop_assert!(config.d_model.is_multiple_of(config.encoder_attention_heads));
                prop_assert!((config.eos_token_id as usize) < config.vocab_size);
                match GenerationConfig::from_json(&json, &config) {
                    Err(e) => {
                        let message = e.to_string();
                        prop_assert!(changes.iter().any(|(f, _)| message.contains(CONFIG_FIELDS[*f])), "{}", message);
                    }
                    Ok(generation) => {
                        prop_assert!(generation.num_beams >= 1 && generation.num_beams <= 128);
                        prop_assert!(generation.bad_words_ids.iter().all(|&id| (id as usize) < config.vocab_size));
                        // The defaults it gives are valid decoding options, or refused cleanly.
                        let options = DecodeOptions::from_generation(&generation);
                        let _ = options.validate(&config);
                    }
                }
            }
        }
    }

    /// Arbitrary decoding options: validation accepts exactly the ones in range, and the
    /// length limit of an accepted one never exceeds max_new_tokens nor overflows.
    #[test]
    fn decode_options_validation(
        beams in 0usize..300, ret in 0usize..10, max_new in 0usize..700, min_new in 0usize..700,
        ratio in prop_oneof![Just(None), any::<f32>().prop_map(Some), (0f32..5.0).prop_map(Some)],
        penalty in any::<f32>(), source_len in 0usize..100_000,
    ) {
        let (config, generation) = opus_mt_fr_en();
        let mut o = DecodeOptions::from_generation(&generation);
        o.num_beams = beams;
        o.num_return_sequences = ret;
        o.max_new_tokens = max_new;
        o.min_new_tokens = min_new;
        o.max_length_ratio = ratio;
        o.length_penalty = penalty;
        o.early_stopping = EarlyStopping::Heuristic;
        let valid = (1..=128).contains(&beams)
            && (1..=beams).contains(&ret)
            && (1..=512).contains(&max_new)
            && min_new <= max_new
            && penalty.is_finite()
            && ratio.is_none_or(|r| r.is_finite() && r > 0.0 && r <= 1000.0);
        prop_assert_eq!(o.validate(&config).is_ok(), valid);
        if valid {
            let limit = o.limit_for(source_len);
            prop_assert!(limit >= 1 && limit <= max_new);
        }
    }
}
