//! The model's alignment (last decoder layer's cross-attention, head 0) against transformers'
//! `cross_attentions[-1][:, 0]`, recorded by `scripts/make_alignment_fixtures.py` on the tiny
//! random checkpoints: teacher-forced, alone and in padded batches, on both engines; and the
//! weights read off generation (greedy and beam search) equal to a teacher-forced pass. The
//! tiny models translate into nonsense, so their alignments say nothing about word order: they
//! prove the arithmetic.

mod common;

use serde_json::Value;
use traduire::marian::kernels::Isa;
use traduire::marian::{
    align, generate_aligned, DecodeOptions, KernelChoice, MarianModel, ModelOptions,
};

const MODELS: [&str; 2] = ["tiny-swish", "tiny-relu"];
/// transformers and traduire both compute in f32; their softmaxes differ in rounding only.
const TOLERANCE: f32 = 1e-5;

fn engines() -> [(&'static str, ModelOptions); 2] {
    [
        ("cpu kernels", ModelOptions::default()),
        (
            "candle",
            ModelOptions {
                kernels: KernelChoice::Candle,
                ..ModelOptions::default()
            },
        ),
    ]
}

struct Pair {
    kind: String,
    source: Vec<u32>,
    target: Vec<u32>,
    weights: Vec<Vec<f32>>,
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// The recorded pairs and, for the same pairs in padded batches, the batched weights.
fn fixture(name: &str) -> (Vec<Pair>, Vec<Vec<Vec<f32>>>, usize) {
    let text = std::fs::read_to_string(common::reference_dir(name).join("alignment.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let pairs = doc["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Pair {
            kind: p["kind"].as_str().unwrap().to_string(),
            source: ids(&p["source"]),
            target: ids(&p["target"]),
            weights: rows(&p["weights"]),
        })
        .collect();
    let batched = doc["batched"]
        .as_array()
        .unwrap()
        .iter()
        .map(rows)
        .collect();
    let batch = doc["settings"]["batch"].as_u64().unwrap() as usize;
    (pairs, batched, batch)
}

fn assert_rows_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    let mut worst = 0f32;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{what}: row length");
        for (a, b) in g.iter().zip(w) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= TOLERANCE, "{what}: max difference {worst}");
}

#[test]
fn teacher_forced_weights_equal_transformers_alone_and_batched() {
    for name in MODELS {
        let (pairs, batched, batch) = fixture(name);
        assert!(pairs.len() >= 20, "{name}: {} pairs", pairs.len());
        for engine in engines() {
            let model = MarianModel::load(&common::model_dir(name), &engine.1).unwrap();
            for (i, pair) in pairs.iter().enumerate() {
                let got = align(
                    &model,
                    std::slice::from_ref(&pair.source),
                    std::slice::from_ref(&pair.target),
                )
                .unwrap();
                let what = format!("{name} ({}) pair {i} alone", engine.0);
                assert_rows_close(&what, &got[0], &pair.weights);
                for row in &got[0] {
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-4, "{what}: a row sums to {sum}");
                }
            }
            for (k, chunk) in pairs.chunks(batch).enumerate() {
                let sources: Vec<Vec<u32>> = chunk.iter().map(|p| p.source.clone()).collect();
                let targets: Vec<Vec<u32>> = chunk.iter().map(|p| p.target.clone()).collect();
                let got = align(&model, &sources, &targets).unwrap();
                for (j, rows) in got.iter().enumerate() {
                    let what = format!("{name} ({}) batch {k} pair {j}", engine.0);
                    assert_rows_close(&what, rows, &batched[k * batch + j]);
                }
            }
        }
    }
}

/// The weights read off the search's own steps are those of a teacher-forced pass over the
/// chosen hypothesis: equal to transformers', and on the CPU engine equal bit for bit to
/// [`align`], alone or batched, on every instruction set.
#[test]
fn generation_records_the_teacher_forced_weights() {
    for name in MODELS {
        let (pairs, _, _) = fixture(name);
        for engine in engines() {
            let model = MarianModel::load(&common::model_dir(name), &engine.1).unwrap();
            let cpu = engine.0 == "cpu kernels";
            for kind in ["greedy", "beam"] {
                let chosen: Vec<&Pair> = pairs.iter().filter(|p| p.kind == kind).collect();
                let mut options = DecodeOptions::from_generation(model.generation_config());
                options.max_new_tokens = 24;
                options.num_beams = if kind == "greedy" { 1 } else { 4 };
                options.num_return_sequences = 1;
                let sources: Vec<Vec<u32>> = chosen.iter().map(|p| p.source.clone()).collect();
                let batched = generate_aligned(&model, &sources, &options).unwrap();
                for (i, (pair, hyps)) in chosen.iter().zip(&batched).enumerate() {
                    let what = format!("{name} ({}) {kind} {i}", engine.0);
                    let best = &hyps[0];
                    assert_eq!(best.ids, pair.target, "{what}: ids");
                    assert_rows_close(&what, &best.attention, &pair.weights);
                    let alone =
                        generate_aligned(&model, std::slice::from_ref(&pair.source), &options)
                            .unwrap();
                    if cpu {
                        let forced = align(
                            &model,
                            std::slice::from_ref(&pair.source),
                            std::slice::from_ref(&best.ids),
                        )
                        .unwrap();
                        assert_eq!(best.attention, forced[0], "{what}: vs teacher forcing");
                        assert_eq!(alone[0][0].attention, best.attention, "{what}: alone");
                    } else {
                        assert_rows_close(&what, &alone[0][0].attention, &pair.weights);
                    }
                }
            }
        }
    }
    // Every instruction set gives the same bits.
    let (pairs, _, _) = fixture("tiny-swish");
    let sources: Vec<Vec<u32>> = pairs.iter().map(|p| p.source.clone()).collect();
    let targets: Vec<Vec<u32>> = pairs.iter().map(|p| p.target.clone()).collect();
    let mut first: Option<Vec<Vec<Vec<f32>>>> = None;
    for isa in Isa::available() {
        let options = ModelOptions {
            kernels: KernelChoice::Isa(isa),
            ..ModelOptions::default()
        };
        let model = MarianModel::load(&common::model_dir("tiny-swish"), &options).unwrap();
        let got = align(&model, &sources, &targets).unwrap();
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "{isa}"),
        }
    }
}

#[test]
fn bad_pairs_are_errors() {
    let model =
        MarianModel::load(&common::model_dir("tiny-swish"), &ModelOptions::default()).unwrap();
    assert!(align(&model, &[vec![5, 0]], &[]).is_err());
    assert!(align(&model, &[vec![5, 0]], &[vec![]]).is_err());
    assert!(align(&model, &[vec![5, 0]], &[vec![u32::MAX]]).is_err());
    assert!(align(&model, &[], &[]).unwrap().is_empty());
}
