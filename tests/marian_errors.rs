//! Bad checkpoints get errors that name the file and what is wrong, never a panic nor an
//! unbounded allocation; numerical overflow in decoding is an error, not a crash.

mod common;

use std::path::Path;

use candle_core::{DType, Device};
use serde_json::{json, Value};
use traduire::marian::{
    generate, DecodeOptions, KernelChoice, MarianError, MarianModel, ModelOptions,
};

/// A copy of the tiny checkpoint in a temp folder, to break.
fn copy_fixture() -> tempfile::TempDir {
    common::model_copy("tiny-swish")
}

fn load_error(dir: &Path) -> String {
    match MarianModel::load(dir, &ModelOptions::default()) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_tensor_is_named_with_the_file() {
    let dir = copy_fixture();
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.remove("model.decoder.layers.1.fc2.bias").unwrap();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.decoder.layers.1.fc2.bias"), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn wrong_shape_is_named() {
    let dir = copy_fixture();
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let bad = candle_core::Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    tensors.insert("model.encoder.layers.0.fc1.bias".to_string(), bad);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.encoder.layers.0.fc1.bias"), "{err}");
}

#[test]
fn missing_embeddings_are_named() {
    let dir = copy_fixture();
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.retain(|name, _| !name.contains("embed_tokens") && !name.contains("shared"));
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.shared.weight is missing"), "{err}");
}

#[test]
fn truncated_and_garbage_weight_files_are_named() {
    for (name, keep) in [("model.safetensors", 1000usize), ("model.safetensors", 4)] {
        let dir = copy_fixture();
        let path = dir.path().join(name);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = load_error(dir.path());
        assert!(
            err.contains(name) && err.contains("truncated or corrupt"),
            "{err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::model_dir("tiny-relu")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not a zip archive").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("pytorch_model.bin"), "{err}");
}

#[test]
fn unsupported_config_is_named() {
    let dir = copy_fixture();
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"swish\"", "\"tanh\"")).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("activation_function"),
        "{err}"
    );
    std::fs::write(&path, "{ not json").unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("not valid JSON"),
        "{err}"
    );
}

/// Rewrites one field of the copy's config.json (generation fields: of
/// generation_config.json, which overrides config.json).
fn set_config(dir: &Path, field: &str, value: Value) {
    let generation = ["forced_eos_token_id", "bad_words_ids", "num_beams"];
    let file = if generation.contains(&field) {
        "generation_config.json"
    } else {
        "config.json"
    };
    let path = dir.join(file);
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config[field] = value;
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn hostile_configs_are_refused_before_any_allocation() {
    // Each would panic (d_model 0 reached a chunk size of 0 in the kernels) or allocate without
    // bound (a position table of 2^40 x 2^20 floats) if it were not checked first.
    for (field, value, expected) in [
        (
            "d_model",
            json!(0),
            "d_model = 0 is out of range (1 to 16384)",
        ),
        (
            "d_model",
            json!(1u64 << 40),
            "d_model = 1099511627776 is out of range",
        ),
        (
            "max_position_embeddings",
            json!(1u64 << 40),
            "max_position_embeddings = 1099511627776 is out of range (2 to 65536)",
        ),
        (
            "vocab_size",
            json!(u64::MAX),
            "vocab_size = 18446744073709551615 is out of range",
        ),
        (
            "encoder_attention_heads",
            json!(0),
            "encoder_attention_heads = 0 is out of range",
        ),
        (
            "decoder_attention_heads",
            json!(5),
            "does not divide d_model",
        ),
        (
            "forced_eos_token_id",
            json!(1_000_000),
            "forced_eos_token_id = 1000000 is outside the vocabulary",
        ),
        (
            "bad_words_ids",
            json!([[999_999]]),
            "bad_words_ids = 999999 is outside the vocabulary",
        ),
        (
            "eos_token_id",
            json!(-1),
            "eos_token_id must be a non-negative integer",
        ),
        (
            "num_beams",
            json!(1_000_000),
            "num_beams = 1000000 is out of range (1 to 128)",
        ),
    ] {
        let dir = copy_fixture();
        set_config(dir.path(), field, value);
        let err = load_error(dir.path());
        assert!(err.contains("config.json:"), "{err}");
        assert!(err.contains(expected), "{field}: {err}");
    }
}

#[test]
fn config_larger_than_the_weights_names_the_tensor_before_allocating() {
    // A config that claims a model the weight file does not hold: refused when the file's
    // index is checked, before the (here 1.4 GB) matrices would be allocated.
    let dir = copy_fixture();
    set_config(dir.path(), "d_model", json!(2048));
    set_config(dir.path(), "decoder_ffn_dim", json!(8192));
    set_config(dir.path(), "encoder_ffn_dim", json!(8192));
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("has shape"),
        "{err}"
    );
    // 171 GB of weights: refused from the config alone where that exceeds the machine's
    // memory, by the index check otherwise; never allocated.
    set_config(dir.path(), "d_model", json!(16384));
    set_config(dir.path(), "decoder_ffn_dim", json!(262_144));
    set_config(dir.path(), "encoder_ffn_dim", json!(262_144));
    let err = load_error(dir.path());
    assert!(
        err.contains("cannot allocate the model's weights") || err.contains("has shape"),
        "{err}"
    );
}

#[test]
fn nan_logits_are_an_error_in_greedy_and_beam_search() {
    // A NaN in the last layer norm makes every logit NaN, as an f16 overflow can: both
    // searches must stop with an error (beam search used to index an empty beam list).
    let dir = copy_fixture();
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let name = "model.decoder.layers.2.final_layer_norm.weight";
    let nan = candle_core::Tensor::full(f32::NAN, tensors[name].dims(), &Device::Cpu).unwrap();
    tensors.insert(name.to_string(), nan);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    for kernels in [KernelChoice::Auto, KernelChoice::Candle] {
        let options = ModelOptions {
            kernels,
            ..ModelOptions::default()
        };
        let model = MarianModel::load(dir.path(), &options).unwrap();
        let sources = vec![vec![5, 6, 7, 0], vec![8, 0]];
        for beams in [1, 4] {
            let mut decode = DecodeOptions::from_generation(model.generation_config());
            decode.num_beams = beams;
            decode.max_new_tokens = 8;
            match generate(&model, &sources, &decode) {
                Err(MarianError::NotFinite(where_)) => {
                    assert!(where_.contains("sentence 1"), "{where_}")
                }
                other => panic!("{kernels:?} beams {beams}: {other:?}"),
            }
        }
    }
}

#[test]
fn huge_beams_and_batches_are_errors_not_aborts() {
    let model =
        MarianModel::load(&common::model_dir("tiny-swish"), &ModelOptions::default()).unwrap();
    let mut decode = DecodeOptions::from_generation(model.generation_config());
    decode.num_beams = 100_000_000;
    let err = generate(&model, &[vec![5, 0]], &decode).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("num_beams = 100000000 is out of range"),
        "{err}"
    );
    // The largest beam accepted, on a large batch: it runs (memory grows with the steps
    // actually decoded, not with a preallocated capacity).
    decode.num_beams = 128;
    decode.max_new_tokens = 3;
    let sources = vec![vec![5, 6, 0]; 64];
    let out = generate(&model, &sources, &decode).unwrap();
    assert_eq!(out.len(), 64);
}

#[test]
fn bad_model_options_are_refused() {
    for (options, expected) in [
        (
            ModelOptions {
                threads: Some(0),
                ..ModelOptions::default()
            },
            "threads = 0 is out of range (1 to 1024)",
        ),
        (
            ModelOptions {
                threads: Some(100_000),
                ..ModelOptions::default()
            },
            "threads = 100000 is out of range",
        ),
        (
            ModelOptions {
                precision: traduire::device::Precision::Bf16,
                ..ModelOptions::default()
            },
            "bf16 is not supported on the CPU",
        ),
        (
            ModelOptions {
                precision: traduire::device::Precision::Int8,
                kernels: KernelChoice::Candle,
                ..ModelOptions::default()
            },
            "int8 runs on traduire's CPU kernels only",
        ),
    ] {
        let err = MarianModel::load(&common::model_dir("tiny-swish"), &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
    // Unused here, but the types are what a caller would hold.
    let _ = (DType::F32, Device::Cpu);
}
