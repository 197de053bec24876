//! Properties of the document model on arbitrary text: the original is rebuilt byte for
//! byte, and sentence spans are well-formed.

use proptest::prelude::*;
use traduire::document::Document;
use traduire::segment::{split_sentences, SegmentOptions};

/// Text made of French-looking pieces plus odd whitespace and line endings.
fn frenchish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("Le président".to_string()),
        Just("M.".to_string()),
        Just("etc.".to_string()),
        Just(". ".to_string()),
        Just("... ".to_string()),
        Just("…".to_string()),
        Just(" ?! ".to_string()),
        Just("« Non. » ".to_string()),
        Just("(p. 12) ".to_string()),
        Just("\r\n".to_string()),
        Just("\n \t\n".to_string()),
        Just("\r".to_string()),
        Just("\u{a0}".to_string()),
        Just("\u{202f}!".to_string()),
        Just("— ".to_string()),
        Just("1. ".to_string()),
        "[a-zA-ZéÉàç0-9 .,!?'’()«»\\-]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn check_spans(doc: &Document) -> Result<(), TestCaseError> {
    let mut last_end = 0;
    for para in &doc.paragraphs {
        prop_assert!(!para.sentences.is_empty());
        for sentence in &para.sentences {
            let span = sentence.span.clone();
            prop_assert!(span.start >= last_end, "overlap or disorder at {:?}", span);
            prop_assert!(span.start < span.end, "empty sentence at {:?}", span);
            prop_assert!(doc.text.is_char_boundary(span.start));
            prop_assert!(doc.text.is_char_boundary(span.end));
            let text = doc.sentence_text(sentence);
            prop_assert_eq!(text.trim(), text);
            prop_assert!(span.start >= para.span.start && span.end <= para.span.end);
            last_end = span.end;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_rebuilds_original(text in frenchish(), wrapped in any::<bool>()) {
        let doc = Document::parse(text.clone(), &SegmentOptions { wrapped });
        prop_assert_eq!(doc.rebuild(), text);
        check_spans(&doc)?;
        if !wrapped {
            for (_, _, sentence) in doc.sentences() {
                prop_assert!(!sentence.contains(['\n', '\r']));
            }
        }
    }

    #[test]
    fn from_lines_rebuilds_original(text in frenchish()) {
        let doc = Document::from_lines(text.clone());
        prop_assert_eq!(doc.rebuild(), text);
        check_spans(&doc)?;
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let doc = Document::parse(text.clone(), &SegmentOptions::default());
        prop_assert_eq!(doc.rebuild(), text.clone());
        check_spans(&doc)?;
        for span in split_sentences(&text) {
            prop_assert!(text.get(span).is_some());
        }
    }
}

#[test]
fn seed_article_structure() {
    let text = include_str!("../seeds/000_63993c6b9a9c911d.txt").to_string();
    let doc = Document::parse(text.clone(), &SegmentOptions::default());
    assert_eq!(doc.rebuild(), text);
    assert_eq!(
        doc.paragraphs[0].kind,
        traduire::document::ParagraphKind::Title
    );
    assert_eq!(doc.paragraphs.len(), 15);
    // Every paragraph of the seed is a single sentence.
    assert!(doc.paragraphs.iter().all(|p| p.sentences.len() == 1));
}

#[test]
fn crlf_and_blank_lines_with_spaces() {
    let text = "Titre\r\n \t \r\nUne phrase. Une autre.\r\nLigne deux\r\n".to_string();
    let doc = Document::parse(text.clone(), &SegmentOptions::default());
    let sentences: Vec<_> = doc.sentences().collect();
    assert_eq!(
        sentences,
        [
            (0, 0, "Titre"),
            (1, 0, "Une phrase."),
            (1, 1, "Une autre."),
            (1, 2, "Ligne deux")
        ]
    );
    assert_eq!(doc.rebuild(), text);
}

#[test]
fn wrapped_text_joins_lines() {
    let text = "Le président a\nparlé. Il est\nparti.\n— Oui, dit-il.".to_string();
    let doc = Document::parse(text.clone(), &SegmentOptions { wrapped: true });
    let sentences: Vec<_> = doc.sentences().map(|(_, _, t)| t).collect();
    assert_eq!(
        sentences,
        ["Le président a\nparlé.", "Il est\nparti.", "— Oui, dit-il."]
    );
    let unwrapped = Document::parse(text, &SegmentOptions::default());
    assert_eq!(unwrapped.sentence_count(), 5);
}

#[test]
fn from_lines_one_sentence_per_line() {
    let doc = Document::from_lines("Un. Deux.\nTrois\n\nQuatre\n".to_string());
    let sentences: Vec<_> = doc.sentences().collect();
    assert_eq!(
        sentences,
        [(0, 0, "Un. Deux."), (0, 1, "Trois"), (1, 0, "Quatre")]
    );
}

/// Runs `f` on another thread and fails if it has not finished after `limit`: a guard against
/// super-linear scanning (a quadratic pass over these inputs would take hours), not a speed
/// measurement.
fn finishes_within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(f()));
    receive
        .recv_timeout(limit)
        .expect("still scanning after the time limit: the segmenter is not linear")
}

#[test]
fn huge_inputs_finish() {
    // A 2 MB paragraph without punctuation, one of dots only, one of spaced dots, one of
    // parentheses, one of abbreviations and one of unbalanced quotes: each is segmented (with
    // an exact, checked result) well within a limit that only a super-linear scan would hit.
    let limit = std::time::Duration::from_secs(120);
    let sentences = |text: String| {
        finishes_within(limit, move || {
            let spans = split_sentences(&text);
            let covered: usize = spans.iter().map(|r| r.len()).sum();
            assert!(covered <= text.len());
            spans
                .into_iter()
                .map(|r| text[r].to_string())
                .collect::<Vec<_>>()
        })
    };
    let words = "mot ".repeat(500_000);
    assert_eq!(sentences(words.clone()), vec![words.trim_end().to_string()]);
    let dots = ".".repeat(2_000_000);
    assert_eq!(sentences(dots.clone()), vec![dots]);
    let spaced_dots = ". ".repeat(1_000_000);
    assert_eq!(
        sentences(spaced_dots.clone()),
        vec![spaced_dots.trim_end().to_string()]
    );
    let parens = "(((((a. B".repeat(200_000);
    let got = sentences(parens.clone());
    assert_eq!(got.concat(), parens.replace(' ', ""), "nothing lost");
    // "(((((a." then "B(((((a." 199,999 times, then the last "B".
    assert_eq!(got.len(), 200_001);
    assert_eq!((got[0].as_str(), got[1].as_str()), ("(((((a.", "B(((((a."));
    assert_eq!(got.last().map(String::as_str), Some("B"));
    let abbrevs = "M. ".repeat(500_000);
    assert_eq!(
        sentences(abbrevs.clone()),
        vec![abbrevs.trim_end().to_string()]
    );
    let quotes = "«".repeat(500_000) + &"(".repeat(500_000);
    assert_eq!(sentences(quotes.clone()), vec![quotes]);
}
