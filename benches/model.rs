//! Criterion benches of the model's hot paths on the exact opus-mt-fr-en architecture with
//! random weights (speed does not depend on the values; the outputs are nonsense):
//! one encoder pass, and one decoder step at batch 1 and at batch 32 x beam 4.
//!
//! Threads follow RAYON_NUM_THREADS (e.g. `RAYON_NUM_THREADS=2 cargo bench --bench model`).

use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use traduire::marian::config::opus_mt_fr_en;
use traduire::marian::MarianModel;

/// Source length of the benched sentences: about a news sentence.
const SOURCE_LEN: usize = 36;
/// Tokens already decoded when the timed step runs.
const PREFIX: usize = 20;

fn model() -> MarianModel {
    let (config, generation) = opus_mt_fr_en();
    MarianModel::random(config, generation, &Device::Cpu, DType::F32).expect("random model")
}

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
    let model = model();
    let mut group = c.benchmark_group("encoder");
    group.sample_size(10);
    for batch in [1usize, 32] {
        let (ids, mask) = model.pad_sources(&sources(batch)).unwrap();
        group.throughput(Throughput::Elements((batch * SOURCE_LEN) as u64));
        group.bench_function(format!("batch {batch} x {SOURCE_LEN} tokens"), |b| {
            b.iter(|| model.encode(&ids, &mask).unwrap())
        });
    }
    group.finish();
}

fn decoder_step(c: &mut Criterion) {
    let model = model();
    let start = model.config().decoder_start_token_id;
    let mut group = c.benchmark_group("decoder step");
    group.sample_size(10);
    for (batch, beams) in [(1usize, 1usize), (32, 4)] {
        let (ids, mask) = model.pad_sources(&sources(batch)).unwrap();
        let encoded = model.encode(&ids, &mask).unwrap();
        let rows = batch * beams;
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(
            format!("batch {batch} x beam {beams}, step {PREFIX}"),
            |b| {
                // Each timed step needs a fresh cache filled with PREFIX tokens: build it untimed.
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut state = model
                            .start_decoding(&encoded, &mask, beams, PREFIX + 1)
                            .unwrap();
                        let tokens = vec![start; rows];
                        for _ in 0..PREFIX {
                            model.decode_step(&mut state, &tokens).unwrap();
                        }
                        let t = Instant::now();
                        model.decode_step(&mut state, &tokens).unwrap();
                        total += t.elapsed();
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, encoder, decoder_step);
criterion_main!(benches);
