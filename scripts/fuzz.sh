#!/usr/bin/env bash
# Fuzz arbor's decoders with cargo-fuzz (libFuzzer), one target at a time.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     default: all, 600 s per target
#
# Targets (fuzz/fuzz_targets/): jute_request, peer_message, txnlog_reader, snapshot_reader.
# Each run starts from the committed seeds (fuzz/seeds/TARGET, read-only) plus the working
# corpus fuzz/corpus/TARGET (created, kept between runs, not committed), with a 2 GiB RSS
# limit and a 512 MiB single-allocation limit, so unbounded allocation counts as a crash.
# Crashes land in fuzz/artifacts/TARGET/ (crash-*, oom-*, timeout-*, leak-*); replay one with
#   cargo +nightly fuzz run -a TARGET fuzz/artifacts/TARGET/crash-...
# Exits non-zero if any target found a crash. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Runs under `nice -n 19` with one job: it shares the machine.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL=(jute_request peer_message txnlog_reader snapshot_reader)
which=${1:-all}
secs=${2:-600}
if [[ $which == all ]]; then
  targets=("${ALL[@]}")
elif [[ " ${ALL[*]} " == *" $which "* ]]; then
  targets=("$which")
else
  echo "usage: $0 [all|${ALL[*]// /|}] [SECONDS]" >&2
  exit 2
fi

cd "$HERE"
# -a: debug assertions on, so an integer overflow is a crash, not a silent wrap.
if [[ $which == all ]]; then
  nice -n 19 cargo +nightly fuzz build -O -a
else
  nice -n 19 cargo +nightly fuzz build -O -a "$which"
fi
failed=()
for t in "${targets[@]}"; do
  out="$HERE/fuzz/artifacts/$t"
  mkdir -p "$HERE/fuzz/corpus/$t" "$out"
  echo "== $t: ${secs}s (libFuzzer's output: $out/fuzz-0.log)"
  # One job in one worker process (-jobs/-workers), started in the artifacts dir, where
  # libFuzzer writes its log. Corpus dirs: the first gets new inputs; the seeds are only read.
  if (cd "$out" && nice -n 19 cargo +nightly fuzz run --fuzz-dir "$HERE/fuzz" -O -a "$t" \
      "$HERE/fuzz/corpus/$t" "$HERE/fuzz/seeds/$t" -- \
      -max_total_time="$secs" -jobs=1 -workers=1 -rss_limit_mb=2048 -malloc_limit_mb=512 \
      -timeout=10 -max_len=65536 -print_final_stats=1 >/dev/null 2>&1) \
      && ! grep -qE "^==[0-9]+== ERROR|panicked at|^SUMMARY: libFuzzer" "$out/fuzz-0.log"; then
    echo "== $t: no crash"
  else
    echo "== $t: CRASH (see $out/ and its fuzz-0.log)" >&2
    grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" -A1 "$out/fuzz-0.log" | head -n 20 >&2 || true
    failed+=("$t")
  fi
  grep -E "^stat::|^Done" "$out/fuzz-0.log" || true
  echo "corpus: $(find "$HERE/fuzz/corpus/$t" -type f | wc -l) files"
done
if ((${#failed[@]})); then
  echo "crashes found in: ${failed[*]}" >&2
  exit 1
fi
echo "no crashes in: ${targets[*]}"
