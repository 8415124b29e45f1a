#!/usr/bin/env bash
# Stop or start one node of the kazoo 3-node ensemble (config/kazoo-3.cfg), for kazoo's own
# tests that stop and restart servers (TestReadOnlyMode, test_request_queuing_*): the kazoo
# runner's shim calls KAZOO_SERVER_STOP_CMD / KAZOO_SERVER_START_CMD with {index} (0-based
# position in the host list, which is server.{index+1}). scripts/test-all.sh sets them.
#
#   kazoo-ensemble-node.sh stop|start INDEX
#
# Env (set by test-all.sh): ARBOR_BIN, ARBOR_ENS_CFG, ARBOR_ENS_DIR (pid files pid.N and
# logs arbor-ens-N.log live there). Processes are signalled by the PID in their pid file
# only. `start` returns once the node answers srvr as leader, follower or read-only (the
# kazoo test goes on right after), `stop` once the process is gone.
set -euo pipefail
what=$1; id=$(($2 + 1))
: "${ARBOR_BIN:?}" "${ARBOR_ENS_CFG:?}" "${ARBOR_ENS_DIR:?}"
pidfile=$ARBOR_ENS_DIR/pid.$id
port=$(sed -n "s/^server\.$id=.*;127\.0\.0\.1:\([0-9]*\)$/\1/p" "$ARBOR_ENS_CFG")
mode() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf srvr >&3 && cat <&3" 2>/dev/null | sed -n 's/^Mode: //p'; }
case $what in
  stop)
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [[ -n $pid ]] || exit 0
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
  start)
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then exit 0; fi
    nohup "$ARBOR_BIN" node "$id" "$ARBOR_ENS_CFG" >>"$ARBOR_ENS_DIR/arbor-ens-$id.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 300); do
      case $(mode) in leader | follower | read-only) exit 0 ;; esac
      sleep 0.1
    done
    echo "kazoo-ensemble-node.sh: server.$id not serving 30 s after its start" >&2
    exit 1
    ;;
  *) echo "usage: $0 stop|start INDEX" >&2; exit 2 ;;
esac
