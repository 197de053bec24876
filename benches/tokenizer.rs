//! Tokenizer throughput: sentences per second when encoding the seed article, and decoding.
//!
//! Run with `cargo bench -j 1 --bench tokenizer`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use traduire::tokenizer::MarianTokenizer;

fn seed_sentences() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("seeds/000_63993c6b9a9c911d.txt"))
        .expect("reading the seed article");
    // Sentence-ish split: good enough for a throughput figure.
    text.lines()
        .flat_map(|line| line.split_inclusive(". "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn bench_tokenizer(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let tokenizer = MarianTokenizer::from_dir(&dir).expect("loading the fixture tokenizer");
    let sentences = seed_sentences();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let encoded = tokenizer.encode_batch(&refs).unwrap();

    let mut group = c.benchmark_group("tokenizer");
    group.throughput(Throughput::Elements(sentences.len() as u64));
    group.bench_function("encode_seed_sentences", |b| {
        b.iter(|| tokenizer.encode_batch(black_box(&refs)).unwrap())
    });
    group.bench_function("decode_seed_sentences", |b| {
        b.iter(|| {
            for ids in &encoded {
                black_box(tokenizer.decode(black_box(ids)).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_tokenizer);
criterion_main!(benches);
