#!/usr/bin/env bash
# Record ZooKeeper 3.8's normalised zkCli transcript for each tests/zkcli/*-script.txt into
# tests/zkcli/<name>-zk38.txt (tests/zkcli.rs diffs arbor's against it). Uses the shared
# normaliser ../shared/peers/kazoo/zkcli-run.sh (or $ARBOR_PEERS_DIR/kazoo) and one standalone
# ZooKeeper configured like ../shared/peers/kazoo/zk-single.sh (what zkcli-zk38.txt was
# recorded against: reconfigEnabled, no local sessions, superDigest super:test), on a free port.
#
#   scripts/record-zkcli-transcripts.sh [name ...]    # default: every tests/zkcli/*-script.txt
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${ARBOR_PEERS_DIR:-$HERE/../shared/peers}
RUN=$PEERS/kazoo/zkcli-run.sh
[[ -f $RUN ]] || { echo "$RUN not found (set ARBOR_PEERS_DIR)" >&2; exit 3; }
# shellcheck source=zk-standalone.sh
source "$HERE/scripts/zk-standalone.sh"
ZK_JVM_FLAGS="-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=" \
  zk_start reconfigEnabled=true localSessionsEnabled=false localSessionsUpgradingEnabled=false

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for f in "$HERE"/tests/zkcli/*-script.txt; do names+=("$(basename "$f" -script.txt)"); done
fi
for n in "${names[@]}"; do
  bash "$RUN" "127.0.0.1:$ZK_PORT" "$HERE/tests/zkcli/$n-script.txt" > "$HERE/tests/zkcli/$n-zk38.txt"
  echo "tests/zkcli/$n-zk38.txt: $(wc -l < "$HERE/tests/zkcli/$n-zk38.txt") lines ($ZK_VERSION)"
done
