//! The full-size check: a randomly initialised checkpoint with the exact opus-mt-fr-en
//! architecture (d_model 512, 6+6 layers, vocabulary 59514), made by
//! `scripts/make_bench_model.py`, loads and generates. It is ~300 MB and never committed, so
//! this test is ignored by default; run it with
//!
//!     cargo test --release --test full_size -- --ignored
//!
//! (model folder: $TRADUIRE_BENCH_MODEL, else ~/.cache/traduire/opus-mt-fr-en-random).
//! Random weights translate into nonsense: the test checks loading and decoding, not English.

use std::path::PathBuf;

use traduire::device::Precision;
use traduire::marian::{generate, ModelOptions};
use traduire::translator::Translator;

fn model_dir() -> PathBuf {
    match std::env::var_os("TRADUIRE_BENCH_MODEL") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME"))
            .join(".cache/traduire/opus-mt-fr-en-random"),
    }
}

#[test]
#[ignore = "needs the ~300 MB random checkpoint from scripts/make_bench_model.py"]
fn full_size_random_checkpoint_loads_and_generates() {
    for precision in [Precision::F32, Precision::Int8] {
        check(precision);
    }
}

fn check(precision: Precision) {
    let dir = model_dir();
    let options = ModelOptions {
        precision,
        ..ModelOptions::default()
    };
    let translator = Translator::load(&dir, &options)
        .unwrap_or_else(|e| panic!("{}: {e:#} (run scripts/make_bench_model.py)", dir.display()));
    let config = translator.model().config();
    assert_eq!(
        (
            config.d_model,
            config.encoder_layers,
            config.decoder_layers,
            config.vocab_size
        ),
        (512, 6, 6, 59514)
    );
    let seed = include_str!("../seeds/000_63993c6b9a9c911d.txt");
    let sentences: Vec<&str> = seed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(6)
        .collect();
    let sources = translator.tokenizer().encode_batch(&sentences).unwrap();
    for beams in [1, 4] {
        let mut options = translator.default_decode_options();
        options.num_beams = beams;
        options.num_return_sequences = 1;
        options.max_new_tokens = 12;
        let batched = generate(translator.model(), &sources, &options).unwrap();
        assert_eq!(batched.len(), sources.len());
        for (source, hyps) in sources.iter().zip(&batched) {
            let hyp = &hyps[0];
            assert!(!hyp.ids.is_empty() && hyp.ids.len() <= 12);
            assert!(hyp.score.is_finite() && hyp.score <= 0.0);
            let alone =
                generate(translator.model(), std::slice::from_ref(source), &options).unwrap();
            assert_eq!(
                (&alone[0][0].ids, alone[0][0].score.to_bits()),
                (&hyp.ids, hyp.score.to_bits()),
                "batched and alone agree bit for bit ({precision}, beams {beams})"
            );
        }
    }
}
