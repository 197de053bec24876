#!/bin/bash
# Writes DIR/libcuda.so: a link-time stub of the CUDA driver library (soname libcuda.so.1)
# exporting every driver function cudarc declares, each returning CUDA_ERROR_STUB_LIBRARY (34).
# Only for linking a `--features cuda` build on a machine without the NVIDIA driver; at run
# time the real driver's libcuda.so.1 must be found first.
#
# Every failure prints one line naming what failed and exits non-zero.
set -euo pipefail
fail() { echo "cuda_stub: $*" >&2; exit 1; }
[ $# -eq 1 ] || fail "usage: cuda_stub.sh DIR"
dir="$1"
here="$(cd "$(dirname "$0")" && pwd)"

# The newest cudarc in the registry, or nothing (no match is not an error: the fetch below
# is the fix for it).
find_cudarc() {
    local d best=""
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*; do
        [ -d "$d" ] || continue
        best="$(printf '%s\n%s\n' "$best" "$d" | sed '/^$/d' | sort -V | tail -1)"
    done
    printf '%s' "$best"
}

cudarc="$(find_cudarc)"
if [ -z "$cudarc" ]; then
    # A CPU-only build never downloads cudarc: fetch every locked package.
    echo "cuda_stub: cudarc not in ${CARGO_HOME:-$HOME/.cargo}/registry; running cargo fetch --locked" >&2
    (cd "$here/.." && cargo fetch --locked) >&2 ||
        fail "cargo fetch --locked failed: cudarc's sources are needed to generate the stub"
    cudarc="$(find_cudarc)"
fi
[ -n "$cudarc" ] || fail "cudarc's sources not found in ${CARGO_HOME:-$HOME/.cargo}/registry/src after cargo fetch"
[ -d "$cudarc/src/driver/sys" ] || fail "$cudarc has no src/driver/sys: unknown cudarc layout"
mkdir -p "$dir" || fail "cannot create $dir"
src="$dir/libcuda_stub.c"
{
    echo "int cuda_stub_error(void) { return 34; }"
    grep -rhoE '\bfn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys" | sed -E 's/^fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u |
        while read -r name; do echo "int $name(void) { return 34; }"; done
} > "$src" || fail "cannot write $src"
count=$(grep -c '^int cu' "$src" || true)
[ "${count:-0}" -gt 100 ] || fail "found only ${count:-0} driver functions in $cudarc/src/driver/sys: stub not written"
command -v gcc >/dev/null || fail "gcc not found: the stub is compiled with gcc (apt-get install gcc)"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$src" ||
    fail "gcc could not compile $src"
rm -f "$src"
echo "cuda_stub: wrote $dir/libcuda.so ($count driver functions from $(basename "$cudarc"))" >&2
