#!/usr/bin/env bash
# Peak RSS of `traduire bench` at batch 32 while a busy loop holds one of the two cores.
#
# The busy loop changes which thread of the model's pool runs each batch. With glibc's
# malloc, a batch's buffers then live in another thread's arena than the previous batch's,
# and memory that arena kept shows up in the peak. This measures that worst case; on a quiet
# machine the same runs give the peak of `scripts/bench_peers.py`.
#
#   scripts/rss_under_load.sh [TRADUIRE] [RUNS]
#
# TRADUIRE defaults to target/release/traduire, RUNS (per configuration) to 3. Uses the
# full-size random checkpoint of scripts/make_bench_model.py and the 64 longest sentences of
# the bench workload, as scripts/bench_peers.py --batched-sentences 64 does. Prints one line
# per run: dtype, beams, peak RSS in MB.
set -euo pipefail
bin=${1:-target/release/traduire}
runs=${2:-3}
model=${MODEL_DIR:-$HOME/.cache/traduire/opus-mt-fr-en-random}
tmp=$(mktemp -d)
busy=
cleanup() {
    [ -n "$busy" ] && kill "$busy" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" bench --model-dir "$model" --write-workload "$tmp/all.json"
python3 - "$tmp/all.json" "$tmp/w64.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["sentences"]
# Longest first, ties in input order: the order of traduire's batching and bench_peers.py.
order = sorted(range(len(s)), key=lambda i: (-len(s[i]), i))[:64]
json.dump({"sentences": [s[i] for i in order]}, open(sys.argv[2], "w"))
PY

sh -c 'while :; do :; done' &
busy=$!
for _ in $(seq "$runs"); do
    for dtype in int8 f32; do
        for beams in 1 4; do
            rss=$(RAYON_NUM_THREADS=2 "$bin" bench --model-dir "$model" --workload "$tmp/w64.json" \
                --beams "$beams" --max-batch-sentences 32 --threads 2 --force-length 1.0 \
                --repeat 1 --json --dtype "$dtype" 2>/dev/null |
                python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read().splitlines()[-1])["peak_rss_mb"]))')
            echo "$dtype beams=$beams peak_rss_mb=$rss"
        done
    done
done
