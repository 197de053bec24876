#!/usr/bin/env bash
# Load and fault tests of `traduire serve` with a real load generator (Debian's `hey`), on
# loopback, bounded in time (about a minute and a half on two cores):
#
#   1. fixed-time load: 4 load generators x 8 clients for 8 s, four different bodies, a small
#      cache so that the model works: only 200s, and every body's answer equals
#      `traduire translate`'s output for it;
#   2. a burst over the queue limit (--queue-limit 8, 64 clients): only 200s and 429s, and
#      429s only because the queue is full (the metric counts them all);
#   3. 100,000 requests: resident memory before (after 2,000 requests of warm-up) and after;
#      it must not grow by more than 8 MB;
#   4. SIGTERM under load: the server exits 0 within --shutdown-timeout, and no request got
#      an answer other than 200.
#
#   tests/serve_load.sh [TRADUIRE_BINARY]     (run by .ci/run after cargo test)
#
# The model is the tiny random test checkpoint: it translates into nonsense, which is all a
# load test needs. Every server is started on port 0 and stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${1:-$ROOT/target/debug/traduire}
[ -x "$BIN" ] || { echo "serve load test: $BIN not found (cargo build first)" >&2; exit 1; }

missing=()
command -v hey >/dev/null || missing+=(hey)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "serve load test: installing Debian's ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    { command -v apt-get >/dev/null && apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        { echo "serve load test: FAILED: cannot install ${missing[*]} (apt-get install ${missing[*]}; are Debian's mirrors reachable, and are we root?)" >&2; exit 1; }
    for cmd in "${missing[@]}"; do
        command -v "$cmd" >/dev/null || { echo "serve load test: FAILED: $cmd still missing after apt-get install" >&2; exit 1; }
    done
fi

WORK=$(mktemp -d /tmp/traduire-serve-load.XXXXXX)
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

MODEL=$WORK/model
mkdir -p "$MODEL"
cp tests/fixtures/tokenizer/{source.spm,target.spm,vocab.json,tokenizer_config.json} "$MODEL"/
cp tests/fixtures/marian/tiny-swish/{config.json,generation_config.json,model.safetensors} "$MODEL"/
MODEL_ARGS=(--model-dir "$MODEL" --max-new-tokens 8 --threads 1)

SERVER_PID=
ADDRESS=
# start_server NAME ARGS...: starts a server on a free port; sets SERVER_PID and ADDRESS.
start_server() {
    local name=$1; shift
    RUST_LOG=info,traduire::request=off "$BIN" serve "${MODEL_ARGS[@]}" --port 0 "$@" 2>"$WORK/$name.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 300); do
        ADDRESS=$(grep -o 'ready address=[0-9.:]*' "$WORK/$name.log" | head -1 | cut -d= -f2 || true)
        [ -n "$ADDRESS" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "serve load test: FAILED: the server ($name) never became ready" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}
# stop_server: SIGTERM by PID; the exit status must be 0.
stop_server() {
    kill -TERM "$SERVER_PID"
    local status=0
    wait "$SERVER_PID" || status=$?
    [ "$status" -eq 0 ] || { echo "serve load test: FAILED: the server exited with $status after SIGTERM" >&2; exit 1; }
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
peak_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
metric() { curl -s "http://$ADDRESS/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d\n", s }'; }
# statuses FILE: "code count" lines of a hey report's status distribution.
statuses() { awk '/^Status code distribution:/ {on=1; next} on && /^[ \t]*\[[0-9]+\]/ {gsub(/[\[\]]/, "", $1); print $1, $2; next} on {on=0}' "$1"; }
# errors FILE: requests that got no answer at all (hey's error distribution), summed.
errors() { awk '/^Error distribution:/ {on=1; next} on && /^[ \t]*\[[0-9]+\]/ {gsub(/[\[\]]/, "", $1); s += $1; next} on {on=0} END {print s + 0}' "$1"; }
no_errors() { [ "$(errors "$1")" -eq 0 ] || { echo "serve load test: FAILED: $(errors "$1") requests got no answer ($1)" >&2; sed -n '/^Error distribution:/,$p' "$1" >&2; exit 1; }; }
percentile() { awk -v p="$2%" '$1 == p && $2 == "in" {printf "%.1f", $3 * 1000}' "$1"; }
rate() { awk '/Requests\/sec:/ {printf "%.0f", $2}' "$1"; }
only_statuses() {  # only_statuses FILE ALLOWED... : every status in the report is allowed
    local file=$1; shift
    local code count
    while read -r code count; do
        [[ " $* " == *" $code "* ]] || { echo "serve load test: FAILED: $count answers with status $code ($file)" >&2; cat "$file" >&2; exit 1; }
    done < <(statuses "$file")
}
count_of() { statuses "$1" | awk -v c="$2" '$1 == c {print $2}' | head -1; }

TEXTS=(
    "Le gouvernement a annoncé mardi une réforme des retraites."
    "Les syndicats dénoncent un projet injuste et appellent à la grève."
    "M. Dupont est arrivé à 23h30. Il a dit : « Bonjour ! » puis il est reparti."
    "La pluie revient sur Paris. Les averses reprendront dès mardi matin."
)
for i in "${!TEXTS[@]}"; do
    printf '{"q": "%s", "source": "fr", "target": "en"}' "${TEXTS[$i]}" > "$WORK/body-$i.json"
done

# 1. Fixed-time load, four bodies at once, cache smaller than the set of sentences.
start_server load --cache-size 2 --queue-limit 100000
URL="http://$ADDRESS/translate"
HEY_PIDS=()
for i in "${!TEXTS[@]}"; do
    hey -z 8s -c 8 -m POST -T application/json -D "$WORK/body-$i.json" "$URL" > "$WORK/hey-$i.txt" &
    HEY_PIDS+=($!)
done
for pid in "${HEY_PIDS[@]}"; do wait "$pid"; done
total=0
for i in "${!TEXTS[@]}"; do
    only_statuses "$WORK/hey-$i.txt" 200
    no_errors "$WORK/hey-$i.txt"
    total=$(( total + $(count_of "$WORK/hey-$i.txt" 200) ))
    # The server's answer for this body equals the command line's output for its text.
    answer=$(curl -s -H 'Content-Type: application/json' --data-binary "@$WORK/body-$i.json" "$URL" | grep -o '"translatedText":"[^"]*"' | cut -d'"' -f4)
    expected=$(printf '%s' "${TEXTS[$i]}" | "$BIN" translate "${MODEL_ARGS[@]}" --quiet -f jsonl | grep -o '"en":"[^"]*"' | cut -d'"' -f4 | paste -sd' ')
    [ -n "$answer" ] && [ "$answer" = "$expected" ] ||
        { echo "serve load test: FAILED: body $i: the server said «$answer», the command line «$expected»" >&2; exit 1; }
done
translated=$(metric traduire_sentences_translated_total)
peak=$(peak_kb "$SERVER_PID")
echo "serve load test: 1. fixed-time load: $total requests in 8 s from 32 clients, all 200; body 0: p50 $(percentile "$WORK/hey-0.txt" 50) ms, p99 $(percentile "$WORK/hey-0.txt" 99) ms, $(rate "$WORK/hey-0.txt") requests/s; $translated sentences translated by the model; peak RSS $(( peak / 1024 )) MB"
stop_server

# 2. A burst over the queue limit.
start_server burst --queue-limit 8 --max-batch-wait 20 --cache-size 0
hey -n 4000 -c 64 -m POST -T application/json -D "$WORK/body-2.json" "http://$ADDRESS/translate" > "$WORK/hey-burst.txt"
only_statuses "$WORK/hey-burst.txt" 200 429
no_errors "$WORK/hey-burst.txt"
ok=$(count_of "$WORK/hey-burst.txt" 200); refused=$(count_of "$WORK/hey-burst.txt" 429)
rejected=$(metric traduire_requests_rejected_total)
[ "${refused:-0}" -gt 0 ] || { echo "serve load test: FAILED: 64 clients over a queue of 8 got no 429" >&2; exit 1; }
[ "${ok:-0}" -gt 0 ] || { echo "serve load test: FAILED: no request answered during the burst" >&2; exit 1; }
[ "$rejected" -eq "$refused" ] || { echo "serve load test: FAILED: $refused answers 429 but $rejected counted as queue_full" >&2; exit 1; }
echo "serve load test: 2. burst of 64 clients over --queue-limit 8: $ok answered 200, $refused refused 429 with Retry-After (all counted queue_full), nothing else"
stop_server

# 3. 100,000 requests: memory must not grow.
start_server soak --cache-size 1
hey -n 2000 -c 16 -m POST -T application/json -D "$WORK/body-3.json" "http://$ADDRESS/translate" > "$WORK/hey-warm.txt"
before=$(rss_kb "$SERVER_PID")
hey -n 100000 -c 16 -m POST -T application/json -D "$WORK/body-3.json" "http://$ADDRESS/translate" > "$WORK/hey-soak.txt"
after=$(rss_kb "$SERVER_PID")
only_statuses "$WORK/hey-soak.txt" 200
no_errors "$WORK/hey-soak.txt"
[ "$(count_of "$WORK/hey-soak.txt" 200)" -eq 100000 ] || { echo "serve load test: FAILED: not 100,000 answers" >&2; cat "$WORK/hey-soak.txt" >&2; exit 1; }
growth=$(( after - before ))
echo "serve load test: 3. 100,000 requests (16 clients, $(rate "$WORK/hey-soak.txt") requests/s, p50 $(percentile "$WORK/hey-soak.txt" 50) ms, p99 $(percentile "$WORK/hey-soak.txt" 99) ms, $(metric traduire_sentences_translated_total) sentences translated): RSS $(( before / 1024 )) MB before, $(( after / 1024 )) MB after, peak $(( $(peak_kb "$SERVER_PID") / 1024 )) MB"
[ "$growth" -le 8192 ] || { echo "serve load test: FAILED: RSS grew by $(( growth / 1024 )) MB over 100,000 requests" >&2; exit 1; }
stop_server

# 4. SIGTERM under load.
start_server term --shutdown-timeout 20 --cache-size 0
hey -z 6s -c 16 -m POST -T application/json -D "$WORK/body-0.json" "http://$ADDRESS/translate" > "$WORK/hey-term.txt" &
HEY=$!
sleep 2
stop_server
wait "$HEY" || true
only_statuses "$WORK/hey-term.txt" 200
echo "serve load test: 4. SIGTERM under 16 clients: exit 0, $(count_of "$WORK/hey-term.txt" 200) answers all 200 (connections refused after the listener closed are not answers)"
echo "serve load test: passed"
