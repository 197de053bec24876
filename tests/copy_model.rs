//! The copy model (`tests/fixtures/marian/copy/`, trained by `scripts/train_copy_model.py`):
//! a tiny Marian that copies its input, with head 0 of its last decoder layer trained toward
//! the identity alignment, as Marian's guided alignment trains opus-mt. Unlike the random
//! models, its output and alignments are known in advance: the source again (as the
//! tokenizer normalizes and decodes it), every target token aligned to the source token at
//! its position. It proves the alignment machinery end to end; it translates nothing.

mod common;

use traduire::batching::BatchLimits;
use traduire::device::Precision;
use traduire::marian::ModelOptions;
use traduire::translator::{Translation, Translator, TranslatorOptions};

fn translator(precision: Precision) -> Translator {
    let options = ModelOptions {
        precision,
        ..ModelOptions::default()
    };
    Translator::load(&common::model_dir("copy"), &options).unwrap()
}

fn options(translator: &Translator, beams: usize) -> TranslatorOptions {
    let mut decode = translator.default_decode_options();
    decode.num_beams = beams;
    decode.num_return_sequences = 1;
    TranslatorOptions {
        decode,
        batch: BatchLimits {
            max_tokens: 2048,
            max_sentences: 16,
        },
        max_sentence_tokens: 200,
        alignments: true,
    }
}

/// Sentences the model never saw in training (`copy.json`'s held-out set and more) and some of
/// the seed article.
fn sentences() -> Vec<String> {
    let mut out: Vec<String> = [
        "Le président de la République a reçu les syndicats à l'Élysée.",
        "Selon le ministère, 3 500 personnes ont été évacuées dimanche soir.",
        "« Nous ne céderons pas », a déclaré la maire de Paris, Anne Hidalgo.",
        "La Russie et les États-Unis doivent interagir de manière constructive.",
        "Les prix de l'énergie ont augmenté de 12,5 % en un an.",
        "Il pleut.",
        "Voir aussi : notre dossier spécial sur les élections européennes de 2024.",
        "Cliquez ici pour lire l'article complet sur le site du journal.",
        "Le gouvernement a présenté mardi son projet de loi sur les retraites.",
        "Poutine",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let seed = common::seed_text();
    out.extend(
        seed.lines()
            .filter(|l| !l.trim().is_empty())
            .take(4)
            .map(|l| l.trim().to_string()),
    );
    out
}

/// What copying gives back: the source as the tokenizer normalizes it and decodes its ids.
fn copied(translator: &Translator, sentence: &str) -> String {
    let ids = translator.tokenizer().encode(sentence).unwrap();
    translator.tokenizer().decode(&ids).unwrap()
}

fn diagonal(t: &Translation) -> bool {
    let alignment = t.alignment.as_ref().unwrap();
    alignment.pairs.iter().all(|&(s, t)| s == t)
}

#[test]
fn the_copy_model_copies_and_aligns_on_the_diagonal() {
    let translator = translator(Precision::F32);
    let sentences = sentences();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    for beams in [1, 4] {
        let translations = translator
            .translate(&refs, &options(&translator, beams), &mut |_| {})
            .unwrap();
        for (sentence, t) in sentences.iter().zip(&translations) {
            assert_eq!(t.text, copied(&translator, sentence), "beam {beams}");
            assert!(diagonal(t), "beam {beams}: {sentence}: {:?}", t.alignment);
            let alignment = t.alignment.as_ref().unwrap();
            assert_eq!(alignment.pairs.len(), alignment.source.len());
            // Each target token's text is its source token's text, where both are plain
            // (a piece the vocabulary lacks is <unk>, which decodes to nothing).
            for &(s, tgt) in &alignment.pairs {
                let source = &sentence[alignment.source[s].clone()];
                let target = &t.text[alignment.target[tgt].clone()];
                if !target.is_empty() && source.chars().all(char::is_alphanumeric) {
                    assert_eq!(source, target, "{sentence}");
                }
            }
        }
    }
}

/// int8 quantizes the weights; its hard alignments must still agree with f32's (the issue's
/// bar: above 98 % of target tokens). The figure is printed for the README.
#[test]
fn int8_alignments_agree_with_f32() {
    let mut sentences = sentences();
    let corpus = std::fs::read_to_string(common::root().join("scripts/corpus/fr.txt")).unwrap();
    sentences.extend(corpus.lines().filter(|l| !l.is_empty()).map(str::to_string));
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let f32_model = translator(Precision::F32);
    let int8_model = translator(Precision::Int8);
    let f32_out = f32_model
        .translate(&refs, &options(&f32_model, 1), &mut |_| {})
        .unwrap();
    let int8_out = int8_model
        .translate(&refs, &options(&int8_model, 1), &mut |_| {})
        .unwrap();
    let (mut same, mut total) = (0usize, 0usize);
    for (a, b) in f32_out.iter().zip(&int8_out) {
        let (a, b) = (a.alignment.as_ref().unwrap(), b.alignment.as_ref().unwrap());
        for (x, y) in a.pairs.iter().zip(&b.pairs) {
            total += 1;
            same += usize::from(x == y);
        }
        total += a.pairs.len().abs_diff(b.pairs.len());
    }
    let agreement = same as f64 / total as f64;
    println!("int8 vs f32 hard alignment agreement: {same}/{total} = {agreement:.4}");
    assert!(total > 2000, "{total} tokens");
    assert!(agreement > 0.98, "{same}/{total}");
}
