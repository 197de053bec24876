//! Segmentation throughput on French news prose, in bytes per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use traduire::document::Document;
use traduire::segment::{split_sentences, SegmentOptions};

/// About 1 MB of French prose built from the seed article and the test set.
fn corpus() -> String {
    let seed = include_str!("../seeds/000_63993c6b9a9c911d.txt");
    let cases: String = include_str!("../tests/fixtures/segment/cases.txt")
        .lines()
        .filter(|l| *l != "===" && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let unit = format!("{seed}\n\n{cases}\n\n");
    unit.repeat((1 << 20) / unit.len() + 1)
}

fn bench(c: &mut Criterion) {
    let text = corpus();
    let mut group = c.benchmark_group("segment");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("split_sentences", |b| {
        b.iter(|| split_sentences(black_box(&text)).len())
    });
    group.bench_function("document_parse", |b| {
        b.iter(|| {
            Document::parse(black_box(text.clone()), &SegmentOptions::default()).sentence_count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
