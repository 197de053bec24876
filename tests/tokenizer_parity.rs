//! Parity with transformers' `MarianTokenizer`, on the cases recorded by
//! `scripts/make_tokenizer_fixtures.py`, plus error handling for broken checkpoints.

mod common;

use std::path::{Path, PathBuf};

use traduire::tokenizer::MarianTokenizer;

/// The tokenizer folder of a fixture: `tokenizer` (joint vocabulary) is stored whole;
/// `tokenizer_separate` shares its SentencePiece models and is assembled.
fn fixture_dir(name: &str) -> PathBuf {
    match name {
        "tokenizer_separate" => common::separate_tokenizer_dir(),
        _ => common::fixtures().join(name),
    }
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    source_ids: Vec<u32>,
    target_ids: Vec<u32>,
    decoded: String,
    decoded_source: String,
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).expect("reading cases.jsonl");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("parsing a case"))
        .collect()
}

/// Checks every case and reports all mismatches at once (easier to debug than the first).
fn check_parity(name: &str, min_cases: usize) {
    let dir = fixture_dir(name);
    let tokenizer = MarianTokenizer::from_dir(&dir).expect("loading the fixture tokenizer");
    let cases = load_cases(&dir);
    assert!(
        cases.len() >= min_cases,
        "only {} cases in {name}",
        cases.len()
    );

    let mut failures = Vec::new();
    for case in &cases {
        let source = tokenizer.encode(&case.text).unwrap();
        if source != case.source_ids {
            failures.push(format!(
                "source {:?}: {:?} != {:?}",
                case.text, source, case.source_ids
            ));
        }
        let target = tokenizer.encode_target(&case.text).unwrap();
        if target != case.target_ids {
            failures.push(format!(
                "target {:?}: {:?} != {:?}",
                case.text, target, case.target_ids
            ));
        }
        let decoded = tokenizer.decode(&case.target_ids).unwrap();
        if decoded != case.decoded {
            failures.push(format!(
                "decode {:?}: {decoded:?} != {:?}",
                case.text, case.decoded
            ));
        }
        // With a joint vocabulary transformers decodes any ids; with separate vocabularies
        // source ids decoded through the target vocabulary are meaningless.
        if name == "tokenizer" {
            let decoded = tokenizer.decode(&case.source_ids).unwrap();
            if decoded != case.decoded_source {
                failures.push(format!(
                    "decode source {:?}: {decoded:?} != {:?}",
                    case.text, case.decoded_source
                ));
            }
        }
    }
    println!(
        "{name}: {} cases, {} mismatches",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures
            .iter()
            .take(25)
            .map(|f| f.chars().take(600).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn parity_with_transformers_joint_vocab() {
    check_parity("tokenizer", 300);
}

#[test]
fn parity_with_transformers_separate_vocabs() {
    check_parity("tokenizer_separate", 50);
}

/// Checks the spans of `encode_with_spans` and `decode_with_spans` on every recorded case:
/// the same ids and text as `encode` / `decode`, one span per token, in order, on character
/// boundaries, trimmed, and (decoded) together covering every visible character of the text.
#[test]
fn token_spans_cover_the_text_in_order() {
    let dir = fixture_dir("tokenizer");
    let tokenizer = MarianTokenizer::from_dir(&dir).unwrap();
    let mut checked = 0;
    for case in load_cases(&dir) {
        let text = &case.text;
        let (ids, spans) = tokenizer.encode_with_spans(text).unwrap();
        assert_eq!(ids, case.source_ids, "{text:?}");
        assert_eq!(spans.len(), ids.len() - 1, "{text:?}");
        // Two tokens overlap only where one character became several (a ligature "ﬂ"
        // normalized to "fl" and split): starts and ends never go back.
        let (mut start, mut end) = (0, 0);
        for span in &spans {
            assert!(
                span.start >= start && span.end >= end && span.start <= span.end,
                "{text:?}: {spans:?}"
            );
            let part = &text[span.clone()];
            assert_eq!(part, part.trim(), "{text:?}: {span:?}");
            (start, end) = (span.start, span.end);
        }
        // The text of a word token is the word: "▁Russie" stands for "Russie".
        for (span, &id) in spans.iter().zip(&ids) {
            let piece = tokenizer.decode(&[id]).unwrap();
            let word = &text[span.clone()];
            if !piece.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric()) {
                assert_eq!(word, piece, "{text:?}");
            }
        }

        let (decoded, spans) = tokenizer.decode_with_spans(&case.target_ids).unwrap();
        assert_eq!(decoded, case.decoded, "{text:?}");
        assert_eq!(spans.len(), case.target_ids.len());
        let mut end = 0;
        let mut visible = String::new();
        for span in &spans {
            assert!(
                span.start >= end && span.start <= span.end,
                "{decoded:?}: {spans:?}"
            );
            visible.push_str(&decoded[span.clone()]);
            end = span.end;
        }
        let expected: String = decoded.chars().filter(|c| !c.is_whitespace()).collect();
        let got: String = visible.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(got, expected, "{text:?}");
        checked += 1;
    }
    assert!(checked >= 300, "{checked} cases");
}

#[test]
fn special_ids_and_batch() {
    let tokenizer = MarianTokenizer::from_dir(&fixture_dir("tokenizer")).unwrap();
    assert_eq!(tokenizer.eos_id(), 0);
    assert_eq!(tokenizer.unk_id(), 1);
    assert_eq!(tokenizer.pad_id() as usize, tokenizer.vocab_size() - 1);
    let batch = tokenizer
        .encode_batch(&["Bonjour", "", "la Russie"])
        .unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[1], vec![tokenizer.eos_id()]);
    assert_eq!(batch[2], tokenizer.encode("la Russie").unwrap());
    assert!(tokenizer
        .decode(&[tokenizer.vocab_size() as u32 + 1000])
        .is_err());
    assert_eq!(tokenizer.decode(&[]).unwrap(), "");
}

/// Copies the fixture tokenizer into a temporary folder, to break one file at a time.
fn scratch_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir("tokenizer")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    tmp
}

fn load_error(dir: &Path) -> String {
    match MarianTokenizer::from_dir(dir) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_or_corrupt_files_are_named() {
    for file in ["source.spm", "target.spm", "vocab.json"] {
        let tmp = scratch_copy();
        std::fs::remove_file(tmp.path().join(file)).unwrap();
        let err = load_error(tmp.path());
        assert!(err.contains(file), "missing {file}: {err}");

        let tmp = scratch_copy();
        std::fs::write(tmp.path().join(file), b"\x08\xff\xff garbage {").unwrap();
        let err = load_error(tmp.path());
        assert!(err.contains(file), "corrupt {file}: {err}");
    }

    // A vocabulary without the special tokens.
    let tmp = scratch_copy();
    std::fs::write(tmp.path().join("vocab.json"), br#"{"a": 0}"#).unwrap();
    let err = load_error(tmp.path());
    assert!(err.contains("vocab.json"), "{err}");

    // separate_vocabs without target_vocab.json.
    let tmp = scratch_copy();
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        br#"{"separate_vocabs": true}"#,
    )
    .unwrap();
    let err = load_error(tmp.path());
    assert!(err.contains("target_vocab.json"), "{err}");

    let tmp = scratch_copy();
    std::fs::write(tmp.path().join("tokenizer_config.json"), b"{not json").unwrap();
    let err = load_error(tmp.path());
    assert!(err.contains("tokenizer_config.json"), "{err}");

    // An empty file is a valid (empty) protobuf message: still an error.
    let tmp = scratch_copy();
    std::fs::write(tmp.path().join("source.spm"), b"").unwrap();
    let err = load_error(tmp.path());
    assert!(err.contains("source.spm"), "{err}");
}

#[test]
fn tokenizer_json_is_used_when_present() {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::Tokenizer;

    let vocab = [
        ("</s>", 0),
        ("<unk>", 1),
        ("bonjour", 2),
        ("monde", 3),
        ("<pad>", 4),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let model = WordLevel::builder()
        .vocab(vocab)
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
    tokenizer.with_post_processor(Some(
        TemplateProcessing::builder()
            .try_single("$A </s>")
            .unwrap()
            .special_tokens(vec![("</s>", 0)])
            .build()
            .unwrap(),
    ));
    let tmp = scratch_copy();
    tokenizer
        .save(tmp.path().join("tokenizer.json"), false)
        .unwrap();

    let marian = MarianTokenizer::from_dir(tmp.path()).unwrap();
    assert_eq!(marian.encode("bonjour le monde").unwrap(), vec![2, 1, 3, 0]);
    assert_eq!(
        (marian.eos_id(), marian.unk_id(), marian.pad_id()),
        (0, 1, 4)
    );
    assert_eq!(marian.vocab_size(), 5);
    assert!(marian.decode(&[9]).is_err());

    std::fs::write(tmp.path().join("tokenizer.json"), b"{\"broken\": ").unwrap();
    let err = load_error(tmp.path());
    assert!(err.contains("tokenizer.json"), "{err}");
}
