//! The same transformers parity, with the CPU kernels off: candle's generic operations are the
//! path the GPU back-ends take, so this keeps that path proven on machines without a GPU.
//! (A separate test binary, because the switch is process-wide.)

mod common;

use candle_core::{DType, Device};
use serde_json::Value;
use traduire::marian::{generate, set_cpu_kernels, DecodeOptions, MarianModel};

#[test]
fn generic_ops_match_transformers() {
    set_cpu_kernels(false);
    for name in ["tiny-swish", "tiny-relu"] {
        let model = MarianModel::load(&common::model_dir(name), &Device::Cpu, DType::F32).unwrap();
        let reference: Value = serde_json::from_str(
            &std::fs::read_to_string(common::reference_dir(name).join("reference.json")).unwrap(),
        )
        .unwrap();
        let inputs: Vec<Vec<u32>> = serde_json::from_value(reference["inputs"].clone()).unwrap();
        for (key, beams) in [("greedy", 1usize), ("beam", 4)] {
            let settings = &reference["settings"][key];
            let mut opts = DecodeOptions::from_generation(model.generation_config());
            opts.num_beams = beams;
            opts.num_return_sequences = beams;
            opts.max_new_tokens = settings["max_new_tokens"].as_u64().unwrap() as usize;
            let got = generate(&model, &inputs, &opts).unwrap();
            for entry in reference[key].as_array().unwrap() {
                let i = entry["input"].as_u64().unwrap() as usize;
                let want_ids: Vec<Vec<u32>> = match beams {
                    1 => vec![serde_json::from_value(entry["ids"].clone()).unwrap()],
                    _ => entry["hyps"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| serde_json::from_value(h["ids"].clone()).unwrap())
                        .collect(),
                };
                let got_ids: Vec<Vec<u32>> = got[i].iter().map(|h| h.ids.clone()).collect();
                assert_eq!(got_ids, want_ids, "{name} {key} input {i} (generic ops)");
            }
        }
    }
}
