#!/usr/bin/env bash
# A real Slurm job array: `traduire corpus --shards 4` as `sbatch --array=0-3`, with a merge job
# that depends on it; one task is cancelled mid-run and requeued; the merged output must equal
# a local one-shard run byte for byte.
#
#   tests/slurm.sh [TRADUIRE_BINARY]     (run by .ci/run after cargo test)
#
# It installs Debian's Slurm (slurmctld, slurmd, slurm-client) when missing, starts a
# single-node cluster on loopback (no systemd, no munge: auth/none), and stops every daemon it
# started, by PID. The model is the tiny random test checkpoint: it translates into nonsense,
# which is all a scheduling test needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${1:-$ROOT/target/debug/traduire}
[ -x "$BIN" ] || { echo "slurm test: $BIN not found (cargo build first)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
    echo "slurm test: installing Debian's Slurm" >&2
    export DEBIAN_FRONTEND=noninteractive
    command -v apt-get >/dev/null ||
        { echo "slurm test: Slurm (slurmctld, slurmd, sbatch) is missing and there is no apt-get to install it" >&2; exit 1; }
    apt-get update -qq >/dev/null ||
        { echo "slurm test: apt-get update failed (are Debian's package mirrors reachable, and are we root?)" >&2; exit 1; }
    apt-get install -y -qq slurmctld slurmd slurm-client >/dev/null ||
        { echo "slurm test: apt-get install slurmctld slurmd slurm-client failed" >&2; exit 1; }
    for cmd in slurmctld slurmd sbatch squeue scontrol sinfo; do
        command -v "$cmd" >/dev/null || { echo "slurm test: $cmd still missing after installing Debian's Slurm" >&2; exit 1; }
    done
fi

WORK=$(mktemp -d /tmp/traduire-slurm.XXXXXX)
export SLURM_CONF=$WORK/slurm.conf
PIDS=()

stop_daemons() {
    set +e
    # Job processes outlive slurmd: cancel jobs first.
    if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ]; then
        scancel --quiet --user=root >/dev/null 2>&1
        sleep 1
    fi
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        # PID 1 here may not reap: a zombie counts as stopped.
        for _ in $(seq 50); do
            state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
            [ -z "$state" ] || [ "$state" = "Z" ] && break
            sleep 0.1
        done
    done
    rm -rf "$WORK"
}
trap stop_daemons EXIT

mkdir -p "$WORK"/{state,spool,log,corpus}
HARDWARE=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ UpTime=.*//')
cat > "$SLURM_CONF" <<EOF
ClusterName=traduire
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
MinJobAge=300
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 $HARDWARE State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF

slurmctld -D -i -f "$SLURM_CONF" >"$WORK/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >"$WORK/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    sinfo -h -o %t 2>/dev/null | grep -q '^idle' && break
    sleep 0.2
done
sinfo -h -o %t | grep -q '^idle' || { echo "slurm test: the node never became idle" >&2; cat "$WORK"/log/*; exit 1; }

# A corpus large enough for a task to be cancelled mid-run (a few seconds each).
MODEL=$WORK/model
mkdir -p "$MODEL"
cp tests/fixtures/tokenizer/{source.spm,target.spm,vocab.json,tokenizer_config.json} "$MODEL"/
cp tests/fixtures/marian/tiny-swish/{config.json,generation_config.json,model.safetensors} "$MODEL"/
python_free_corpus() {
    local words=(le la gouvernement a annoncé mardi une réforme des retraites qui sera présentée
                 au conseil ministres en janvier les syndicats dénoncent économie française prix)
    local i j n line
    for i in $(seq 1 "$1"); do
        n=$(( (i * 7919) % 11 + 3 ))
        line="Selon"
        for j in $(seq 1 "$n"); do
            line="$line ${words[$(( (i * 31 + j * 17) % ${#words[@]} ))]}"
        done
        echo "$line ($i)."
    done
}
python_free_corpus 6000 > "$WORK/corpus/in.fr"

COMMON=(corpus "$WORK/corpus/in.fr" --model-dir "$MODEL" --max-new-tokens 8 --quiet --window 100 -f tsv --threads 1)
"$BIN" "${COMMON[@]}" -o "$WORK/corpus/local.tsv"

cat > "$WORK/task.sh" <<EOF
#!/usr/bin/env bash
exec "$BIN" ${COMMON[@]@Q} --shards 4 -o "$WORK/corpus/shard-\${SLURM_ARRAY_TASK_ID}.tsv" --cache "$WORK/corpus/shard-\${SLURM_ARRAY_TASK_ID}.sqlite" --stats "$WORK/corpus/stats-\${SLURM_ARRAY_TASK_ID}.json"
EOF
cat > "$WORK/merge.sh" <<EOF
#!/usr/bin/env bash
exec "$BIN" corpus merge -o "$WORK/corpus/merged.tsv" $WORK/corpus/shard-{0,1,2,3}.tsv
EOF
chmod +x "$WORK/task.sh" "$WORK/merge.sh"

ARRAY=$(sbatch --parsable --array=0-3 --requeue --cpus-per-task=1 -o "$WORK/log/task-%a.out" "$WORK/task.sh")
MERGE=$(sbatch --parsable --dependency=afterany:"$ARRAY" --kill-on-invalid-dep=no -o "$WORK/log/merge.out" "$WORK/merge.sh")
echo "slurm test: array job $ARRAY, merge job $MERGE" >&2

state_of() { squeue -h -j "$1" -o %T 2>/dev/null | head -1; }
# Wait for task 1 to run, let it work a little, cancel it, and requeue it at once (before the
# other tasks end, so the merge's afterany dependency waits for its second run).
for _ in $(seq 300); do [ "$(state_of "${ARRAY}_1")" = RUNNING ] && break; sleep 0.1; done
[ "$(state_of "${ARRAY}_1")" = RUNNING ] || { echo "slurm test: task 1 never ran" >&2; squeue; exit 1; }
# Cancel once some translations are committed (the store's write-ahead log has grown), so
# that the requeued run has work to resume.
for _ in $(seq 300); do
    [ "$(stat -c %s "$WORK/corpus/shard-1.sqlite-wal" 2>/dev/null || echo 0)" -gt 40000 ] && break
    sleep 0.05
done
[ "$(state_of "${ARRAY}_1")" = RUNNING ] || { echo "slurm test: task 1 ended before it could be cancelled (corpus too small?)" >&2; exit 1; }
scancel "${ARRAY}_1"
for _ in $(seq 100); do
    scontrol requeue "${ARRAY}_1" 2>/dev/null && break
    sleep 0.1
done
# A requeued task waits about two minutes unless told to start now.
for _ in $(seq 100); do [ "$(state_of "${ARRAY}_1")" = PENDING ] && break; sleep 0.1; done
scontrol update JobId="${ARRAY}_1" StartTime=now 2>/dev/null || true
echo "slurm test: task 1 cancelled and requeued" >&2

# Poll (sbatch --wait polls at 2, 8 and 32 s).
for _ in $(seq 1800); do
    [ -z "$(squeue -h -j "$ARRAY,$MERGE" 2>/dev/null)" ] && break
    sleep 0.2
done
if [ -n "$(squeue -h -j "$ARRAY,$MERGE" 2>/dev/null)" ]; then
    echo "slurm test: jobs did not finish" >&2; squeue; cat "$WORK"/log/*.out; exit 1
fi
if ! cmp -s "$WORK/corpus/local.tsv" "$WORK/corpus/merged.tsv"; then
    echo "slurm test: FAILED: the merged output differs from the one-shard run" >&2
    cat "$WORK"/log/*.out >&2
    exit 1
fi
rows=$(($(wc -l < "$WORK/corpus/merged.tsv") - 1))
# The requeued task resumed: part of its rows came from what the cancelled run had stored.
resumed=$(grep -o '"cache_hits": *[0-9]*' "$WORK/corpus/stats-1.json" | grep -o '[0-9]*$')
if [ "${resumed:-0}" -eq 0 ]; then
    echo "slurm test: FAILED: the requeued task 1 reused nothing from its cancelled run" >&2
    cat "$WORK/corpus/stats-1.json" >&2
    exit 1
fi
echo "slurm test: passed: 4 shards merged into the bytes of a one-shard run ($rows rows); task 1 was cancelled mid-run, requeued, and resumed with $resumed of its rows from its store"
