#!/usr/bin/env bash
# Read throughput with and without observers (issue 13): one ensemble of 3 voters + 2
# observers on this machine, and `arbor bench` getData from CLIENTS sessions spread
# round-robin over either the 3 voters only or all 5 servers, alternating, ROUNDS runs each,
# in the same run of the script (same servers, same data). Prints one line per run and a
# min / median / max table of ops/s, p50 and p99 (markdown, for docs/observers.md), with the
# servers' CPU seconds per run (from /proc) and the load average before the first run.
#
#   scripts/observers-bench.sh [ARBOR_BINARY]
#
# Environment: CLIENTS (64) DURATION (10) WARMUP (2) ROUNDS (3) THREADS (1) PIPELINE (1)
#   KEYS (1000) VALUE_SIZE (100) WORK (/tmp/arbor-obsbench; emptied first)
#   OUT (file the table is written to; default: only printed)
# Ports are picked free at start; the servers are stopped by PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1}
PIPELINE=${PIPELINE:-1}
KEYS=${KEYS:-1000}
VALUE_SIZE=${VALUE_SIZE:-100}
WORK=${WORK:-/tmp/arbor-obsbench}
OUT=${OUT:-}
BIN=${1:-}
if [[ -z $BIN ]]; then
  cargo build --release --quiet
  BIN=target/release/arbor
fi
ARBOR=$(realpath "$BIN")
rm -rf "$WORK"
mkdir -p "$WORK"

mapfile -t PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(15)]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])
')
CFG=$WORK/zoo.cfg
{
  echo "tickTime=2000"
  echo "initLimit=10"
  echo "syncLimit=5"
  echo "dataDir=$WORK/{id}"
  echo "maxClientCnxns=0"
  echo "4lw.commands.whitelist=*"
  echo "admin.enableServer=false"
  for i in 1 2 3 4 5; do
    role=""
    [[ $i -gt 3 ]] && role=":observer"
    echo "server.$i=127.0.0.1:${PORTS[$((3 * i - 2))]}:${PORTS[$((3 * i - 1))]}$role;127.0.0.1:${PORTS[$((3 * i - 3))]}"
  done
} >"$CFG"
ep() { local i out=""; for i in "$@"; do out+="127.0.0.1:${PORTS[$((3 * i - 3))]},"; done; echo "${out%,}"; }
VOTERS=$(ep 1 2 3)
ALL=$(ep 1 2 3 4 5)

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; true; }
trap cleanup EXIT
for i in 1 2 3 4 5; do
  mkdir -p "$WORK/$i"
  "$ARBOR" node "$i" "$CFG" >"$WORK/$i/arbor.log" 2>&1 &
  PIDS+=($!)
done

mode() { # port -> Mode of srvr, or nothing
  { exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && sed -n 's/^Mode: //p' <&3; exec 3>&-; } 2>/dev/null || true
}
ready=0
for _ in $(seq 1 300); do
  modes=""
  for i in 1 2 3 4 5; do modes+="$(mode "${PORTS[$((3 * i - 3))]}") "; done
  if [[ $(grep -o leader <<<"$modes" | wc -l) -eq 1 && $(grep -o follower <<<"$modes" | wc -l) -eq 2 \
        && $(grep -o observer <<<"$modes" | wc -l) -eq 2 ]]; then
    ready=1
    break
  fi
  sleep 0.2
done
[[ $ready -eq 1 ]] || { echo "ensemble not up: $modes (logs in $WORK/*/arbor.log)" >&2; exit 1; }
echo "ensemble up: $modes"

cpu_s() { # total user+sys seconds of the server processes
  local p t=0
  for p in "${PIDS[@]}"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  python3 -c "import os,sys; print(int(sys.argv[1]) / os.sysconf('SC_CLK_TCK'))" "$t"
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CORES=$(nproc)
RESULTS=$WORK/results.jsonl
run() { # label endpoints round
  local json=$WORK/last.json before after
  before=$(cpu_s)
  "$ARBOR" bench --endpoints "$2" --clients "$CLIENTS" --workload get --duration "$DURATION" --warmup "$WARMUP" \
    --threads "$THREADS" --pipeline "$PIPELINE" --keys "$KEYS" --value-size "$VALUE_SIZE" --json "$json" >"$WORK/last.txt" 2>&1 \
    || { cat "$WORK/last.txt" >&2; exit 1; }
  after=$(cpu_s)
  python3 - "$json" "$1" "$3" "$before" "$after" "$DURATION" "$WARMUP" >>"$RESULTS" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
j.update(cell=sys.argv[2], round=int(sys.argv[3]), server_cpu_s=round(float(sys.argv[5]) - float(sys.argv[4]), 2),
         wall_s=float(sys.argv[6]) + float(sys.argv[7]))
print(json.dumps(j))
EOF
  tail -n 1 "$RESULTS" | python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); l=j["latency"]; print("round %d %-22s %9.0f ops/s  p50 %s us  p99 %s us  errors %s  server CPU %.1f s" % (j["round"], j["cell"], j["ops_per_s"], l["p50_us"], l["p99_us"], j["errors"], j["server_cpu_s"]))'
}

echo "load average before: $LOAD ($CORES cores)"
for r in $(seq 1 "$ROUNDS"); do
  run "3 serving (voters)" "$VOTERS" "$r"
  run "5 serving (+2 observers)" "$ALL" "$r"
done

python3 - "$RESULTS" "$CLIENTS" "$DURATION" "$ROUNDS" "$THREADS" "$PIPELINE" "$LOAD" "$CORES" >"$WORK/table.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients, duration, rounds, threads, pipeline, load, cores = sys.argv[2:9]
print(f"getData, {clients} sessions round-robin over the serving servers, {threads} generator thread(s), "
      f"{pipeline} request(s) in flight per session, {duration} s measured per run, {rounds} runs per row "
      f"(alternating), {cores} cores, load average before: {load}.\n")
print("| serving servers | ops/s min / median / max | p50 µs (median run) | p99 µs min / median / max | server CPU s per run (median) | errors |")
print("|---|---|---|---|---|---|")
for cell in dict.fromkeys(r["cell"] for r in rows):
    rs = [r for r in rows if r["cell"] == cell]
    ops = sorted(r["ops_per_s"] for r in rs)
    p99 = sorted(r["latency"]["p99_us"] for r in rs)
    mid = sorted(rs, key=lambda r: r["ops_per_s"])[len(rs) // 2]
    cpu = statistics.median(r["server_cpu_s"] for r in rs)
    print(f"| {cell} | {ops[0]:,.0f} / {statistics.median(ops):,.0f} / {ops[-1]:,.0f} | {mid['latency']['p50_us']} | "
          f"{p99[0]} / {statistics.median(p99):.0f} / {p99[-1]} | {cpu:.1f} | {sum(r['errors'] for r in rs)} |")
EOF
echo
cat "$WORK/table.md"
if [[ -n $OUT ]]; then cp "$WORK/table.md" "$OUT"; fi
