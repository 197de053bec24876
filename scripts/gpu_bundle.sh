#!/usr/bin/env bash
# Builds, on a CPU machine, the self-contained folder the GPU check runs from, so that a GPU
# machine without a Rust toolchain or network only needs bash, python3, the NVIDIA driver and
# the CUDA libraries:
#
#   bash scripts/gpu_bundle.sh [OUT]           # OUT: default target/gpu-bundle
#
# then, on the GPU machine (with this repository, or just the bundle):
#
#   bash OUT/gpu_check.sh RESULTS_DIR
#
# It needs what `cargo build --features cuda` needs here: the Rust toolchain and a CUDA 13.0
# toolkit (the machine's, or the pinned PyPI wheels scripts/cuda_env.sh installs, with a libcuda
# stub for linking on a machine without the driver). It builds for compute capability 90
# (H100/H200; set CUDA_COMPUTE_CAP to change it) and writes:
#
#   bin/traduire.xz     the release binary with --features cuda (debug info stripped)
#   bin/marian_parity.xz  the prebuilt transformers parity tests (tests/marian_parity.rs), which
#                       read their fixtures under TRADUIRE_TEST_ROOT, not the build path
#                       (both xz-compressed: each embeds candle's CUDA kernels as PTX text,
#                       about 60 and 45 MB uncompressed, 10 and 6 MB compressed; gpu_check.sh
#                       unpacks them with python3's lzma)
#   tests/fixtures/     the fixtures they read (tokenizer, tiny-swish, tiny-relu)
#   scripts/corpus/fr.txt, bench/workload-64.json   inputs of the translate and bench steps
#   gpu_check.sh        the check (a copy of scripts/gpu_check.sh)
#   MANIFEST.json       commit, build flags, toolchain, files with sizes and SHA-256, and the
#                       shared libraries each executable needs (its dynamic section)
#
# The folder must stay under 60 MiB (the GPU machines take at most 64 MiB of extra files); the
# script fails if it does not. Nothing in it depends on the absolute path it was built in.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-target/gpu-bundle}
limit_mib=60
fail() { echo "gpu_bundle: $*" >&2; exit 1; }
started=$(date +%s)
step_started=$started
step() {
    local now
    now=$(date +%s)
    echo "gpu_bundle: $1: $(( now - step_started )) s" >&2
    step_started=$now
}

export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
# A target folder of its own: the CPU build's stays as it is (features would flip otherwise).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda}
# shellcheck source=cuda_env.sh
source scripts/cuda_env.sh || fail "no CUDA toolkit (the cuda_env line above says why)"
step "CUDA toolkit"

cargo build --release --locked --features cuda ||
    fail "cargo build --release --features cuda failed"
step "release build (--features cuda)"
# The test executable's path, from cargo's own report of what it built.
parity_exe=$(cargo test --release --locked --features cuda --no-run --test marian_parity \
    --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "marian_parity" and m.get("executable"):
        print(m["executable"])
') || fail "building the marian_parity test executable failed"
[ -x "$parity_exe" ] || fail "the marian_parity test executable was not found"
step "parity test executable"

rm -rf "$out"
mkdir -p "$out"/bin "$out"/tests/fixtures/marian "$out"/scripts/corpus "$out"/bench
cp "$CARGO_TARGET_DIR/release/traduire" "$out/bin/traduire"
cp "$parity_exe" "$out/bin/marian_parity"
# Line tables help backtraces but cost tens of MB: the bundle must stay small.
for exe in "$out"/bin/*; do
    strip --strip-debug "$exe" || fail "strip $exe failed"
done
cp -r tests/fixtures/tokenizer "$out/tests/fixtures/"
cp -r tests/fixtures/marian/tiny-swish tests/fixtures/marian/tiny-relu "$out/tests/fixtures/marian/"
cp scripts/corpus/fr.txt "$out/scripts/corpus/"
cp scripts/gpu_check.sh "$out/gpu_check.sh"
# The bench steps' workload: the first 64 sentences of the default synthetic one (batch 1 on a
# GPU is slow; 64 sentences keep the check inside its time).
# The CUDA binary needs libcuda.so.1 to start: here, without a driver, the link-time stub.
stub_dir=$(mktemp -d)
trap 'rm -rf "$stub_dir"' EXIT
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    for stub in "$CUDA_HOME"/lib/stubs/libcuda.so "$CUDA_HOME"/lib64/stubs/libcuda.so; do
        [ -e "$stub" ] && ln -sf "$stub" "$stub_dir/libcuda.so.1" && break
    done
fi
LD_LIBRARY_PATH="$stub_dir:${LD_LIBRARY_PATH:-}" "$out/bin/traduire" bench \
    --write-workload "$out/bench/workload-256.json" ||
    fail "writing the bench workload failed (cannot run the CUDA binary here?)"
python3 - "$out/bench" <<'PY'
import json, sys
from pathlib import Path
folder = Path(sys.argv[1])
full = json.loads((folder / "workload-256.json").read_text())
(folder / "workload-64.json").write_text(json.dumps({"sentences": full["sentences"][:64]}) + "\n")
(folder / "workload-256.json").unlink()
PY
step "bundle files"

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo true || echo false)
python3 - "$out" "$commit" "$dirty" "$CUDA_COMPUTE_CAP" "$(rustc --version)" "$(nvcc --version | tail -1)" <<'PY'
import hashlib, json, lzma, subprocess, sys, time
from pathlib import Path
out, commit, dirty, cap, rustc, nvcc = sys.argv[1:]
out = Path(out)

def needed(path):
    # The dynamic section's NEEDED entries: what the loader must find on the GPU machine.
    text = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].split("]", 1)[0] for line in text.splitlines() if "(NEEDED)" in line]

# The executables' needs, then the executables compressed (PTX text compresses tenfold).
executables = {}
for exe in ("traduire", "marian_parity"):
    path = out / "bin" / exe
    data = path.read_bytes()
    executables[exe] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "libraries": needed(path)}
    (out / "bin" / (exe + ".xz")).write_bytes(lzma.compress(data, preset=6))
    path.unlink()
files = []
for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "MANIFEST.json"):
    data = path.read_bytes()
    files.append({"path": str(path.relative_to(out)), "bytes": len(data),
                  "sha256": hashlib.sha256(data).hexdigest()})
manifest = {
    "what": "traduire GPU bundle (scripts/gpu_bundle.sh); run gpu_check.sh from it",
    "commit": commit,
    "uncommitted_changes": dirty == "true",
    "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "build": {"command": "cargo build --release --locked --features cuda; "
                         "cargo test --release --locked --features cuda --no-run --test marian_parity",
              "cuda_compute_cap": cap, "rustc": rustc, "nvcc": nvcc,
              "stripped": "strip --strip-debug", "compressed": "xz (python3 lzma, preset 6)"},
    "executables": executables,
    "libraries": {exe: e["libraries"] for exe, e in executables.items()},
    "bytes": sum(f["bytes"] for f in files),
    "files": files,
}
(out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
bytes=$(du -sb "$out" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
[ "$bytes" -le $(( limit_mib * 1048576 )) ] ||
    fail "$out is $mib MiB, over the $limit_mib MiB limit"
step "manifest"
echo "gpu_bundle: wrote $out: $bytes bytes ($mib MiB, limit $limit_mib MiB) in $(( $(date +%s) - started )) s"
