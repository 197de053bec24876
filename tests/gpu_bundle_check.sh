#!/usr/bin/env bash
# The GPU check as a GPU machine without Rust or network would run it, here without a GPU:
#
#   tests/gpu_bundle_check.sh [BUNDLE]        (run by .ci/run after scripts/gpu_bundle.sh)
#
# 1. copies the repository's tracked files and the bundle to another path (nothing may depend
#    on where it was built);
# 2. runs the bundle's gpu_check.sh with a PATH that has no cargo, rustc, rustup, pip, curl,
#    wget, apt, git, gcc, make or nvcc, and an environment emptied of everything else;
#    the CUDA libraries come from the pinned wheels' folder and the link-time libcuda stub
#    stands in for the driver (TRADUIRE_CUDA_LIBS), as a GPU machine's would;
# 3. requires: exit 0, the missing GPU reported in one line, every CPU step passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$(cd "${1:-target/gpu-bundle}" && pwd)
fail() { echo "gpu bundle check: FAILED: $*" >&2; exit 1; }
[ -f "$bundle/MANIFEST.json" ] || fail "no bundle at $bundle (bash scripts/gpu_bundle.sh)"

work=$(mktemp -d /tmp/traduire-gpu-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A copy of the repository at another path, and the bundle inside it.
mkdir -p "$work/repo"
git archive --format=tar HEAD | tar -x -C "$work/repo"
mkdir -p "$work/repo/target"
cp -r "$bundle" "$work/repo/target/gpu-bundle"

# A PATH without build or download tools.
mkdir -p "$work/path"
for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -d "$dir" ] || continue
    for cmd in "$dir"/*; do
        name=$(basename "$cmd")
        case "$name" in
            cargo*|rustc*|rustup*|rustdoc*|pip*|curl|wget|apt*|dpkg*|git*|gcc*|cc|c++|g++*|make|nvcc) continue ;;
        esac
        [ -e "$work/path/$name" ] || ln -s "$cmd" "$work/path/$name"
    done
done
for forbidden in cargo rustc pip pip3 curl wget git gcc nvcc; do
    [ ! -e "$work/path/$forbidden" ] || fail "$forbidden is still on the clean PATH"
done

# The CUDA libraries the binaries link, and a stand-in for the driver's libcuda.so.1.
# shellcheck source=../scripts/cuda_env.sh
source scripts/cuda_env.sh >/dev/null 2>&1 || fail "no CUDA libraries (scripts/cuda_env.sh)"
mkdir -p "$work/driver"
ln -s "$CUDA_HOME/lib/stubs/libcuda.so" "$work/driver/libcuda.so.1"

results=$work/results
status=0
env -i HOME="$work" PATH="$work/path" LANG=C.UTF-8 \
    TRADUIRE_CUDA_LIBS="$work/driver" CUDA_HOME="$CUDA_HOME" \
    bash "$work/repo/target/gpu-bundle/gpu_check.sh" "$results" >"$work/check.out" 2>&1 || status=$?
cat "$work/check.out"
[ "$status" -eq 0 ] || fail "gpu_check.sh exited $status"
grep -q '^gpu_check: no GPU here' "$work/check.out" || fail "the missing GPU was not reported"
[ "$(grep -c '^gpu_check: no GPU here' "$work/check.out")" -eq 1 ] || fail "the missing GPU was reported more than once"
for step in libraries parity-cpu translate bench-cpu; do
    grep -q "^- $step: passed" "$work/check.out" || fail "step $step did not pass"
done
! grep -q '^- .*-gpu: ' "$work/check.out" || fail "a GPU step ran without a GPU"
[ -s "$results/summary.md" ] || fail "no summary.md"
big=$(find "$results" -type f -size +1M | head -1)
[ -z "$big" ] || fail "the results folder holds a large file: $big"
echo "gpu bundle check: passed: from $work/repo, no build tools on PATH, no GPU: CPU steps passed, the GPU reported missing in one line"
