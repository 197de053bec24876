//! The translator on the tiny random checkpoint (it translates into nonsense: these tests
//! check the pipeline, never the English): progress events, deduplication, long sentences.

mod common;

use traduire::batching::BatchLimits;
use traduire::marian::ModelOptions;
use traduire::translator::{Event, Translator, TranslatorOptions};

fn translator() -> Translator {
    Translator::load(&common::model_dir("tiny-swish"), &ModelOptions::default()).unwrap()
}

fn options(translator: &Translator, max_sentence_tokens: usize) -> TranslatorOptions {
    let mut decode = translator.default_decode_options();
    decode.max_new_tokens = 6;
    decode.num_beams = 1;
    decode.num_return_sequences = 1;
    TranslatorOptions {
        decode,
        batch: BatchLimits {
            max_tokens: 64,
            max_sentences: 3,
        },
        max_sentence_tokens,
        alignments: false,
    }
}

/// The progress events add up to the number of sentences given, whatever deduplication and
/// long-sentence splitting did to the number of model inputs (a progress bar counting them
/// used to end short of 100 %, or past it).
#[test]
fn progress_counts_every_sentence_exactly_once() {
    let translator = translator();
    let long = "Le gouvernement a annoncé ce matin, après une longue réunion, que les mesures \
                seraient prolongées ; les syndicats, eux, ont dénoncé une décision prise sans \
                concertation, et appellent à manifester mardi.";
    let sentences = [
        "Bonjour.",
        long,
        "Bonjour.",
        "Il pleut.",
        "Bonjour.",
        long,
        "Le chat dort.",
        "",
    ];
    let mut done = Vec::new();
    let mut splits = 0;
    let translations = translator
        .translate(
            &sentences,
            &options(&translator, 12),
            &mut |event| match event {
                Event::Progress { sentences } => done.push(sentences),
                Event::LongSentenceSplit { parts, .. } => {
                    assert!(parts >= 2);
                    splits += 1
                }
            },
        )
        .unwrap();
    assert_eq!(translations.len(), sentences.len());
    assert_eq!(done.iter().sum::<usize>(), sentences.len(), "{done:?}");
    assert_eq!(splits, 1, "the repeated long sentence is split once");
    // Repeated sentences get the same translation.
    assert_eq!(translations[0], translations[2]);
    assert_eq!(translations[1], translations[5]);
}

#[test]
fn invalid_options_are_refused_before_translating() {
    let translator = translator();
    let mut events = 0;
    for change in [
        |o: &mut TranslatorOptions| o.batch.max_sentences = 0,
        |o: &mut TranslatorOptions| o.max_sentence_tokens = 1,
        |o: &mut TranslatorOptions| o.decode.max_length_ratio = Some(f32::INFINITY),
        |o: &mut TranslatorOptions| o.decode.min_new_tokens = 7,
    ] {
        let mut options = options(&translator, 200);
        change(&mut options);
        assert!(translator
            .translate(&["Bonjour."], &options, &mut |_| events += 1)
            .is_err());
    }
    assert_eq!(events, 0, "nothing was translated");
}

/// With alignments, every translation carries one: a span per source token (in the sentence)
/// and per target token (in the text), and exactly one source token per target token, the
/// parts of a split sentence numbered on. The translation itself is the same with or without.
#[test]
fn alignments_cover_every_token_and_change_nothing_else() {
    let translator = translator();
    let sentences = [
        "Le gouvernement a annoncé mardi une réforme des retraites.",
        "Oui.",
        "« Pourquoi pas ? », a-t-il demandé ; puis il est reparti, sans un mot, vers la gare du Nord.",
        "Le gouvernement a annoncé mardi une réforme des retraites.",
    ];
    for max_sentence_tokens in [512, 8] {
        let mut options = options(&translator, max_sentence_tokens);
        options.decode.max_new_tokens = 12;
        let plain = translator
            .translate(&sentences, &options, &mut |_| {})
            .unwrap();
        options.alignments = true;
        let aligned = translator
            .translate(&sentences, &options, &mut |_| {})
            .unwrap();
        for ((sentence, with), without) in sentences.iter().zip(&aligned).zip(&plain) {
            assert_eq!(with.text, without.text);
            assert_eq!(with.score, without.score);
            assert!(without.alignment.is_none());
            let alignment = with.alignment.as_ref().expect("an alignment");
            // Source tokens: every one of the sentence's tokens but the parts' </s>.
            let parts = with.source_tokens - alignment.source.len();
            assert!(parts >= 1, "{sentence}");
            if max_sentence_tokens == 8 && sentence.len() > 40 {
                assert!(parts > 1, "{sentence}: split");
            }
            for span in &alignment.source {
                assert!(span.end <= sentence.len() && sentence.is_char_boundary(span.start));
            }
            for span in &alignment.target {
                assert!(span.end <= with.text.len() && with.text.is_char_boundary(span.start));
            }
            assert!(alignment.target.len() <= with.target_tokens);
            assert!(alignment.target.len() + parts >= with.target_tokens);
            assert_eq!(alignment.pairs.len(), alignment.target.len(), "{sentence}");
            for (t, &(s, target)) in alignment.pairs.iter().enumerate() {
                assert_eq!(target, t, "{sentence}");
                assert!(s < alignment.source.len());
            }
            assert_eq!(
                alignment.to_pharaoh().split_whitespace().count(),
                alignment.pairs.len()
            );
        }
        // A repeated sentence gets the same alignment.
        assert_eq!(aligned[0].alignment, aligned[3].alignment);
    }
}
