#!/usr/bin/env bash
# Same-run comparison of a 3-node arbor and a 3-node Apache ZooKeeper 3.8 (Debian's `zookeeper`
# package) on this machine, both driven by `arbor bench` (it speaks only the ZooKeeper
# protocol, so it measures both alike). Writes BENCHMARKS.md and docs/benchmarks.svg from the
# raw results; no number in them is typed by hand.
#
#   scripts/compare-zookeeper.sh            full matrix (3 rounds x 10 s per cell, 1M znodes)
#   ROUNDS=3 DURATION=5 LOAD_ZNODES=200000 scripts/compare-zookeeper.sh    a smaller run
#
# What runs: both ensembles with tickTime=2000 and fsync on (arbor's default forceSync=yes;
# ZooKeeper forceSync=yes), ZooKeeper's JVM warmed by a bench before measuring (arbor gets
# the same warm-up). Then ROUNDS rounds of: create / set / get / mixed:90 x CLIENTS sessions,
# closed loop (one request in flight per session), each cell on arbor then on ZooKeeper; then
# open-loop latency (mixed:90 at RATE req/s) the same way. Finally each ensemble is loaded
# with LOAD_ZNODES znodes and every server's RSS is read from /proc.
#
# Environment: ROUNDS (3) DURATION (10) WARMUP (2) CLIENTS ("1 16 64")
#   WORKLOADS ("create set get mixed:90") RATE (2000) LOAD_ZNODES (1000000) ZK_HEAP (2g)
#   ARBOR (target/release/arbor, built if missing) OUT (BENCHMARKS.md) WORK (/tmp/arbor-compare)
#
# Ports: 18 free loopback ports picked at start (no fixed ports, so no lock and no clash with
# another ensemble on this machine). Processes are stopped by PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-"1 16 64"}
WORKLOADS=${WORKLOADS:-"create set get mixed:90"}
RATE=${RATE:-2000}
LOAD_ZNODES=${LOAD_ZNODES:-1000000}
ZK_HEAP=${ZK_HEAP:-2g}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
CHART=${CHART:-$ROOT/docs/benchmarks.svg}
WORK=${WORK:-/tmp/arbor-compare}
HOST=127.0.0.1
# 18 distinct free ports: client, quorum, election for 3 ZooKeeper and 3 arbor servers.
mapfile -t PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(18)]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])
')
ZK_CP="/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

[[ -f /usr/share/java/zookeeper.jar ]] || { echo "needs Debian's zookeeper package (apt-get install zookeeper)" >&2; exit 1; }
if [[ -z "${ARBOR:-}" ]]; then
  cargo build --release --quiet
  ARBOR=$ROOT/target/release/arbor
fi
# A private copy: a shared target dir may be rebuilt under a long run.
rm -rf "$WORK"; mkdir -p "$WORK"
cp "$ARBOR" "$WORK/arbor-bin"; ARBOR=$WORK/arbor-bin
RESULTS=$WORK/results.jsonl
: > "$RESULTS"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do [[ -d /proc/$p ]] || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

fourlw() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1 && printf '%s' '$2' >&3 && cat <&3" 2>/dev/null || true; }
mode_of() { fourlw "$1" srvr | sed -n 's/^Mode: //p'; }

wait_leader() { # wait_leader port port port: one leader, the rest followers (60 s at most)
  local deadline=$((SECONDS + 60)) p m leaders up
  while (( SECONDS < deadline )); do
    leaders=0; up=0
    for p in "$@"; do
      m=$(mode_of "$p")
      [[ $m == leader ]] && leaders=$((leaders + 1))
      [[ $m == leader || $m == follower ]] && up=$((up + 1))
    done
    (( leaders == 1 && up == $# )) && return 0
    sleep 0.3
  done
  echo "no leader on ports $* within 60 s" >&2; return 1
}

# ---- ZooKeeper 3.8 -------------------------------------------------------------------
ZK_PORTS=("${PORTS[0]}" "${PORTS[1]}" "${PORTS[2]}")
ZK_PIDS=()
start_zk() {
  local i d
  for i in 1 2 3; do
    d=$WORK/zk$i; mkdir -p "$d/data" "$d/log"
    echo "$i" > "$d/data/myid"
    {
      echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"
      echo "dataDir=$d/data"; echo "clientPort=${ZK_PORTS[$((i - 1))]}"; echo "clientPortAddress=$HOST"
      echo "maxClientCnxns=0"; echo "forceSync=yes"; echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=srvr,mntr,ruok"
      for j in 1 2 3; do echo "server.$j=$HOST:${PORTS[$((2 + j))]}:${PORTS[$((5 + j))]}"; done
    } > "$d/zoo.cfg"
    printf 'log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File=%s/zookeeper.log\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\nlog4j.appender.F.layout.ConversionPattern=%%d %%-5p %%m%%n\n' "$d/log" > "$d/log4j.properties"
    setsid java -Xms"$ZK_HEAP" -Xmx"$ZK_HEAP" -Dzookeeper.forceSync=yes \
      -Dlog4j.configuration="file:$d/log4j.properties" \
      -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
      > "$d/log/stdout.log" 2>&1 < /dev/null &
    ZK_PIDS+=($!); PIDS+=($!)
  done
  wait_leader "${ZK_PORTS[@]}"
}

# ---- arbor ---------------------------------------------------------------------------
AR_PORTS=("${PORTS[9]}" "${PORTS[10]}" "${PORTS[11]}")
AR_PIDS=()
start_arbor() {
  local cfg=$WORK/arbor.cfg i
  {
    echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"; echo "maxClientCnxns=0"
    echo "4lw.commands.whitelist=*"; echo "forceSync=yes"; echo "dataDir=$WORK/arbor/{id}"
    for i in 1 2 3; do echo "server.$i=$HOST:${PORTS[$((11 + i))]}:${PORTS[$((14 + i))]};$HOST:${AR_PORTS[$((i - 1))]}"; done
  } > "$cfg"
  for i in 1 2 3; do
    mkdir -p "$WORK/arbor/$i"
    setsid "$ARBOR" node "$i" "$cfg" > "$WORK/arbor/$i/arbor.log" 2>&1 < /dev/null &
    AR_PIDS+=($!); PIDS+=($!)
  done
  wait_leader "${AR_PORTS[@]}"
}

endpoints() { local s="" p; for p in "$@"; do s+="${s:+,}$HOST:$p"; done; echo "$s"; }

# bench <server> <round> <label> <bench args...>: one run, its JSON line tagged and appended.
bench() {
  local server=$1 round=$2 label=$3; shift 3
  local eps json=$WORK/last.json
  if [[ $server == arbor ]]; then eps=$(endpoints "${AR_PORTS[@]}"); else eps=$(endpoints "${ZK_PORTS[@]}"); fi
  "$ARBOR" bench --endpoints "$eps" --json "$json" "$@" > "$WORK/last.txt" 2>&1 \
    || { echo "bench failed: $server $label" >&2; cat "$WORK/last.txt" >&2; return 1; }
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j.update(server=sys.argv[2], round=int(sys.argv[3]), cell=sys.argv[4]); print(json.dumps(j))' \
    "$json" "$server" "$round" "$label" >> "$RESULTS"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); l=j["latency"]; print("%-9s round %s %-22s %10.0f ops/s  p50 %s us  p99 %s us  errors %s" % (sys.argv[2], sys.argv[3], sys.argv[4], j["ops_per_s"], l["p50_us"], l["p99_us"], j["errors"]))' \
    "$json" "$server" "$round" "$label"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

LOADAVG=$WORK/loadavg.txt
printf '%s' "$(cut -d' ' -f1 /proc/loadavg)" > "$LOADAVG"
echo "starting ZooKeeper 3.8 and arbor (3 nodes each) under $WORK"
start_zk
start_arbor

echo "warming up (JVM JIT; arbor gets the same)"
for s in zookeeper arbor; do
  bench "$s" 0 warmup-get --workload get --clients 64 --duration 10 --warmup 0 >/dev/null
  bench "$s" 0 warmup-set --workload set --clients 16 --duration 5 --warmup 0 >/dev/null
done

for r in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    for c in $CLIENTS; do
      for s in arbor zookeeper; do
        bench "$s" "$r" "$w/$c" --workload "$w" --clients "$c" --duration "$DURATION" --warmup "$WARMUP"
      done
    done
  done
  for s in arbor zookeeper; do
    bench "$s" "$r" "open:mixed:90@$RATE" --workload mixed:90 --clients 16 --rate "$RATE" --pipeline 8 \
      --duration "$DURATION" --warmup "$WARMUP"
  done
done

echo "loading $LOAD_ZNODES znodes into each"
MEM=$WORK/memory.json
declare -A RSS
for s in arbor zookeeper; do
  bench "$s" 0 "load" --workload create --clients 64 --pipeline 16 --ops "$LOAD_ZNODES" --duration 1800 --warmup 0 \
    --root /arbor-load --value-size 100
  sleep 2
  if [[ $s == arbor ]]; then pids=("${AR_PIDS[@]}"); else pids=("${ZK_PIDS[@]}"); fi
  RSS[$s]="$(rss_kb "${pids[0]}"), $(rss_kb "${pids[1]}"), $(rss_kb "${pids[2]}")"
  echo "$s RSS (KiB) after loading: ${RSS[$s]}"
done
printf '{"arbor": [%s], "zookeeper": [%s], "znodes": %s}\n' "${RSS[arbor]}" "${RSS[zookeeper]}" "$LOAD_ZNODES" > "$MEM"

printf ' / %s' "$(cut -d' ' -f1 /proc/loadavg)" >> "$LOADAVG"
python3 "$ROOT/scripts/benchmarks_report.py" --loadavg "$LOADAVG" --results "$RESULTS" --memory "$MEM" --out "$OUT" --chart "$CHART" \
  --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" --rate "$RATE" --arbor "$ARBOR"
# The raw lines next to the chart, so every number in OUT can be traced back.
cp "$RESULTS" "$(dirname "$CHART")/benchmarks-results.jsonl"
cp "$MEM" "$(dirname "$CHART")/benchmarks-memory.json"
echo "wrote $OUT and $CHART (raw results: $RESULTS, copied next to the chart)"
