#!/usr/bin/env bash
# What snapshots cost clients under write load (issue 14), on a standalone server (or, with
# SERVERS=3, a 3-node ensemble on this machine, sessions spread over all three):
# LOAD_ZNODES znodes are created, then CLIENTS sessions run setData on KEYS keys for
# DURATION seconds, alternately with snapshots off (snapCount=10^8) and every SNAP_COUNT
# txns, ROUNDS times each. For every run it prints ops/s, p50 / p99 / p99.9 / max, how
# many snapshots were written, and the peak PSS of all the server's processes (a forked
# snapshot child included) against the raw floor (paths + data + 68 B per znode).
#
#   scripts/snapshot-bench.sh [ARBOR_BINARY ...]     several binaries: same run, in turn
#
# Environment: SERVERS (1) LOAD_ZNODES (2000000) KEYS (100000) CLIENTS (64) DURATION (30) ROUNDS (2)
#   SNAP_COUNT (100000) VALUE_SIZE (100) WORK (/tmp/arbor-snapbench; emptied first)
#   OUT (file the summary table is appended to; default: only printed)
# Ports are picked free at start; the servers are stopped by PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
LOAD_ZNODES=${LOAD_ZNODES:-2000000}
KEYS=${KEYS:-100000}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-30}
ROUNDS=${ROUNDS:-2}
SNAP_COUNT=${SNAP_COUNT:-100000}
VALUE_SIZE=${VALUE_SIZE:-100}
WORK=${WORK:-/tmp/arbor-snapbench}
SERVERS=${SERVERS:-1}
BINS=("$@")
if [[ ${#BINS[@]} -eq 0 ]]; then
  cargo build --release --quiet
  BINS=(target/release/arbor)
fi
BENCH=$(realpath "${BINS[0]}")
mapfile -t PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3 * '"$SERVERS"')]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])
')
EP=$(for i in $(seq 1 "$SERVERS"); do printf '127.0.0.1:%s,' "${PORTS[$((3 * i - 3))]}"; done)
EP=${EP%,}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; true; }
trap cleanup EXIT

start() { # BIN SNAPCOUNT
  local i
  for i in $(seq 1 "$SERVERS"); do
    mkdir -p "$WORK/data/$i"
    {
      echo "tickTime=2000"
      echo "initLimit=10"
      echo "syncLimit=5"
      echo "dataDir=$WORK/data/$i"
      echo "snapCount=$2"
      echo "maxClientCnxns=0"
      echo "4lw.commands.whitelist=*"
      echo "admin.enableServer=false"
      if [[ $SERVERS -eq 1 ]]; then
        echo "clientPort=${PORTS[0]}"
        echo "clientPortAddress=127.0.0.1"
      else
        for j in $(seq 1 "$SERVERS"); do
          echo "server.$j=127.0.0.1:${PORTS[$((3 * j - 2))]}:${PORTS[$((3 * j - 1))]};127.0.0.1:${PORTS[$((3 * j - 3))]}"
        done
      fi
    } > "$WORK/zoo.$i.cfg"
    "$1" node "$i" "$WORK/zoo.$i.cfg" >>"$WORK/server.$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq 1 "$SERVERS"); do
    local ep=127.0.0.1:${PORTS[$((3 * i - 3))]} ok=
    for _ in $(seq 1 1800); do
      # A server answers srvr once it serves (in an ensemble: once it has synced).
      if "$BENCH" cli -s "$ep" srvr 2>/dev/null | grep -q '^Mode: \(standalone\|leader\|follower\)'; then ok=1; break; fi
      sleep 0.1
    done
    [[ -n "$ok" ]] || { echo "server $i did not serve within 180 s; see $WORK/server.$i.log" >&2; exit 1; }
  done
}

stop() { local p; for p in "${PIDS[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done; PIDS=(); }

# Peak PSS (KiB) of the servers and their children, summed, sampled every 100 ms until
# $1 exists.
sample_pss() {
  local peak=0 total p v
  while [[ ! -e "$1" ]]; do
    total=0
    for p in "${PIDS[@]}" $(for q in "${PIDS[@]}"; do cat /proc/"$q"/task/*/children 2>/dev/null; done); do
      v=$(awk '/^Pss:/{print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || true)
      total=$((total + ${v:-0}))
    done
    ((total > peak)) && peak=$total
    sleep 0.1
  done
  echo "$peak"
}

snapshots() { find "$WORK/data" -name 'snapshot.*' ! -name '*.tmp' | wc -l; }

mntr() { "$BENCH" cli -s "${EP%%,*}" mntr | awk -v k="$1" '$1==k{print $2}'; }

measure() { # LABEL
  local before after stopf="$WORK/stop.$RANDOM" pssf="$WORK/pss" json="$WORK/run.json"
  before=$(snapshots)
  rm -f "$stopf"
  sample_pss "$stopf" > "$pssf" &
  local sampler=$!
  "$BENCH" bench -e "$EP" -w set -k "$KEYS" -c "$CLIENTS" -d "$DURATION" --warmup 2 \
    --value-size "$VALUE_SIZE" --root /hot --json "$json" > "$WORK/run.txt" 2>&1
  touch "$stopf"; wait "$sampler"
  after=$(snapshots)
  local znodes size
  znodes=$(mntr zk_znode_count); size=$(mntr zk_approximate_data_size)
  python3 - "$1" "$json" "$(cat "$pssf")" "$znodes" "$size" "$((after - before))" "$SERVERS" <<'EOF'
import json, sys
label, path, pss_kib, znodes, size, snaps, servers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
r = json.load(open(path))
l = r["latency"]
floor = servers * (size + 68 * znodes)
print(f"| {label} | {znodes} | {r['ops_per_s']:.0f} | {l['p50_us']/1000:.2f} | {l['p99_us']/1000:.2f} | "
      f"{l['p999_us']/1000:.2f} | {l['max_us']/1000:.1f} | {snaps} | {pss_kib/1024:.0f} | {pss_kib*1024/floor:.2f} |")
EOF
}

rm -rf "$WORK"; mkdir -p "$WORK"
echo "| binary, snapshots | znodes | setData ops/s | p50 ms | p99 ms | p99.9 ms | max ms | snapshots | peak PSS MiB | PSS / floor |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for bin in "${BINS[@]}"; do
  rm -rf "$WORK/data"
  start "$bin" 100000000
  "$BENCH" bench -e "$EP" -w create -c 64 -p 16 --ops "$LOAD_ZNODES" -d 900 --warmup 0 \
    --value-size "$VALUE_SIZE" --root /fill > "$WORK/load.txt" 2>&1
  name=$(basename "$(dirname "$(dirname "$(dirname "$(realpath "$bin")")")")")
  for round in $(seq 1 "$ROUNDS"); do
    [[ ${#PIDS[@]} -eq 0 ]] && start "$bin" 100000000
    measure "$name, off (round $round)"
    stop
    start "$bin" "$SNAP_COUNT"
    measure "$name, every $SNAP_COUNT (round $round)"
    stop
  done
done
