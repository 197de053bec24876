#!/bin/bash
# The GPU check: run on a machine with an NVIDIA GPU and its driver, from the repository root.
#
#   bash scripts/gpu_check.sh [DEVICE]        # DEVICE: cuda (default), cuda:1, ...
#
# 1. builds traduire with `--features cuda` (a CUDA 13.0 toolkit: the machine's, or the pinned
#    PyPI wheels that scripts/cuda_env.sh installs outside the repository);
# 2. runs the transformers parity tests with the generic engine on the GPU in f32 (ids must
#    equal transformers'), and reports the f16 / bf16 agreement;
# 3. checks that `translate` gives the same text on the GPU as on the CPU (tiny test model:
#    nonsense text, the comparison is what counts);
# 4. runs `traduire bench` (opus-mt-fr-en's architecture, random weights) greedy and beam 4 at
#    batch 1 and 32, in f32 and f16, and prints one summary.
# It needs nothing but this repository, a Rust toolchain, python3 (for the wheels) and the
# NVIDIA driver. Output: a summary on stdout, details in target/gpu_check/.
set -uo pipefail
cd "$(dirname "$0")/.."
device="${1:-cuda}"
out=target/gpu_check
mkdir -p "$out"

source scripts/cuda_env.sh || { echo "gpu_check: no CUDA toolkit" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | tee "$out/gpu.txt"

echo "== build (--features cuda)"
cargo build --release --locked --features cuda 2>&1 | tail -3 || exit 1
bin=target/release/traduire

echo "== parity with transformers on $device (f32, generic engine)"
TRADUIRE_TEST_DEVICE="$device" cargo test --release --locked --features cuda --test marian_parity 2>&1 | tee "$out/parity.log" | grep -E "^test |test result" 
parity=$(grep -E "^test result" "$out/parity.log" | tail -1)
TRADUIRE_TEST_DEVICE="$device" cargo test --release --locked --features cuda --test marian_parity -- --ignored --nocapture reduced_precision_agreement 2>&1 | tee "$out/agreement.log" | grep "^agreement"

echo "== translate: $device against the CPU (tiny random model)"
model="$out/tiny-swish"
mkdir -p "$model"
cp tests/fixtures/tokenizer/{source.spm,target.spm,vocab.json,tokenizer_config.json} "$model/"
cp tests/fixtures/marian/tiny-swish/{config.json,generation_config.json,model.safetensors} "$model/"
for d in cpu "$device"; do
    "$bin" translate --sentences -q -f moses -o "$out/tiny-$d" --model-dir "$model" --device "$d" --max-new-tokens 32 scripts/corpus/fr.txt
done
same="$(paste "$out/tiny-cpu.en" "$out/tiny-$device.en" | awk -F'\t' '$1==$2{s++} END{print s+0 "/" NR}') lines identical"
echo "$same"

echo "== bench (random opus-mt-fr-en weights)"
bench_rows=()
for dtype in f32 f16; do
    for beams in 1 4; do
        for batch in 1 32; do
            json=$("$bin" bench --device "$device" --dtype "$dtype" --beams "$beams" --max-batch-sentences "$batch" --force-length 1.0 --repeat 3 --json 2>>"$out/bench.err")
            echo "$json" > "$out/bench-$dtype-b$beams-n$batch.json"
            tps=$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["target_tokens_per_s"])' "$json" 2>/dev/null || echo "failed")
            bench_rows+=("| $dtype | $([ "$beams" = 1 ] && echo greedy || echo "beam $beams") | $batch | $tps |")
        done
    done
done

echo
echo "== summary"
cat "$out/gpu.txt" 2>/dev/null
echo "parity (f32 on $device): $parity"
grep "^agreement" "$out/agreement.log"
echo "translate, $device vs cpu: $same"
echo "| dtype | search | batch | target tokens/s |"
echo "|---|---|---:|---:|"
printf '%s\n' "${bench_rows[@]}"
