# Source this file (bash) to get a CUDA 13.0 toolkit for `cargo build --features cuda`, from
# PyPI wheels when the machine has none: nvcc, the CUDA runtime, cuBLAS, cuRAND and NVRTC.
#
#   source scripts/cuda_env.sh && cargo build --release --features cuda
#
# - A toolkit already on the machine (nvcc on PATH, or CUDA_HOME set) is used as it is.
# - Otherwise the pinned wheels go into a venv outside the repository
#   (TRADUIRE_CUDA_VENV, default ~/.cache/traduire/cuda-venv; about 1.2 GB, installed once).
#   Only the CUDA 13 wheels contain nvcc; 13.0 is pinned because PTX from a newer nvcc may not
#   load under a CUDA 13.0 driver (580).
# - CUDA_COMPUTE_CAP is read from nvidia-smi when there is one; without a GPU it defaults to
#   90 (H100/H200). Set it to your GPU's (e.g. 86 for an RTX 3090) before sourcing.
# - The wheels ship only versioned libraries (libcudart.so.13, ...): unversioned links are
#   added. Linking also needs libcuda.so (candle 0.11 links the driver library): the
#   driver's own when installed, else a stub (for building on a machine without a GPU; such a
#   binary runs only where the NVIDIA driver is installed).
#
# Every failure prints one line starting with "cuda_env:" that says what failed, and the
# sourcing returns 1 (it never exits the caller's shell).

traduire_cuda_env_fail() {
    echo "cuda_env: $*" >&2
    return 1
}

traduire_cuda_env() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null 2>&1; then
        CUDA_HOME="$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)"
    fi
    if [ -z "${CUDA_HOME:-}" ]; then
        local venv="${TRADUIRE_CUDA_VENV:-$HOME/.cache/traduire/cuda-venv}"
        local spec="cuda-toolkit[nvcc,cudart,cccl,crt,nvvm,cublas,curand,nvrtc]==13.0.2"
        # Installed means nvcc is there: a pip run killed half-way leaves a venv without it.
        if ! compgen -G "$venv/lib/python3*/site-packages/nvidia/cu13/bin/nvcc" >/dev/null; then
            echo "cuda_env: installing $spec into $venv" >&2
            command -v python3 >/dev/null ||
                { traduire_cuda_env_fail "python3 not found: it installs the CUDA wheels (or set CUDA_HOME to a toolkit)"; return 1; }
            python3 -m venv "$venv" ||
                { traduire_cuda_env_fail "python3 -m venv $venv failed (Debian: apt-get install python3-venv)"; return 1; }
            "$venv/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check "$spec" ||
                { traduire_cuda_env_fail "pip install $spec into $venv failed (is PyPI reachable?)"; return 1; }
        fi
        CUDA_HOME="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')" ||
            { traduire_cuda_env_fail "the CUDA wheels in $venv have no nvidia/cu13 package"; return 1; }
        [ -x "$CUDA_HOME/bin/nvcc" ] ||
            { traduire_cuda_env_fail "no nvcc in $CUDA_HOME/bin after installing $spec"; return 1; }
        # The wheels' libraries have only versioned names.
        local lib base
        for lib in "$CUDA_HOME"/lib/lib*.so.*; do
            [ -e "$lib" ] || continue
            base="${lib%%.so.*}.so"
            [ -e "$base" ] || ln -s "$(basename "$lib")" "$base" ||
                { traduire_cuda_env_fail "cannot link $base -> $(basename "$lib")"; return 1; }
        done
    fi
    [ -d "$CUDA_HOME" ] || { traduire_cuda_env_fail "CUDA_HOME=$CUDA_HOME is not a directory"; return 1; }
    export CUDA_HOME
    export CUDA_PATH="$CUDA_HOME"
    export PATH="$CUDA_HOME/bin:$PATH"
    local libdir="$CUDA_HOME/lib"
    [ -d "$CUDA_HOME/lib64" ] && libdir="$CUDA_HOME/lib64"
    export LIBRARY_PATH="$libdir:$libdir/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

    if [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
        if command -v nvidia-smi >/dev/null 2>&1; then
            CUDA_COMPUTE_CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')"
        fi
        # No GPU (or nvidia-smi without one): H100/H200.
        CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
    fi
    export CUDA_COMPUTE_CAP

    # libcuda.so for the linker: the driver's, or a stub exporting the driver API's names.
    if [ ! -e "$libdir/libcuda.so" ] && [ ! -e "$libdir/stubs/libcuda.so" ]; then
        mkdir -p "$libdir/stubs" || { traduire_cuda_env_fail "cannot create $libdir/stubs"; return 1; }
        local driver
        driver="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}' || true)"
        if [ -n "$driver" ]; then
            ln -s "$driver" "$libdir/stubs/libcuda.so" ||
                { traduire_cuda_env_fail "cannot link $libdir/stubs/libcuda.so -> $driver"; return 1; }
        else
            bash "$here/cuda_stub.sh" "$libdir/stubs" ||
                { traduire_cuda_env_fail "the libcuda stub could not be generated (see the cuda_stub line above)"; return 1; }
        fi
    fi
    local version
    version="$(nvcc --version 2>/dev/null | tail -1)" ||
        { traduire_cuda_env_fail "nvcc --version failed ($CUDA_HOME/bin/nvcc)"; return 1; }
    echo "cuda_env: CUDA_HOME=$CUDA_HOME CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP ($version)" >&2
}

traduire_cuda_env
