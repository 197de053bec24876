//! Criterion benches of the model's hot paths on the exact opus-mt-fr-en architecture with
//! random weights (speed does not depend on the values; the outputs are nonsense):
//! one encoder pass, and one decoder step at batch 1 and at batch 32 x beam 4.
//!
//! f32 and int8, on the CPU kernels. Threads: TRADUIRE_THREADS (default: one per core), e.g.
//! `TRADUIRE_THREADS=2 cargo bench --bench model`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use traduire::device::Precision;
use traduire::marian::config::opus_mt_fr_en;
use traduire::marian::{MarianModel, ModelOptions};

/// Source length of the benched sentences: about a news sentence.
const SOURCE_LEN: usize = 36;
/// Tokens already decoded when the timed step runs.
const PREFIX: usize = 20;

fn model(precision: Precision) -> MarianModel {
    let (config, generation) = opus_mt_fr_en();
    let options = ModelOptions {
        precision,
        threads: std::env::var("TRADUIRE_THREADS")
            .ok()
            .and_then(|t| t.parse().ok()),
        ..ModelOptions::default()
    };
    MarianModel::random(config, generation, &options).expect("random model")
}

const PRECISIONS: [Precision; 2] = [Precision::F32, Precision::Int8];

fn sources(batch: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|b| {
            let mut ids: Vec<u32> = (0..SOURCE_LEN as u32 - 1)
                .map(|i| 100 + (i * 37 + b as u32 * 101) % 50_000)
                .collect();
            ids.push(0);
            ids
        })
        .collect()
}

fn encoder(c: &mut Criterion) {
    for precision in PRECISIONS {
        let model = model(precision);
        let mut group = c.benchmark_group(format!("encoder {precision}"));
        group.sample_size(10);
        for batch in [1usize, 32] {
            let sources = sources(batch);
            group.throughput(Throughput::Elements((batch * SOURCE_LEN) as u64));
            group.bench_function(format!("batch {batch} x {SOURCE_LEN} tokens"), |b| {
                b.iter(|| model.encode(&sources).unwrap())
            });
        }
        group.finish();
    }
}

fn decoder_step(c: &mut Criterion) {
    for precision in PRECISIONS {
        let model = model(precision);
        let start = model.config().decoder_start_token_id;
        let mut group = c.benchmark_group(format!("decoder step {precision}"));
        group.sample_size(10);
        for (batch, beams) in [(1usize, 1usize), (32, 4)] {
            let encoded = model.encode(&sources(batch)).unwrap();
            let rows = batch * beams;
            group.throughput(Throughput::Elements(rows as u64));
            group.bench_function(
                format!("batch {batch} x beam {beams}, step {PREFIX}"),
                |b| {
                    // Each timed step needs a decoder with PREFIX steps done: build it untimed.
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let mut decoder =
                                model.start_decoding(&encoded, beams, PREFIX + 1).unwrap();
                            let tokens = vec![start; rows];
                            for _ in 0..PREFIX {
                                decoder.step(&tokens).unwrap();
                            }
                            let t = Instant::now();
                            model.run(|| decoder.step(&tokens).map(|_| ())).unwrap();
                            total += t.elapsed();
                        }
                        total
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, encoder, decoder_step);
criterion_main!(benches);
