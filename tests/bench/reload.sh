#!/usr/bin/env bash
# Latency and errors while the server is reloaded, recycled and upgraded under load.
#
#   tests/bench/reload.sh [seconds]
#
# Starts the release binary (2 workers) and runs `wrk -t2 -c50 --latency` against
# /api/status for each case, in one run on one machine:
#   baseline        nothing happens
#   HUP every 1 s   rolling, readiness-gated replacement of every worker, repeatedly
#   slow boot HUP   the same with workers that take 1 s to become ready
#   max-requests    --max-requests 20000 (at these rates, a worker is replaced about every second)
#   USR2 + TERM     binary upgrade, then TERM of the old master, mid-run
# and prints req/s, p99, max, socket errors and non-2xx responses per case.
# Needs wrk (apt-get install wrk).
set -euo pipefail

secs=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/blitz
work=$(mktemp -d)
trap 'for f in "$work"/*/blitz.pid "$work"/*/blitz.pid.oldbin; do [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done; pkill -9 -f "$work" 2>/dev/null; rm -rf "$work"' EXIT

command -v wrk >/dev/null || { echo "missing wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"

export RATE_LIMITS_STATUS=100000/second RATE_LIMITS_GLOBAL=100000/second

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME [serve args...]: a fresh instance in $work/NAME; sets $port and $dir.
start() {
  local name=$1; shift
  dir=$work/$name; mkdir -p "$dir"
  port=$(free_port)
  (cd "$dir" && "$bin" serve --bind "127.0.0.1:$port" --workers 2 --pid blitz.pid \
     --env-file "$dir/env" --error-logfile error.log "$@" >/dev/null 2>&1 &)
  touch "$dir/env"
  for _ in $(seq 200); do
    curl -fs "127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "blitz did not start" >&2; exit 1
}

stop() { kill -TERM "$(cat "$dir/blitz.pid")"; for _ in $(seq 100); do [ -e "$dir/blitz.pid" ] || return 0; sleep 0.1; done; }

# run NAME ACTION: wrk for $secs seconds while ACTION runs in the background.
run() {
  local name=$1 action=$2
  $action & local bg=$!
  wrk -t2 -c50 -d"${secs}s" --latency "http://127.0.0.1:$port/api/status" >"$work/wrk.txt"
  wait $bg || true
  awk -v name="$name" '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {p99=$2}
    /Latency/ && !lat {max=$4; lat=1}
    /Socket errors/ {sock=$0; sub(/.*Socket errors: /, "", sock)}
    /Non-2xx/ {non2xx=$NF}
    END {printf "%-16s %10s req/s  p99 %8s  max %8s  non-2xx %s  socket errors: %s\n",
         name, rps, p99, max, non2xx ? non2xx : 0, sock ? sock : "none"}' "$work/wrk.txt"
}

idle() { sleep "$secs"; }
hups() { for _ in $(seq $((secs - 1))); do sleep 1; kill -HUP "$(cat "$dir/blitz.pid")"; done; }
upgrade() {
  sleep 2
  local old; old=$(cat "$dir/blitz.pid")
  kill -USR2 "$old"
  for _ in $(seq 100); do
    [ -s "$dir/blitz.pid" ] && [ "$(cat "$dir/blitz.pid")" != "$old" ] && break
    sleep 0.1
  done
  sleep 2   # the new master's workers boot
  kill -TERM "$old"
}

start main
run "baseline" idle
run "HUP every 1 s" hups
echo "BLITZ_TEST_BOOT_DELAY_MS=1000" >"$dir/env"
kill -HUP "$(cat "$dir/blitz.pid")"; sleep 3
run "slow boot HUP" hups
: >"$dir/env"
run "USR2 + TERM" upgrade
stop
start recycle --max-requests 20000 --max-requests-jitter 2000
run "max-requests" idle
stop
