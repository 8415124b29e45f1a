# Sourced by the recording scripts: one standalone ZooKeeper 3.8 (Debian package jars) on a
# free loopback port with a temporary dataDir, started and stopped by its PID only.
#
#   source scripts/zk-standalone.sh
#   zk_start [extra zoo.cfg line ...]   # sets ZK_PORT, ZK_PID, ZK_DIR, ZK_VERSION; waits for imok
#   ...                                 # zk_stop runs on EXIT (KEEP=1 keeps $ZK_DIR)
# ZK_JVM_FLAGS: extra JVM flags (-Dzookeeper.*).
ZK_CP="/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

zk_fourlw() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && printf '%s' '$1' >&3 && cat <&3" 2>/dev/null || true; }

zk_start() {
  [[ -f /usr/share/java/zookeeper.jar ]] || { echo "ZooKeeper jars not found (apt-get install zookeeper)" >&2; return 3; }
  command -v java >/dev/null || { echo "java not found" >&2; return 3; }
  ZK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ZK_DIR=$(mktemp -d /tmp/arbor-rec-zk.XXXXXX)
  mkdir -p "$ZK_DIR/data" "$ZK_DIR/log"
  {
    echo "tickTime=2000"
    echo "dataDir=$ZK_DIR/data"
    echo "clientPort=$ZK_PORT"
    echo "clientPortAddress=127.0.0.1"
    echo "maxClientCnxns=0"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=*"
    local l
    for l in "$@"; do echo "$l"; done
  } > "$ZK_DIR/zoo.cfg"
  cat > "$ZK_DIR/log4j.properties" <<EOL
log4j.rootLogger=INFO, F
log4j.appender.F=org.apache.log4j.FileAppender
log4j.appender.F.File=$ZK_DIR/log/zookeeper.log
log4j.appender.F.layout=org.apache.log4j.PatternLayout
log4j.appender.F.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
EOL
  # shellcheck disable=SC2086
  java -Xmx256m ${ZK_JVM_FLAGS:-} -Dlog4j.configuration="file:$ZK_DIR/log4j.properties" \
    -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_DIR/zoo.cfg" \
    > "$ZK_DIR/log/stdout.log" 2>&1 < /dev/null &
  ZK_PID=$!
  trap zk_stop EXIT
  local _
  for _ in $(seq 1 150); do
    [[ $(zk_fourlw ruok) == imok ]] && zk_fourlw srvr | grep -q '^Mode:' && break
    sleep 0.2
  done
  zk_fourlw srvr | grep -q '^Mode:' || { echo "ZooKeeper did not start; log:" >&2; cat "$ZK_DIR"/log/* >&2; return 1; }
  ZK_VERSION=$(zk_fourlw srvr | sed -n 's/^Zookeeper version: \([0-9.]*\).*/ZooKeeper \1/p')
  echo "$ZK_VERSION on 127.0.0.1:$ZK_PORT (pid $ZK_PID, dataDir $ZK_DIR/data)"
}

zk_stop() {
  [[ -n ${ZK_PID:-} ]] || return 0
  kill -TERM "$ZK_PID" 2>/dev/null || true
  local _
  for _ in $(seq 1 50); do [[ -d /proc/$ZK_PID ]] || break; sleep 0.1; done
  kill -KILL "$ZK_PID" 2>/dev/null || true
  wait "$ZK_PID" 2>/dev/null || true
  ZK_PID=
  if [[ -n ${KEEP:-} ]]; then echo "kept $ZK_DIR"; else rm -rf "$ZK_DIR"; fi
}
