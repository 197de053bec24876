//! Bad checkpoints get errors that name the file and what is wrong, never a panic.

mod common;

use std::path::Path;

use candle_core::{DType, Device};
use traduire::marian::MarianModel;

/// A copy of the tiny checkpoint in a temp folder, to break.
fn copy_fixture() -> tempfile::TempDir {
    common::model_copy("tiny-swish")
}

fn load_error(dir: &Path) -> String {
    match MarianModel::load(dir, &Device::Cpu, DType::F32) {
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
