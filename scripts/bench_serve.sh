#!/usr/bin/env bash
# Benchmark of `traduire serve` (not a test): requests/s and p50/p95/p99 latency at 1, 4, 16
# and 64 concurrent clients, f32 and int8, with cross-request batching on (--max-batch-wait
# 5), without waiting for company (--max-batch-wait 0: sentences that queued during a batch
# still share the next one), and off (--one-request-per-batch: one request per batch, as
# servers that batch only within a request).
#
#   scripts/bench_serve.sh [TRADUIRE_BINARY] [MODEL_DIR]
#
# Defaults: target/release/traduire and the full-size random model of
# scripts/make_bench_model.py (~/.cache/traduire/opus-mt-fr-en-random). Every client is one
# `hey` process sending its own sentence (hey repeats one body; distinct bodies keep the
# cache and the deduplication of identical sentences out of the measurement, and the cache is
# off: --cache-size 0). Random weights generate until the length limit, so outputs are capped
# (MAX_NEW_TOKENS); only the comparisons mean something.
#
# Environment: CLIENTS ("1 4 16 64"), DTYPES ("f32 int8"), MODES ("on zero off"), DURATION
# (seconds per point, 20), BEAMS (1), MAX_NEW_TOKENS (32), THREADS (all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/traduire}
MODEL=${2:-${TRADUIRE_CACHE:-$HOME/.cache/traduire}/opus-mt-fr-en-random}
CLIENTS=${CLIENTS:-1 4 16 64}
DTYPES=${DTYPES:-f32 int8}
MODES=${MODES:-on zero off}
DURATION=${DURATION:-20}
BEAMS=${BEAMS:-1}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-32}
THREADS=${THREADS:-$(nproc)}
[ -x "$BIN" ] || { echo "bench_serve: $BIN not found (cargo build --release)" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "bench_serve: no model in $MODEL (run scripts/make_bench_model.py)" >&2; exit 1; }
command -v hey >/dev/null || { echo "bench_serve: needs hey (apt-get install hey)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/traduire-bench-serve.XXXXXX)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

words=(le la gouvernement a annoncé mardi une réforme des retraites qui sera présentée au conseil
       ministres en janvier les syndicats dénoncent économie française prix marché ville région)
for k in $(seq 1 64); do
    line="Selon"
    for j in $(seq 1 $(( (k * 7919) % 9 + 8 ))); do line="$line ${words[$(( (k * 31 + j * 17) % ${#words[@]} ))]}"; done
    printf '{"q": "%s (%d).", "source": "fr", "target": "en"}' "$line" "$k" > "$WORK/body-$k.json"
done

echo "| dtype | batching | clients | requests/s | p50 ms | p95 ms | p99 ms | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for dtype in $DTYPES; do
    for mode in $MODES; do
        case $mode in
            on) flags=(--max-batch-wait 5) ;;
            zero) flags=(--max-batch-wait 0) ;;
            off) flags=(--one-request-per-batch) ;;
            *) echo "bench_serve: unknown mode $mode" >&2; exit 1 ;;
        esac
        RUST_LOG=info,traduire::request=off "$BIN" serve --model-dir "$MODEL" --dtype "$dtype" --beams "$BEAMS" \
            --max-new-tokens "$MAX_NEW_TOKENS" --threads "$THREADS" --cache-size 0 \
            --queue-limit 100000 --request-timeout 3600 --port 0 "${flags[@]}" 2>"$WORK/server.log" &
        SERVER=$!
        address=
        for _ in $(seq 600); do
            address=$(grep -o 'ready address=[0-9.:]*' "$WORK/server.log" | head -1 | cut -d= -f2 || true)
            [ -n "$address" ] && break
            sleep 0.1
        done
        [ -n "$address" ] || { echo "bench_serve: the server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
        for c in $CLIENTS; do
            rm -f "$WORK"/run-*.csv
            pids=()
            for k in $(seq 1 "$c"); do
                hey -z "${DURATION}s" -c 1 -t 0 -o csv -m POST -T application/json -D "$WORK/body-$k.json" \
                    "http://$address/translate" > "$WORK/run-$k.csv" &
                pids+=($!)
            done
            for pid in "${pids[@]}"; do wait "$pid"; done
            # hey's CSV: response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
            cat "$WORK"/run-*.csv | awk -F, 'NR > 0 && $1 ~ /^[0-9.]+$/ { print $1, $7 }' | sort -n > "$WORK/all.txt"
            n=$(wc -l < "$WORK/all.txt")
            errors=$(awk '$2 != 200' "$WORK/all.txt" | wc -l)
            pct() { awk -v n="$n" -v p="$1" 'NR == int((n - 1) * p / 100) + 1 { printf "%.0f", $1 * 1000 }' "$WORK/all.txt"; }
            rps=$(awk -v n="$n" -v d="$DURATION" 'BEGIN { printf "%.1f", n / d }')
            echo "| $dtype | $mode | $c | $rps | $(pct 50) | $(pct 95) | $(pct 99) | $errors |"
        done
        kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=
    done
done
