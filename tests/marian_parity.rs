//! Parity with Hugging Face transformers on tiny random Marian checkpoints.
//!
//! `scripts/make_model_fixtures.py` saved two randomly initialised checkpoints and what
//! transformers computes with them (encoder states, first-step logits, greedy and beam search
//! ids and scores, alone and in padded batches). These models translate into nonsense: they
//! exist to prove that our arithmetic and search equal the reference implementation.

mod common;

use serde_json::Value;
use traduire::device::{DeviceSpec, Precision};
use traduire::marian::kernels::Isa;
use traduire::marian::{
    generate, DecodeOptions, EarlyStopping, Hypothesis, KernelChoice, MarianModel, ModelOptions,
};

const MODELS: [&str; 2] = ["tiny-swish", "tiny-relu"];

/// The device of the generic engine's cases: the CPU, or the GPU named by
/// `TRADUIRE_TEST_DEVICE` (e.g. `cuda`, in a `--features cuda` build: `scripts/gpu_check.sh`).
fn test_device() -> DeviceSpec {
    match std::env::var("TRADUIRE_TEST_DEVICE") {
        Ok(name) => name.parse().expect("TRADUIRE_TEST_DEVICE names a device"),
        Err(_) => DeviceSpec::Cpu,
    }
}

/// Both engines: traduire's CPU kernels (the default) and candle's operations (what GPUs
/// run, on the CPU or on the device of [`test_device`]), each proven against transformers.
fn engines() -> [(&'static str, ModelOptions); 2] {
    [
        ("cpu kernels", ModelOptions::default()),
        (
            "candle",
            ModelOptions {
                kernels: KernelChoice::Candle,
                device: test_device(),
                ..ModelOptions::default()
            },
        ),
    ]
}

struct Case {
    name: String,
    model: MarianModel,
    reference: Value,
}

fn load(name: &'static str, engine: &(&str, ModelOptions)) -> Case {
    let dir = common::model_dir(name);
    let model = MarianModel::load(&dir, &engine.1).expect("fixture model loads");
    let text = std::fs::read_to_string(common::reference_dir(name).join("reference.json"))
        .expect("reference.json");
    Case {
        name: format!("{name} ({})", engine.0),
        model,
        reference: serde_json::from_str(&text).expect("reference.json parses"),
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id list")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a float list")
        .iter()
        .map(|x| x.as_f64().expect("a float") as f32)
        .collect()
}

fn inputs(case: &Case) -> Vec<Vec<u32>> {
    case.reference["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (g, w) in got.iter().zip(want) {
        let err = (g - w).abs() / w.abs().max(1.0);
        worst = worst.max(err);
    }
    assert!(worst <= tol, "{what}: max relative error {worst} > {tol}");
}

fn options(case: &Case, settings: &Value) -> DecodeOptions {
    let mut o = DecodeOptions::from_generation(case.model.generation_config());
    o.num_beams = settings["num_beams"].as_u64().unwrap_or(1) as usize;
    o.num_return_sequences = settings["num_return_sequences"].as_u64().unwrap_or(1) as usize;
    o.max_new_tokens = settings["max_new_tokens"].as_u64().unwrap() as usize;
    o.length_penalty = settings["length_penalty"].as_f64().unwrap_or(1.0) as f32;
    o.min_new_tokens = settings["min_new_tokens"].as_u64().unwrap_or(0) as usize;
    o.early_stopping = match settings["early_stopping"].as_bool() {
        Some(true) => EarlyStopping::Always,
        _ => EarlyStopping::Heuristic,
    };
    o.no_repeat_ngram_size = settings["no_repeat_ngram_size"].as_u64().unwrap_or(0) as usize;
    o.repetition_penalty = settings["repetition_penalty"].as_f64().unwrap_or(1.0) as f32;
    o
}

fn check_hyps(what: &str, got: &[Hypothesis], want: &Value) {
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: number of hypotheses");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.ids, ids(&w["ids"]), "{what}: hypothesis {k} ids");
        assert_close(
            &format!("{what}: hypothesis {k} score"),
            &[g.score],
            &[w["score"].as_f64().unwrap() as f32],
            1e-4,
        );
    }
}

/// Every (model, engine) case.
fn cases() -> Vec<Case> {
    MODELS
        .iter()
        .flat_map(|name| engines().map(|engine| load(name, &engine)))
        .collect()
}

#[test]
fn encoder_states_match_transformers() {
    for case in cases() {
        let name = &case.name;
        let inputs = inputs(&case);
        for entry in case.reference["encoder"].as_array().unwrap() {
            let i = entry["input"].as_u64().unwrap() as usize;
            let (got, _) = case
                .model
                .encode(&[inputs[i].clone()])
                .unwrap()
                .states()
                .unwrap();
            assert_close(
                &format!("{name} encoder input {i}"),
                &got,
                &floats(&entry["hidden"]),
                1e-4,
            );
        }
        // A padded batch: only real (unpadded) positions must match.
        let batch = &case.reference["encoder_batch"];
        let members: Vec<Vec<u32>> = batch["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| inputs[i.as_u64().unwrap() as usize].clone())
            .collect();
        let (got, [b, len, d]) = case.model.encode(&members).unwrap().states().unwrap();
        let want = floats(&batch["hidden"]);
        for (row, member) in members.iter().enumerate().take(b) {
            let range = row * len * d..(row * len + member.len()) * d;
            assert_close(
                &format!("{name} padded encoder row {row}"),
                &got[range.clone()],
                &want[range],
                1e-4,
            );
        }
    }
}

#[test]
fn first_step_logits_match_transformers() {
    for case in cases() {
        let name = &case.name;
        let inputs = inputs(&case);
        let start = case.model.config().decoder_start_token_id;
        for entry in case.reference["first_step_logits"].as_array().unwrap() {
            let i = entry["input"].as_u64().unwrap() as usize;
            let encoded = case.model.encode(&[inputs[i].clone()]).unwrap();
            let mut decoder = case.model.start_decoding(&encoded, 1, 1).unwrap();
            let got = decoder.step(&[start]).unwrap().to_vec();
            assert_close(
                &format!("{name} logits input {i}"),
                &got,
                &floats(&entry["logits"]),
                1e-4,
            );
        }
    }
}

#[test]
fn greedy_matches_transformers_alone_and_batched() {
    for case in cases() {
        let name = &case.name;
        let inputs = inputs(&case);
        let opts = options(&case, &case.reference["settings"]["greedy"]);
        let mut alone = Vec::new();
        for entry in case.reference["greedy"].as_array().unwrap() {
            let i = entry["input"].as_u64().unwrap() as usize;
            let got = generate(&case.model, &[inputs[i].clone()], &opts).unwrap();
            let hyp = &got[0][0];
            assert_eq!(hyp.ids, ids(&entry["ids"]), "{name} greedy input {i}");
            assert_close(
                &format!("{name} greedy score {i}"),
                &[hyp.score],
                &[entry["score"].as_f64().unwrap() as f32],
                1e-4,
            );
            alone.push(hyp.ids.clone());
        }
        assert!(alone.len() >= 30, "{name}: at least 30 greedy cases");
        let batched: Vec<Vec<u32>> = inputs
            .chunks(8)
            .flat_map(|chunk| generate(&case.model, chunk, &opts).unwrap())
            .map(|hyps| hyps[0].ids.clone())
            .collect();
        assert_eq!(
            batched, alone,
            "{name}: batched greedy ids equal unbatched ids"
        );
        for entry in case.reference["greedy_batched"].as_array().unwrap() {
            let i = entry["input"].as_u64().unwrap() as usize;
            assert_eq!(
                batched[i],
                ids(&entry["ids"]),
                "{name} transformers batched greedy {i}"
            );
        }
        // One batch of everything gives the same ids again.
        let all: Vec<Vec<u32>> = generate(&case.model, &inputs, &opts)
            .unwrap()
            .into_iter()
            .map(|h| h[0].ids.clone())
            .collect();
        assert_eq!(all, alone, "{name}: one big batch equals unbatched");
    }
}

#[test]
fn beam_search_matches_transformers_alone_and_batched() {
    for case in cases() {
        let name = &case.name;
        let inputs = inputs(&case);
        let opts = options(&case, &case.reference["settings"]["beam"]);
        let mut alone = Vec::new();
        for entry in case.reference["beam"].as_array().unwrap() {
            let i = entry["input"].as_u64().unwrap() as usize;
            let got = generate(&case.model, &[inputs[i].clone()], &opts).unwrap();
            check_hyps(&format!("{name} beam input {i}"), &got[0], &entry["hyps"]);
            alone.push(got[0].iter().map(|h| h.ids.clone()).collect::<Vec<_>>());
        }
        assert!(alone.len() >= 30, "{name}: at least 30 beam cases");
        let batched: Vec<Vec<Hypothesis>> = inputs
            .chunks(8)
            .flat_map(|chunk| generate(&case.model, chunk, &opts).unwrap())
            .collect();
        for entry in case.reference["beam_batched"].as_array().unwrap() {
            let i = entry["input"].as_u64().unwrap() as usize;
            check_hyps(
                &format!("{name} batched beam input {i}"),
                &batched[i],
                &entry["hyps"],
            );
            let batched_ids: Vec<Vec<u32>> = batched[i].iter().map(|h| h.ids.clone()).collect();
            assert_eq!(
                batched_ids, alone[i],
                "{name}: batched beam ids equal unbatched ({i})"
            );
        }
    }
}

#[test]
fn beam_options_match_transformers() {
    for case in cases() {
        let name = &case.name;
        let inputs = inputs(&case);
        for group in case.reference["beam_options"].as_array().unwrap() {
            let opts = options(&case, &group["settings"]);
            for entry in group["results"].as_array().unwrap() {
                let i = entry["input"].as_u64().unwrap() as usize;
                let got = generate(&case.model, &[inputs[i].clone()], &opts).unwrap();
                check_hyps(
                    &format!("{name} {} input {i}", group["settings"]),
                    &got[0],
                    &entry["hyps"],
                );
            }
        }
    }
}

/// `no_repeat_ngram_size` and `repetition_penalty`, greedy and beam, alone and together, as
/// transformers applies them (`scripts/make_guard_fixtures.py`); each input alone and all of
/// them in one batch.
#[test]
fn repetition_guards_match_transformers() {
    for case in cases() {
        let name = &case.name;
        let inputs = inputs(&case);
        let text = std::fs::read_to_string(
            common::reference_dir(name.split(' ').next().unwrap()).join("guards.json"),
        )
        .expect("guards.json");
        let guards: Value = serde_json::from_str(&text).unwrap();
        let groups = guards["groups"].as_array().unwrap();
        assert!(groups.len() >= 8, "{name}: guard groups");
        for group in groups {
            let settings = &group["settings"];
            let opts = options(&case, settings);
            let results = group["results"].as_array().unwrap();
            assert!(
                results.len() >= 10,
                "{name} {settings}: too few inputs recorded"
            );
            let sources: Vec<Vec<u32>> = results
                .iter()
                .map(|r| inputs[r["input"].as_u64().unwrap() as usize].clone())
                .collect();
            let batched = generate(&case.model, &sources, &opts).unwrap();
            for ((entry, source), in_batch) in results.iter().zip(&sources).zip(&batched) {
                let what = format!("{name} {settings} input {}", entry["input"]);
                let alone = generate(&case.model, std::slice::from_ref(source), &opts).unwrap();
                check_hyps(&what, &alone[0], &entry["hyps"]);
                check_hyps(&format!("{what} (batched)"), in_batch, &entry["hyps"]);
            }
        }
    }
}

/// The guards change something: on these looping models, every no-repeat setting yields
/// outputs without a repeated n-gram of its size, where the plain search repeats.
#[test]
fn no_repeat_ngram_outputs_have_no_repeated_ngram() {
    let case = load("tiny-swish", &engines()[0]);
    let inputs = inputs(&case);
    let mut plain = options(&case, &case.reference["settings"]["greedy"]);
    plain.max_new_tokens = 40;
    let repeats = |ids: &[u32], n: usize| {
        let grams: Vec<&[u32]> = ids.windows(n).collect();
        grams
            .iter()
            .enumerate()
            .any(|(i, g)| grams[..i].contains(g))
    };
    let looping = generate(&case.model, &inputs[..10], &plain).unwrap();
    assert!(
        looping.iter().any(|h| repeats(&h[0].ids, 3)),
        "the plain search repeats"
    );
    for beams in [1, 4] {
        for n in [2, 3] {
            let opts = DecodeOptions {
                num_beams: beams,
                no_repeat_ngram_size: n,
                ..plain.clone()
            };
            for hyps in generate(&case.model, &inputs[..10], &opts).unwrap() {
                assert!(
                    !repeats(&hyps[0].ids, n),
                    "beams {beams}, n {n}: {:?}",
                    hyps[0].ids
                );
            }
        }
    }
}

#[test]
fn fixtures_are_real() {
    // Guard against an empty or truncated reference silently passing the loops above.
    let cases = cases();
    assert_eq!(cases.len(), 4);
    for case in cases {
        assert!(case.reference["encoder"].as_array().unwrap().len() >= 3);
        assert!(
            case.reference["first_step_logits"]
                .as_array()
                .unwrap()
                .len()
                >= 3
        );
        assert!(case.reference["beam_options"].as_array().unwrap().len() >= 2);
    }
}

/// The CPU engine gives the same bits for a sentence alone or in any batch, and on every
/// instruction set: ids and scores, greedy and beam, f32 and int8.
#[test]
fn cpu_engine_is_batch_and_isa_invariant() {
    for (name, precision) in MODELS
        .into_iter()
        .flat_map(|name| [(name, Precision::F32), (name, Precision::Int8)])
    {
        let engine = (
            "cpu kernels",
            ModelOptions {
                precision,
                ..ModelOptions::default()
            },
        );
        let reference = load(name, &engine);
        let inputs = inputs(&reference);
        for settings in ["greedy", "beam"] {
            let opts = options(&reference, &reference.reference["settings"][settings]);
            let bits = |hyps: &[Vec<Hypothesis>]| -> Vec<(Vec<u32>, u32)> {
                hyps.iter()
                    .flatten()
                    .map(|h| (h.ids.clone(), h.score.to_bits()))
                    .collect()
            };
            let alone: Vec<Vec<Hypothesis>> = inputs
                .iter()
                .flat_map(|i| generate(&reference.model, std::slice::from_ref(i), &opts).unwrap())
                .collect();
            let batched = generate(&reference.model, &inputs, &opts).unwrap();
            assert_eq!(
                bits(&batched),
                bits(&alone),
                "{name} {settings}: batch of all"
            );
            for isa in Isa::available() {
                let options = ModelOptions {
                    kernels: KernelChoice::Isa(isa),
                    threads: Some(3),
                    precision,
                    ..ModelOptions::default()
                };
                let model = MarianModel::load(&common::model_dir(name), &options).unwrap();
                let got = generate(&model, &inputs[..12], &opts).unwrap();
                assert_eq!(
                    bits(&got),
                    bits(&alone[..12]),
                    "{name} {precision} {settings} {isa}"
                );
            }
        }
    }
}

/// f16 and bf16 on the generic engine (on the GPU of `TRADUIRE_TEST_DEVICE`, or f16 on the
/// CPU): how many greedy and beam outputs have transformers' f32 ids. Reduced precision is not
/// expected to agree everywhere, so this reports the agreement (`scripts/gpu_check.sh` prints
/// it) and requires only that every input gets a well-formed output.
#[test]
#[ignore = "a report, run by scripts/gpu_check.sh"]
fn reduced_precision_agreement() {
    let device = test_device();
    for precision in [Precision::F16, Precision::Bf16] {
        if let Err(e) = precision.check_on(device) {
            println!("agreement {precision} on {device}: skipped ({e})");
            continue;
        }
        for name in MODELS {
            let model_options = ModelOptions {
                kernels: KernelChoice::Candle,
                device,
                precision,
                ..ModelOptions::default()
            };
            let case = load(name, &("reduced", model_options));
            let inputs = inputs(&case);
            let vocab = case.model.config().vocab_size as u32;
            for search in ["greedy", "beam"] {
                let opts = options(&case, &case.reference["settings"][search]);
                let (mut same, mut total) = (0, 0);
                for entry in case.reference[search].as_array().unwrap() {
                    let i = entry["input"].as_u64().unwrap() as usize;
                    let got = generate(&case.model, &[inputs[i].clone()], &opts).unwrap();
                    let best = &got[0][0];
                    assert!(!best.ids.is_empty() && best.ids.iter().all(|&t| t < vocab));
                    assert!(best.score.is_finite(), "{name} {search} {i}");
                    let want = match search {
                        "greedy" => ids(&entry["ids"]),
                        _ => ids(&entry["hyps"][0]["ids"]),
                    };
                    same += usize::from(best.ids == want);
                    total += 1;
                }
                println!(
                    "agreement {precision} on {device}: {name} {search}: {same}/{total} outputs have transformers' f32 ids"
                );
            }
        }
    }
}
