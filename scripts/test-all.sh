#!/usr/bin/env bash
# arbor's whole test run, the command README.md shows and .ci/run uses:
#
#   bash scripts/test-all.sh
#
# Phases (each timed, each bounded):
#   1. cargo build --release
#   2. cargo test --release             unit + integration tests (tests/ spawn the real binary)
#   3. kazoo 2.11's own suite against a standalone arbor (config/kazoo.cfg, 127.0.0.1:22181), then
#      against a 3-node arbor ensemble (config/kazoo-3.cfg, 127.0.0.1:22181-22183) via
#      $PEERS/kazoo/run.sh; fails on any failed test not listed in kazoo-expected-failures.txt
#      With TLS (needs the openssl CLI): both runs also serve a secure client port
#      (127.0.0.1:22191[-22193], certificates made into $OUT/tls) and the ensemble runs with
#      sslQuorum, so kazoo's TestSSLClient runs (scripts/kazoo/arbor_kazoo_tls.py points the
#      runner's shim at the secure ports)
#   4. zkCli transcript: $PEERS/kazoo/zkcli-run.sh against a fresh arbor, diffed with the
#      ZooKeeper 3.8 transcript $PEERS/kazoo/zkcli-zk38.txt (needs zkCli.sh + java; skipped with
#      a notice when absent unless ARBOR_REQUIRE_ZKCLI=1)
#
# Env:
#   ARBOR_SKIP_KAZOO=1        skip phase 3           ARBOR_SKIP_ZKCLI=1   skip phase 4
#   ARBOR_SKIP_KAZOO_ENSEMBLE=1  skip the 3-node half of phase 3
#   ARBOR_SKIP_CARGO_TEST=1   skip phase 2           ARBOR_REQUIRE_ZKCLI=1  missing zkCli = failure
#   ARBOR_REQUIRE_CHROMIUM=1  phase 2's console test (tests/admin_console.rs) fails instead of
#                             skipping when chromium, node or playwright-core is missing
#   ARBOR_PEERS_DIR           default: <repo>/../shared/peers
#   ARBOR_KAZOO_ARGS          pytest selection for run.sh, e.g. "@milestones/m1-connect-crud.txt"
#   ARBOR_CARGO_TEST_TIMEOUT  seconds for phase 2 (default 1200)
#   ARBOR_KAZOO_TIMEOUT       seconds for phase 3 (default 1800)
#   CARGO_TARGET_DIR          honoured; results go to $CARGO_TARGET_DIR/test-all/<stamp>/
#   ARBOR_BIN                 server binary for phases 3-4 (default: the release build; for testing this script)
# Exit status: 0 only if every phase that ran passed.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PEERS=${ARBOR_PEERS_DIR:-$REPO/../shared/peers}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${ARBOR_BIN:-$TARGET_DIR/release/arbor}
KAZOO_CFG=$REPO/config/kazoo.cfg
EXPECTED=$REPO/kazoo-expected-failures.txt
OUT=$TARGET_DIR/test-all/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT"

say() { printf '\n[test-all] %s\n' "$*" >&2; }
die() { printf '\n[test-all] FAIL: %s\n' "$*" >&2; exit 1; }

declare -a TIMES=()
phase_start() { PHASE=$1; PHASE_T0=$SECONDS; say "=== $PHASE ==="; }
phase_end() { TIMES+=("$(printf '%-28s %4d s  %s' "$PHASE" $((SECONDS - PHASE_T0)) "$1")"); say "$PHASE: $1 ($((SECONDS - PHASE_T0)) s)"; }
report() {
  local rc=$?
  stop_arbor
  if ((${#ENS_PIDS[@]})) && declare -F stop_ensemble >/dev/null; then stop_ensemble; fi
  if ((${#TIMES[@]})); then
    printf '\n[test-all] phase timings:\n' >&2
    printf '  %s\n' "${TIMES[@]}" >&2
  fi
  printf '[test-all] %s; results in %s\n' "$([[ $rc -eq 0 ]] && echo PASSED || echo "FAILED (rc=$rc)")" "$OUT" >&2
}
trap report EXIT

# ---------- arbor process control (by PID only) ----------
ENS_PIDS=()
ARBOR_PID=
cfg_value() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$KAZOO_CFG" | tail -n1 | sed 's/[[:space:]]*$//'; }
KAZOO_HOST=$(cfg_value clientPortAddress)
KAZOO_PORT=$(cfg_value clientPort)
KAZOO_DATA=$(cfg_value dataDir)
KAZOO_ADDR=$KAZOO_HOST:$KAZOO_PORT

fourlw() { timeout 3 bash -c "exec 3<>/dev/tcp/$KAZOO_HOST/$KAZOO_PORT && printf '%s' '$1' >&3 && cat <&3" 2>/dev/null || true; }

start_arbor() { # $1 = log file; wipes dataDir first
  local log=$1
  [[ -n $KAZOO_DATA && $KAZOO_DATA != / ]] || die "config/kazoo.cfg has no usable dataDir"
  if (exec 3<>"/dev/tcp/$KAZOO_HOST/$KAZOO_PORT") 2>/dev/null; then
    die "$KAZOO_ADDR is already in use (a reference ZooKeeper from zk-single.sh? another arbor?)"
  fi
  rm -rf "$KAZOO_DATA"
  "$BIN" node 1 "$KAZOO_CFG" >>"$log" 2>&1 </dev/null &
  ARBOR_PID=$!
  local deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$ARBOR_PID" 2>/dev/null; then
      ARBOR_PID=
      tail -n 50 "$log" >&2
      die "arbor exited during startup (log: $log)"
    fi
    [[ $(fourlw ruok) == imok ]] && { say "arbor pid $ARBOR_PID up on $KAZOO_ADDR (log: $log)"; return 0; }
    sleep 0.2
  done
  tail -n 50 "$log" >&2
  die "arbor did not answer ruok on $KAZOO_ADDR within 20 s (log: $log)"
}

stop_arbor() {
  [[ -n $ARBOR_PID ]] || return 0
  local pid=$ARBOR_PID
  ARBOR_PID=
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[test-all] arbor pid $pid ignored SIGTERM for 10 s; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

arbor_alive_or_die() { # $1 = log
  kill -0 "$ARBOR_PID" 2>/dev/null && return 0
  wait "$ARBOR_PID" 2>/dev/null && rc=0 || rc=$?
  ARBOR_PID=
  tail -n 50 "$1" >&2
  die "arbor died during the run (exit status $rc; log: $1)"
}

# ---------- 1. build ----------
phase_start "cargo build --release"
timeout 1800 cargo build --release || die "cargo build --release"
[[ -x $BIN ]] || die "no binary at $BIN"
phase_end ok

# ---------- 2. cargo tests ----------
if [[ ${ARBOR_SKIP_CARGO_TEST:-0} == 1 ]]; then
  TIMES+=("cargo test --release        skipped (ARBOR_SKIP_CARGO_TEST=1)")
else
  phase_start "cargo test --release"
  timeout --kill-after=30 "${ARBOR_CARGO_TEST_TIMEOUT:-1200}" cargo test --release ||
    die "cargo test --release (status $?; 124 = timed out after ${ARBOR_CARGO_TEST_TIMEOUT:-1200} s)"
  phase_end ok
fi

# ---------- 3. kazoo suite: standalone, then a 3-node ensemble ----------
# check_kazoo <results dir> <runner status>: fail on any failure not in the expected list.
check_kazoo() {
  local KOUT=$1 krc=$2
  [[ -s $KOUT/summary.txt ]] || die "kazoo runner wrote no summary (status $krc; see $KOUT)"
  grep -q '^WARNING: pytest exited' "$KOUT/summary.txt" && die "kazoo run incomplete: $(grep '^WARNING' "$KOUT/summary.txt")"
  [[ -s $KOUT/results.tsv ]] || die "kazoo runner recorded no results (status $krc; see $KOUT)"
  # results.tsv: <node id> TAB <passed|failed|skipped|error> TAB ...
  local expected_ids failed_ids unexpected now_passing
  expected_ids=$(grep -v '^[[:space:]]*#' "$EXPECTED" | awk 'NF {print $1}' | sort -u)
  failed_ids=$(awk -F'\t' '$2 == "failed" || $2 == "error" {print $1}' "$KOUT/results.tsv" | sort -u)
  unexpected=$(comm -23 <(printf '%s\n' "$failed_ids" | sed '/^$/d') <(printf '%s\n' "$expected_ids"))
  now_passing=$(comm -12 <(awk -F'\t' '$2 == "passed" {print $1}' "$KOUT/results.tsv" | sort -u) <(printf '%s\n' "$expected_ids"))
  if [[ -n $now_passing ]]; then
    say "these tests are in kazoo-expected-failures.txt but passed (consider removing them):"
    printf '  %s\n' $now_passing >&2
  fi
  if [[ -n $unexpected ]]; then
    say "failed kazoo tests NOT in kazoo-expected-failures.txt:"
    printf '  %s\n' $unexpected >&2
    die "kazoo: $(echo "$unexpected" | wc -l) unexpected failure(s); details in $KOUT/pytest.log"
  fi
  [[ $krc -eq 0 || $krc -eq 1 ]] || die "kazoo runner exited with status $krc (see $KOUT)"
}

# run_kazoo <results dir> <HOST:PORT[,...]> [<secure HOST:PORT[,...]>]
run_kazoo() {
  local KOUT=$1 target=$2 secure=${3:-} krc
  set +e
  # shellcheck disable=SC2086  # ARBOR_KAZOO_ARGS is a word list on purpose
  ARBOR_KAZOO_SECURE_SERVERS=$secure PYTHONPATH=$REPO/scripts/kazoo${PYTHONPATH:+:$PYTHONPATH} \
  KAZOO_OUT_DIR=$KOUT KAZOO_EXPECTED=$EXPECTED KAZOO_SUITE_TIMEOUT=${ARBOR_KAZOO_TIMEOUT:-1800} \
    timeout --kill-after=60 $((${ARBOR_KAZOO_TIMEOUT:-1800} + 300)) bash "$RUN" "$target" -p arbor_kazoo_tls ${ARBOR_KAZOO_ARGS:-}
  krc=$?
  set -e
  KRC=$krc
}

# tls_lines PREFIX: the key/trust store lines (ssl or ssl.quorum) for $OUT/tls.
tls_lines() {
  printf '%s.keyStore.location=%s\n%s.keyStore.type=PEM\n%s.trustStore.location=%s\n%s.trustStore.type=PEM\n' \
    "$1" "$OUT/tls/server.pem" "$1" "$1" "$OUT/tls/ca.pem" "$1"
}

# The ensemble: three `arbor node` processes of config/kazoo-3.cfg, by PID.
ENS_CFG=$REPO/config/kazoo-3.cfg
ens_ports() { sed -n 's/^server\.[0-9]*=.*;127\.0\.0\.1:\([0-9]*\)$/\1/p' "$ENS_CFG"; }
ens_mode() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && cat <&3" 2>/dev/null | sed -n 's/^Mode: //p'; }
start_ensemble() { # $1 = log prefix
  local base; base=$(sed -n 's/^dataDir=\(.*\)\/{id}$/\1/p' "$ENS_CFG")
  [[ -n $base && $base != / ]] || die "config/kazoo-3.cfg has no usable dataDir"
  for p in $(ens_ports); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "127.0.0.1:$p is already in use"
  done
  rm -rf "$base"
  for id in 1 2 3; do
    "$BIN" node "$id" "$ENS_CFG" >>"$1-$id.log" 2>&1 </dev/null &
    ENS_PIDS+=($!)
    echo $! >"$OUT/pid.$id"
  done
  local deadline=$((SECONDS + 60)) modes
  while ((SECONDS < deadline)); do
    modes=$(for p in $(ens_ports); do ens_mode "$p"; done | sort | tr '\n' ' ')
    [[ $modes == "follower follower leader " ]] && { say "ensemble up (pids ${ENS_PIDS[*]}): $modes"; return 0; }
    for pid in "${ENS_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || die "an ensemble node (pid $pid) exited during startup (logs: $1-*.log)"; done
    sleep 0.2
  done
  die "the ensemble did not elect a leader within 60 s (modes: $modes; logs: $1-*.log)"
}
# The pids now running: kazoo's stop/start hooks (scripts/kazoo-ensemble-node.sh) restart
# nodes under new pids, recorded in $OUT/pid.N.
ens_current_pids() { local id; for id in 1 2 3; do cat "$OUT/pid.$id" 2>/dev/null || true; done; }
stop_ensemble() {
  local pid
  local id
  for id in 1 2 3; do
    [[ -f $OUT/pid.$id ]] && ARBOR_BIN=$BIN ARBOR_ENS_CFG=$ENS_CFG ARBOR_ENS_DIR=$OUT \
      bash "$REPO/scripts/kazoo-ensemble-node.sh" stop $((id - 1)) || true
  done
  for pid in "${ENS_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${ENS_PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ENS_PIDS=()
}

if [[ ${ARBOR_SKIP_KAZOO:-0} == 1 ]]; then
  TIMES+=("kazoo suite                 skipped (ARBOR_SKIP_KAZOO=1)")
else
  RUN=$PEERS/kazoo/run.sh
  [[ -f $RUN ]] || die "kazoo runner not found at $RUN (set ARBOR_PEERS_DIR)"

  # TLS for kazoo's TestSSLClient: the configs of this run are the repo's plus a secure
  # client port (and sslQuorum for the ensemble), written into $OUT.
  SECURE_ADDR= ENS_SECURE=
  if command -v openssl >/dev/null; then
    bash "$REPO/scripts/make-test-certs.sh" "$OUT/tls" >/dev/null || die "scripts/make-test-certs.sh failed"
    export ARBOR_KAZOO_TLS_DIR=$OUT/tls
    { cat "$KAZOO_CFG"; echo "# added by scripts/test-all.sh (kazoo's TestSSLClient)"; echo "secureClientPort=22191"; tls_lines ssl; } >"$OUT/kazoo.cfg"
    KAZOO_CFG=$OUT/kazoo.cfg SECURE_ADDR=127.0.0.1:22191
    {
      cat "$ENS_CFG"; echo "# added by scripts/test-all.sh (kazoo's TestSSLClient; quorum under TLS)"
      for id in 1 2 3; do echo "secureClientPort.$id=$((22190 + id))"; done
      tls_lines ssl; echo "sslQuorum=true"; tls_lines ssl.quorum
    } >"$OUT/kazoo-3.cfg"
    ENS_CFG=$OUT/kazoo-3.cfg ENS_SECURE=127.0.0.1:22191,127.0.0.1:22192,127.0.0.1:22193
  else
    say "openssl not found: no TLS endpoint, kazoo's TestSSLClient will fail"
  fi

  phase_start "kazoo suite (standalone)"
  start_arbor "$OUT/arbor-kazoo.log"
  run_kazoo "$OUT/kazoo" "$KAZOO_ADDR" "$SECURE_ADDR"
  arbor_alive_or_die "$OUT/arbor-kazoo.log"
  stop_arbor
  check_kazoo "$OUT/kazoo" "$KRC"
  phase_end "$(grep -E '^[0-9]+ passed' "$OUT/kazoo/summary.txt" | head -n1)"

  if [[ ${ARBOR_SKIP_KAZOO_ENSEMBLE:-0} == 1 ]]; then
    TIMES+=("kazoo suite (3 nodes)       skipped (ARBOR_SKIP_KAZOO_ENSEMBLE=1)")
  else
    phase_start "kazoo suite (3-node ensemble)"
    start_ensemble "$OUT/arbor-ens"
    # kazoo's tests that stop and restart servers (read-only mode, request queuing) get
    # real hooks here: the node by its pid file, restarted with the same config.
    export ARBOR_BIN=$BIN ARBOR_ENS_CFG=$ENS_CFG ARBOR_ENS_DIR=$OUT
    export KAZOO_SERVER_STOP_CMD="bash $REPO/scripts/kazoo-ensemble-node.sh stop {index}"
    export KAZOO_SERVER_START_CMD="bash $REPO/scripts/kazoo-ensemble-node.sh start {index}"
    run_kazoo "$OUT/kazoo-ens" "$(ens_ports | sed 's/^/127.0.0.1:/' | paste -sd,)" "$ENS_SECURE"
    unset KAZOO_SERVER_STOP_CMD KAZOO_SERVER_START_CMD
    for pid in $(ens_current_pids); do kill -0 "$pid" 2>/dev/null || die "an ensemble node (pid $pid) died during the run (logs: $OUT/arbor-ens-*.log)"; done
    stop_ensemble
    check_kazoo "$OUT/kazoo-ens" "$KRC"
    phase_end "$(grep -E '^[0-9]+ passed' "$OUT/kazoo-ens/summary.txt" | head -n1)"
  fi
fi

# ---------- 4. zkCli transcript ----------
if [[ ${ARBOR_SKIP_ZKCLI:-0} == 1 ]]; then
  TIMES+=("zkCli transcript            skipped (ARBOR_SKIP_ZKCLI=1)")
else
  ZKCLI=${ZKCLI:-}
  if [[ -z $ZKCLI ]]; then
    for c in "$(command -v zkCli.sh 2>/dev/null || true)" /usr/share/zookeeper/bin/zkCli.sh; do
      [[ -n $c && -x $c ]] && { ZKCLI=$c; break; }
    done
  fi
  if [[ -z $ZKCLI ]] || ! command -v java >/dev/null; then
    msg="zkCli.sh or java not found (apt-get install zookeeper)"
    [[ ${ARBOR_REQUIRE_ZKCLI:-0} == 1 ]] && die "$msg"
    say "SKIPPING the zkCli transcript check: $msg"
    TIMES+=("zkCli transcript            SKIPPED: $msg")
  else
    phase_start "zkCli transcript"
    [[ -f $PEERS/kazoo/zkcli-run.sh ]] || die "zkcli-run.sh not found under $PEERS/kazoo"
    start_arbor "$OUT/arbor-zkcli.log"
    ZKCLI=$ZKCLI ZKCLI_RAW=$OUT/zkcli-raw.txt timeout 300 bash "$PEERS/kazoo/zkcli-run.sh" "$KAZOO_ADDR" \
      >"$OUT/zkcli-arbor.txt" || die "zkcli-run.sh failed or timed out (status $?; raw output $OUT/zkcli-raw.txt)"
    arbor_alive_or_die "$OUT/arbor-zkcli.log"
    stop_arbor
    if ! diff -u "$PEERS/kazoo/zkcli-zk38.txt" "$OUT/zkcli-arbor.txt" >"$OUT/zkcli.diff"; then
      cat "$OUT/zkcli.diff" >&2
      die "zkCli transcript differs from ZooKeeper 3.8's (- zk38, + arbor; saved in $OUT/zkcli.diff)"
    fi
    phase_end "identical to ZooKeeper 3.8"
  fi
fi
