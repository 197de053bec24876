//! Criterion benches of the CPU matrix-product kernels at the shapes of opus-mt-fr-en
//! (d_model 512, ffn 2048, vocabulary 59,514), for 1, 32 and 128 input rows: f32 and int8,
//! on every instruction set this CPU supports. Throughput is reported in elements/s where one
//! element is one floating-point (or integer) operation: 2 per multiply-add, so
//! "Gelem/s" reads as GFLOP/s (GOP/s for int8).
//!
//! Threads follow RAYON_NUM_THREADS (e.g. `RAYON_NUM_THREADS=2 cargo bench --bench kernels`).
//! Every product runs inside a rayon pool of that size, as the engine's products run inside
//! the model's pool: called from outside a pool, a small product would also pay for handing
//! its work to the pool's threads (measured: 20.7 µs instead of 5.2 µs for 512 × 512 at one
//! row), which the engine never pays.
//! A subset: `cargo bench --bench kernels -- 'int8/avx512/lm_head'`. `candle_q8_0/...` is
//! candle's quantized product at the same shapes, for comparison.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use traduire::marian::kernels::int8::{self, PackedI8, QuantizedRows};
use traduire::marian::kernels::sgemm::{self, PackedF32};
use traduire::marian::kernels::Isa;

/// (name, outputs n, inputs k) of the model's products.
const SHAPES: [(&str, usize, usize); 4] = [
    ("attention_512x512", 512, 512),
    ("ffn_in_2048x512", 2048, 512),
    ("ffn_out_512x2048", 512, 2048),
    ("lm_head_59514x512", 59_514, 512),
];
const ROWS: [usize; 3] = [1, 32, 128];

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 0.2 - 0.1
        })
        .collect()
}

/// A pool like the model's: RAYON_NUM_THREADS threads, or one per core.
fn pool() -> rayon::ThreadPool {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

fn products(c: &mut Criterion) {
    let pool = pool();
    for isa in Isa::available() {
        for (name, n, k) in SHAPES {
            let w = values(n * k, 1);
            let packed_f32 = PackedF32::pack(&w, n, k).unwrap();
            let packed_i8 = PackedI8::quantize(&w, n, k).unwrap();
            drop(w);
            let bias = values(n, 2);
            for m in ROWS {
                let x = values(m * k, 3);
                let mut out = vec![0f32; m * n];
                let ops = 2 * (m * n * k) as u64;

                let mut group = c.benchmark_group(format!("f32/{isa}/{name}"));
                group.throughput(Throughput::Elements(ops));
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(2));
                group.bench_function(BenchmarkId::from_parameter(m), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            sgemm::gemm(isa, &x, m, &packed_f32, Some(&bias), &mut out).unwrap()
                        })
                    })
                });
                group.finish();

                let mut group = c.benchmark_group(format!("int8/{isa}/{name}"));
                group.throughput(Throughput::Elements(ops));
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(2));
                let mut q = QuantizedRows::default();
                group.bench_function(BenchmarkId::from_parameter(m), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            int8::quantize_rows(isa, &x, m, k, &mut q).unwrap();
                            int8::gemm(isa, &q, &packed_i8, Some(&bias), &mut out).unwrap()
                        })
                    })
                });
                group.finish();
            }
        }
    }
}

/// candle's quantized product (`QMatMul`, GGML Q8_0: blocks of 32 weights with one f16
/// scale, activations quantized to Q8_0 per block), the alternative to our int8 kernels, at
/// the same shapes and with the same operation count.
fn candle_q8_0(c: &mut Criterion) {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};
    let pool = pool();
    for (name, n, k) in SHAPES {
        let w = Tensor::from_vec(values(n * k, 1), (n, k), &Device::Cpu).unwrap();
        let q = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap();
        drop(w);
        for m in ROWS {
            let x = Tensor::from_vec(values(m * k, 3), (m, k), &Device::Cpu).unwrap();
            let mut group = c.benchmark_group(format!("candle_q8_0/{name}"));
            group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(2));
            group.bench_function(BenchmarkId::from_parameter(m), |b| {
                pool.install(|| b.iter(|| q.forward(&x).unwrap()))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, products, candle_q8_0);
criterion_main!(benches);
