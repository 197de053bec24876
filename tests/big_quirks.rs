//! opus-mt-tc-big-fr-en's checkpoint quirks at tiny size (`tests/fixtures/marian/tiny-big`,
//! `scripts/make_big_fixture.py`): `</s>` is not id 0, pad = decoder start = the last id, relu,
//! 1,024 positions, float16 weights. The tokenizer, both engines and the search must follow the
//! config, not opus-mt-fr-en's conventions: ids and scores equal transformers', alone and
//! batched. Random weights: the English is nonsense.

mod common;

use serde_json::Value;
use traduire::device::Precision;
use traduire::marian::{generate, DecodeOptions, KernelChoice, MarianModel, ModelOptions};
use traduire::tokenizer::MarianTokenizer;

fn reference() -> Value {
    let text =
        std::fs::read_to_string(common::reference_dir("tiny-big").join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn options(model: &MarianModel, beams: usize) -> DecodeOptions {
    let mut o = DecodeOptions::from_generation(model.generation_config());
    o.num_beams = beams;
    o.num_return_sequences = 1;
    o.max_new_tokens = 24;
    o
}

#[test]
fn tokenizer_and_config_follow_the_checkpoint() {
    let reference = reference();
    let dir = common::model_dir("tiny-big");
    let tokenizer = MarianTokenizer::from_dir(&dir).unwrap();
    assert_eq!(tokenizer.eos_id(), 1000);
    assert_eq!(tokenizer.pad_id() as usize, tokenizer.vocab_size() - 1);
    for (text, want) in reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["inputs"].as_array().unwrap())
    {
        assert_eq!(tokenizer.encode(text.as_str().unwrap()).unwrap(), ids(want));
    }
    let model = MarianModel::load(&dir, &ModelOptions::default()).unwrap();
    let c = model.config();
    assert_eq!((c.eos_token_id, c.max_position_embeddings), (1000, 1024));
    assert_eq!(c.decoder_start_token_id, c.pad_token_id);
    assert_eq!(
        model.generation_config().forced_eos_token_id,
        Some(1000),
        "forced EOS from the config"
    );
}

#[test]
fn greedy_and_beam_equal_transformers_alone_and_batched() {
    let reference = reference();
    let inputs: Vec<Vec<u32>> = reference["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    let engines = [
        ("cpu kernels", ModelOptions::default()),
        (
            "candle",
            ModelOptions {
                kernels: KernelChoice::Candle,
                ..ModelOptions::default()
            },
        ),
    ];
    for (engine, model_options) in engines {
        let model = MarianModel::load(&common::model_dir("tiny-big"), &model_options).unwrap();
        for (search, beams) in [("greedy", 1), ("beam", 4)] {
            let opts = options(&model, beams);
            let batched = generate(&model, &inputs, &opts).unwrap();
            for (i, input) in inputs.iter().enumerate() {
                let want = match search {
                    "greedy" => &reference["greedy"][i],
                    _ => &reference["beam"][i][0],
                };
                let alone = generate(&model, std::slice::from_ref(input), &opts).unwrap();
                let what = format!("{engine} {search} {i}");
                assert_eq!(alone[0][0].ids, ids(&want["ids"]), "{what}");
                let score = want["score"].as_f64().unwrap() as f32;
                assert!(
                    (alone[0][0].score - score).abs() <= 1e-4 * score.abs().max(1.0),
                    "{what}: score {} vs {score}",
                    alone[0][0].score
                );
                assert_eq!(batched[i][0].ids, alone[0][0].ids, "{what}: batched");
                let batched_want = &reference[format!("{search}_batched")][i];
                assert_eq!(
                    batched[i][0].ids,
                    ids(batched_want),
                    "{what}: transformers batched"
                );
            }
        }
    }
    // int8 runs the same checkpoint (its ids may differ from f32's: quantized weights).
    let int8 = MarianModel::load(
        &common::model_dir("tiny-big"),
        &ModelOptions {
            precision: Precision::Int8,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let out = generate(&int8, &inputs, &options(&int8, 4)).unwrap();
    assert!(out
        .iter()
        .all(|h| !h[0].ids.is_empty() && h[0].score.is_finite()));
}
