#!/usr/bin/env bash
# Real-exchange bots at scale (issue 22, CONTRACT C16).
#
#   tests/bench/exchange-scale.sh [bots] [seconds]
#
# Starts the Bybit fake of tests/common/fake_bybit.rs (one account per bot; it
# enforces Bybit's limit of 600 requests per 5 s per IP with the 403 ban) and the
# release binary with <bots> Bybit bots (default 1,000), each its own user with its
# own exchange account, then moves the fake's price every 250 ms for <seconds>
# (default 300) in swings that fill the bots' legs and take-profits, so cycles close
# and restart. Prints how the setup went and a cross-check of the fill latency from
# the fake's and the bots' records, then on its last line:
#
#   bots=N ip_limit_exceeded=K fill_to_engine_p99_ms=X rest_requests_per_5s_max=Y runner_cpu=Z runner_rss_mb=W
#
# (targets: K = 0, X <= 1000, Y <= 500). The test behind it is bench_exchange_scale
# in tests/exchange_scale.rs; BENCH_SWING_S (one price round trip, default a third of
# the run within 20-120 s) and BENCH_START_RATE (bot starts per second, default 20)
# tune it. A smoke run: tests/bench/exchange-scale.sh 50 30.
set -euo pipefail

bots=${1:-1000}
secs=${2:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
BENCH_BOTS=$bots BENCH_SECONDS=$secs cargo test --release --test exchange_scale \
  bench_exchange_scale -- --ignored --nocapture --exact >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ] || ! grep -q '^bots=' "$log"; then
  tail -n 40 "$log" >&2
  echo "exchange-scale: the benchmark failed (exit $status)" >&2
  exit 1
fi
grep -E '^  ' "$log" || true
grep '^bots=' "$log" | tail -n 1
