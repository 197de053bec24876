#!/usr/bin/env bash
# The GPU check, run from the bundle that scripts/gpu_bundle.sh built on a CPU machine:
#
#   bash gpu_check.sh [--bundle DIR] [--device cuda[:N]] RESULTS_DIR
#
# It needs only bash, python3, coreutils and, on the GPU machine, the NVIDIA driver and the
# CUDA libraries the binary was linked against (MANIFEST.json lists them). It never builds or
# downloads anything. The bundle is the folder this script is in (when it is the bundle's
# copy), else --bundle, else target/gpu-bundle of the repository it sits in.
#
# Steps, each timed, its log in RESULTS_DIR:
#   libraries      find the CUDA libraries (ldconfig, CUDA_HOME, /usr/local/cuda*, and the
#                  nvidia-* wheels of python3's site-packages, as PyTorch installs them); one
#                  line names any that are missing
#   parity-cpu     transformers parity on the CPU (both engines): the binaries work here
#   translate      the tiny test model's translation of scripts/corpus/fr.txt on the CPU
#   bench-cpu      one short CPU benchmark (opus-mt-fr-en architecture, random weights)
#   parity-gpu     transformers parity with the generic engine on the GPU, f32: ids must equal
#   agreement      how many f16 and bf16 outputs have transformers' f32 ids
#   translate-gpu  the same translation on the GPU; lines identical to the CPU's
#   bench-gpu      greedy and beam 4, batch 1 and 32, f32 and f16
#   sweep-gpu      bench --sweep over batch sizes 1 to 256, f32 and f16, with its chart
# and the GPU's peak memory while the GPU steps ran (nvidia-smi, sampled every 200 ms).
# Without a GPU the CUDA steps are skipped, said in one line, and the CPU steps still run.
# RESULTS_DIR gets summary.md (also printed), the logs, the bench JSON and the sweep's chart.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bundle=""
device=cuda
results=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) bundle=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        -*) echo "gpu_check: unknown option $1" >&2; exit 2 ;;
        *) results=$1; shift ;;
    esac
done
[ -n "$results" ] || { echo "gpu_check: usage: gpu_check.sh [--bundle DIR] [--device cuda[:N]] RESULTS_DIR" >&2; exit 2; }
if [ -z "$bundle" ]; then
    if [ -f "$here/bin/traduire.xz" ]; then bundle=$here; else bundle=$here/../target/gpu-bundle; fi
fi
[ -f "$bundle/bin/traduire.xz" ] && [ -f "$bundle/MANIFEST.json" ] || {
    echo "gpu_check: no bundle at $bundle (build it on a CPU machine: bash scripts/gpu_bundle.sh)" >&2
    exit 2
}
bundle=$(cd "$bundle" && pwd)
command -v python3 >/dev/null || { echo "gpu_check: python3 is needed (it reads the manifest and the JSON results)" >&2; exit 2; }
mkdir -p "$results" || exit 2
results=$(cd "$results" && pwd)
# The executables travel compressed: unpack them (and check them against the manifest).
mkdir -p "$results/.bin"
python3 - "$bundle" "$results/.bin" <<'PY' || { echo "gpu_check: cannot unpack the bundle's executables" >&2; exit 2; }
import hashlib, json, lzma, os, sys
bundle, into = sys.argv[1:]
manifest = json.load(open(os.path.join(bundle, "MANIFEST.json")))
for name, info in manifest["executables"].items():
    data = lzma.decompress(open(os.path.join(bundle, "bin", name + ".xz"), "rb").read())
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        sys.exit(f"{name}: its contents differ from the manifest")
    path = os.path.join(into, name)
    open(path, "wb").write(data)
    os.chmod(path, 0o755)
PY
bin=$results/.bin/traduire
parity=$results/.bin/marian_parity
export TRADUIRE_TEST_ROOT=$bundle
export TRADUIRE_TEST_SCRATCH=$results/scratch
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-$(nproc)}
check_started=$(date +%s)
summary=()
failed=0
say() { echo "$*"; summary+=("$*"); }

# Runs step NAME: COMMAND..., logging to RESULTS_DIR/NAME.log; records its time and status.
run_step() {
    local name=$1
    shift
    local started status
    started=$(date +%s)
    "$@" >"$results/$name.log" 2>&1
    status=$?
    local seconds=$(( $(date +%s) - started ))
    if [ "$status" -eq 0 ]; then
        say "- $name: passed in $seconds s"
    else
        failed=$(( failed + 1 ))
        say "- $name: FAILED (exit $status) in $seconds s; last lines of $name.log:"
        tail -5 "$results/$name.log" | sed 's/^/      /'
    fi
    return "$status"
}

# ---- libraries -------------------------------------------------------------------------------
libraries() {
    local wanted dirs=() missing=() lib dir found
    wanted=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
system = ("libc.so", "libm.so", "libgcc_s.so", "libpthread.so", "libdl.so", "librt.so", "ld-linux", "libstdc++.so")
libs = sorted({l for ls in m["libraries"].values() for l in ls if not l.startswith(system)})
print(" ".join(libs))' "$bundle/MANIFEST.json") || return 1
    local candidates=()
    [ -n "${TRADUIRE_CUDA_LIBS:-}" ] && candidates+=("$TRADUIRE_CUDA_LIBS")
    for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}"; do
        [ -n "$d" ] && candidates+=("$d/lib64" "$d/lib" "$d/targets/x86_64-linux/lib")
    done
    for d in /usr/local/cuda /usr/local/cuda-* /usr/lib/x86_64-linux-gnu /usr/lib64; do
        candidates+=("$d/lib64" "$d/targets/x86_64-linux/lib" "$d")
    done
    # The CUDA wheels PyTorch brings (nvidia-cublas-cu13, ...).
    while IFS= read -r d; do candidates+=("$d"); done < <(python3 -c '
import glob, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for root in roots:
    for d in sorted(glob.glob(root + "/nvidia/**/lib", recursive=True)) + glob.glob(root + "/torch/lib"):
        print(d)' 2>/dev/null)
    for lib in $wanted; do
        found=""
        if ldconfig -p 2>/dev/null | grep -q " $lib "; then
            found=system
        else
            for dir in "${candidates[@]}"; do
                if [ -e "$dir/$lib" ]; then found=$dir; break; fi
            done
        fi
        if [ -z "$found" ]; then
            missing+=("$lib")
        elif [ "$found" != system ]; then
            dirs+=("$found")
        fi
        echo "$lib: ${found:-not found}"
    done
    if [ ${#dirs[@]} -gt 0 ]; then
        local joined
        joined=$(printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++' | paste -sd:)
        echo "LD_LIBRARY_PATH += $joined"
        printf '%s' "$joined" > "$results/.libdirs"
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        echo "missing CUDA libraries: ${missing[*]} (searched ldconfig, CUDA_HOME, /usr/local/cuda*, python3's nvidia wheels; set TRADUIRE_CUDA_LIBS=DIR to add a folder)"
        return 1
    fi
    ldd "$bin"
}
rm -f "$results/.libdirs"
say "# traduire GPU check"
say "bundle: $bundle (commit $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["commit"][:12])' "$bundle/MANIFEST.json"))"
if ! run_step libraries libraries; then
    grep '^missing CUDA libraries' "$results/libraries.log" | sed 's/^/gpu_check: /'
    say "gpu_check: the binaries cannot start without these libraries: nothing else can run"
    printf '%s\n' "${summary[@]}" > "$results/summary.md"
    rm -rf "$results/.bin"
    exit 1
fi
[ -f "$results/.libdirs" ] && export LD_LIBRARY_PATH="$(cat "$results/.libdirs")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- is there a GPU? -------------------------------------------------------------------------
gpu=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >"$results/gpu.txt" 2>&1 && grep -q '^GPU ' "$results/gpu.txt"; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader >>"$results/gpu.txt" 2>&1
    gpu=$(sed -n 's/^GPU [0-9]*: \(.*\) (UUID.*/\1/p' "$results/gpu.txt" | head -1)
    say "GPU: $(tail -1 "$results/gpu.txt")"
else
    say "gpu_check: no GPU here ($(command -v nvidia-smi >/dev/null 2>&1 && echo 'nvidia-smi lists no GPU' || echo 'no nvidia-smi')): the CUDA steps are skipped, the CPU steps run"
fi
say "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) threads)"

# ---- CPU steps -------------------------------------------------------------------------------
model=$results/scratch/tiny-swish
mkdir -p "$model"
cp "$bundle"/tests/fixtures/tokenizer/{source.spm,target.spm,vocab.json,tokenizer_config.json} "$model/"
cp "$bundle"/tests/fixtures/marian/tiny-swish/{config.json,generation_config.json,model.safetensors} "$model/"
workload=$bundle/bench/workload-64.json

run_step parity-cpu "$parity" --test-threads 2
translate_on() {
    "$bin" translate --sentences -q -f moses -o "$results/translate-$1" --model-dir "$model" \
        --device "$1" --max-new-tokens 32 "$bundle/scripts/corpus/fr.txt"
}
run_step translate translate_on cpu
run_step bench-cpu "$bin" bench --workload "$workload" --max-batch-sentences 32 --repeat 1 --json

# ---- GPU steps -------------------------------------------------------------------------------
if [ -n "$gpu" ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$results/gpu-memory.csv" 2>/dev/null &
    sampler=$!
    run_step parity-gpu env TRADUIRE_TEST_DEVICE="$device" "$parity" --test-threads 1
    run_step agreement env TRADUIRE_TEST_DEVICE="$device" "$parity" --ignored --nocapture --test-threads 1 reduced_precision_agreement
    if run_step translate-gpu translate_on "$device"; then
        same=$(paste "$results/translate-cpu.en" "$results/translate-$device.en" | awk -F'\t' '$1==$2{s++} END{print s+0 "/" NR}')
        say "  translate: $same lines identical on $device and the CPU"
    fi
    bench_matrix() {
        local dtype beams batch
        for dtype in f32 f16; do
            for beams in 1 4; do
                for batch in 1 32; do
                    "$bin" bench --device "$device" --dtype "$dtype" --beams "$beams" \
                        --max-batch-sentences "$batch" --workload "$workload" --repeat 1 --json \
                        >"$results/bench-$dtype-beam$beams-batch$batch.json" || return 1
                done
            done
        done
    }
    run_step bench-gpu bench_matrix
    run_step sweep-gpu "$bin" bench --device "$device" --sweep --sweep-dtypes f32,f16 \
        --sweep-batches 1,2,4,8,16,32,64,128,256 --sweep-sentences 32 --repeat 1 \
        --chart "$results/sweep-gpu.svg"
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    peak=$(sort -n "$results/gpu-memory.csv" 2>/dev/null | tail -1)
    say "peak GPU memory while the GPU steps ran: ${peak:-unknown} MiB (nvidia-smi memory.used)"
    say ""
    say "| precision | search | batch | target tokens/s | p50 batch ms |"
    say "|---|---|---:|---:|---:|"
    for f in "$results"/bench-f*-beam*-batch*.json; do
        [ -s "$f" ] || continue
        row=$(python3 -c '
import json, re, sys
r = json.load(open(sys.argv[1]))
dtype, beams, batch = re.search(r"bench-(\w+)-beam(\d+)-batch(\d+)", sys.argv[1]).groups()
search = "greedy" if beams == "1" else "beam " + beams
print(f"| {dtype} | {search} | {batch} | {r[\"target_tokens_per_s\"]:.0f} | {r[\"latency_p50_ms\"]:.1f} |")' "$f")
        say "$row"
    done
    say ""
    say "sweep (sweep-gpu.log, chart sweep-gpu.svg):"
    while IFS= read -r line; do say "$line"; done < <(grep '^|' "$results/sweep-gpu.log")
fi

cpu_tps=$(python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["target_tokens_per_s"])' "$results/bench-cpu.log" 2>/dev/null || echo "?")
say "CPU bench (f32 greedy, batch 32, 64 sentences, random opus-mt-fr-en): $cpu_tps target tokens/s"
parity_line=$(grep -h '^test result' "$results/parity-cpu.log" | tail -1)
say "parity on the CPU: ${parity_line:-no result}"
[ -f "$results/parity-gpu.log" ] && say "parity on $device: $(grep -h '^test result' "$results/parity-gpu.log" | tail -1)"
[ -f "$results/agreement.log" ] && while IFS= read -r line; do say "$line"; done < <(grep '^agreement' "$results/agreement.log")
say "total: $(( $(date +%s) - check_started )) s, $failed step(s) failed"
rm -rf "$results/scratch" "$results/.libdirs" "$results/.bin"
printf '%s\n' "${summary[@]}" > "$results/summary.md"
[ "$failed" -eq 0 ]
