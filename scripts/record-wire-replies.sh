#!/usr/bin/env bash
# Record what a real ZooKeeper 3.8 answers to tests/wire_replies.rs's fixed request sequence
# into tests/fixtures/wire-replies-zk38.txt (the byte-for-byte reply test compares arbor
# against it).
#
#   scripts/record-wire-replies.sh            # record (needs java + Debian package zookeeper)
#   scripts/record-wire-replies.sh --check    # replay against a fresh ZooKeeper instead and
#                                             # compare with the fixture (the masking must
#                                             # leave nothing run-dependent)
#
# One standalone ZooKeeper (scripts/zk-standalone.sh: free loopback port, temporary dataDir,
# tickTime=2000) with TTL nodes enabled (zookeeper.extendedTypesEnabled=true: arbor always
# has them), the ignored recorder test (or the comparison test) against it, then a stop by PID.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=zk-standalone.sh
source "$HERE/scripts/zk-standalone.sh"
ZK_JVM_FLAGS="-Dzookeeper.extendedTypesEnabled=true" zk_start

cd "$HERE"
if [[ ${1:-} == --check ]]; then
  ARBOR_WIRE_TARGET=127.0.0.1:$ZK_PORT cargo test --release --test wire_replies -- --exact replies_match_zookeeper_38_byte_for_byte
else
  ARBOR_WIRE_RECORD=127.0.0.1:$ZK_PORT ARBOR_WIRE_RECORD_VERSION="$ZK_VERSION" \
    cargo test --release --test wire_replies -- --ignored --exact record_zookeeper_replies --nocapture
fi
