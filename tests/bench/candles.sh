#!/usr/bin/env bash
# How many exchange requests 1,000 dashboards polling candles cost.
#
#   tests/bench/candles.sh [seconds]
#
# Starts the release binary (2 workers) against the counting Bybit fake of
# tests/common/fake_bybit.rs, and 1,000 simulated dashboards, each polling
# GET /api/markets/candles for one of six charts (BTC, ETH, SOL × 1m, 15m) every
# 5 s, spread evenly over the 5 s, for [seconds] (default 60). Prints the fake's
# kline calls per minute and per key (the test behind it:
# bench_dashboards_polling_candles in tests/markets.rs; it also fails if a key was
# fetched more than once per refresh period).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
BENCH_SECONDS=${1:-60} cargo test --release --test markets bench_dashboards_polling_candles \
  -- --ignored --nocapture --exact 2>&1 | grep -E '^(  |[0-9]+ dashboards|kline calls|test result)'
