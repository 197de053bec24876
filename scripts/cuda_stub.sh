#!/bin/bash
# Writes DIR/libcuda.so: a link-time stub of the CUDA driver library (soname libcuda.so.1)
# exporting every driver function cudarc declares, each returning CUDA_ERROR_STUB_LIBRARY (34).
# Only for linking a `--features cuda` build on a machine without the NVIDIA driver; at run
# time the real driver's libcuda.so.1 must be found first.
set -euo pipefail
dir="$1"
find_cudarc() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-* 2>/dev/null | sort -V | tail -1; }
cudarc="$(find_cudarc)"
if [ -z "$cudarc" ]; then
    # A CPU-only build never downloads cudarc: fetch every locked package.
    (cd "$(dirname "$0")/.." && cargo fetch --locked) >&2
    cudarc="$(find_cudarc)"
fi
[ -n "$cudarc" ] || { echo "cuda_stub: cudarc's sources not found" >&2; exit 1; }
mkdir -p "$dir"
{
    echo "int cuda_stub_error(void) { return 34; }"
    grep -rhoE '\bfn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys" | sed -E 's/^fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u |
        while read -r name; do echo "int $name(void) { return 34; }"; done
} > "$dir/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$dir/libcuda_stub.c"
rm "$dir/libcuda_stub.c"
echo "cuda_stub: wrote $dir/libcuda.so" >&2
