//! The command line's hints: the library's errors name options by their library names and say
//! what is wrong; here they get the flag or the next step to try, as a second line.

use traduire::device::DeviceError;
use traduire::input::InvalidUtf8;
use traduire::marian::MarianError;
use traduire::source::SourceError;

/// A one-line hint for `err`, if one helps.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<MarianError>() {
            return marian_hint(e);
        }
        if let Some(e) = cause.downcast_ref::<DeviceError>() {
            return device_hint(e);
        }
        if let Some(e) = cause.downcast_ref::<SourceError>() {
            return source_hint(e);
        }
        if cause.downcast_ref::<InvalidUtf8>().is_some() {
            return Some("--lossy replaces invalid bytes with U+FFFD".into());
        }
    }
    None
}

fn marian_hint(e: &MarianError) -> Option<String> {
    match e {
        MarianError::InvalidOption { option, .. } => {
            let flag = match *option {
                "num_beams" => "--beams",
                "max_new_tokens" => "--max-new-tokens",
                "min_new_tokens" => "--max-new-tokens",
                "max_length_ratio" => "--max-length-ratio",
                "length_penalty" => "--length-penalty",
                "threads" => "--threads",
                "kernels" => "--kernels",
                _ => return None,
            };
            Some(format!("see {flag} in --help"))
        }
        MarianError::Device(d) => device_hint(d),
        MarianError::NotFinite(_) => Some("use --dtype f32".into()),
        MarianError::OutOfMemory { .. } => {
            Some("lower --max-batch-tokens / --max-batch-sentences or --beams".into())
        }
        MarianError::Unsupported(_) => Some("--kernels auto picks what this CPU supports".into()),
        _ => None,
    }
}

fn device_hint(e: &DeviceError) -> Option<String> {
    match e {
        DeviceError::NotBuilt { feature, .. } => Some(format!(
            "rebuild with `cargo build --release --features {feature}` (needs the toolkit), or use --device cpu"
        )),
        DeviceError::Open { .. } => Some(
            "no usable GPU driver or device was found (check nvidia-smi); --device cpu runs anywhere"
                .into(),
        ),
        DeviceError::Unsupported { .. } => Some("see --dtype and --device in --help".into()),
        _ => None,
    }
}

fn source_hint(e: &SourceError) -> Option<String> {
    match e {
        SourceError::InvalidDir { .. } => Some(
            "--model-dir needs config.json, source.spm, target.spm, vocab.json, tokenizer_config.json and model.safetensors (or pytorch_model.bin), e.g. a Hugging Face snapshot folder of Helsinki-NLP/opus-mt-fr-en".into(),
        ),
        SourceError::NotCached { .. } => Some(
            "run once with network access (without HF_HUB_OFFLINE=1 / --offline), or pass --model-dir DIR with a local copy".into(),
        ),
        SourceError::Unreachable { .. } | SourceError::Download(_) => Some(
            "download the model once with network access, or pass --model-dir DIR with a local copy (HF_HUB_OFFLINE=1 uses the Hugging Face cache only)".into(),
        ),
        SourceError::NotFound { .. } => Some(
            "check the repo id and revision (e.g. Helsinki-NLP/opus-mt-fr-en@refs/pr/4); private or gated repos need HF_TOKEN".into(),
        ),
        SourceError::Cache(_) => Some("set HF_HOME to a writable folder, or pass --model-dir DIR".into()),
        _ => None,
    }
}
