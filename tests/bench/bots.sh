#!/usr/bin/env bash
# Bot status throughput with three bots per user against one bot per user.
#
#   tests/bench/bots.sh [seconds] [rounds] [users] [reference-binary]
#
# Per round, on fresh instances of 2 workers each (the instance is stopped before
# the next one starts), `blitz loadtest` of each binary against its own server,
# <users> users (default 1,000) on 50 connections for <seconds> (default 10):
#   3 bots   this build, --bots-per-user 3: GET /api/bots/<id>/status
#   1 bot    this build, one bot each:      GET /api/bot/status
#   ref      <reference-binary> (a release before several bots; optional), one
#            bot each:                      GET /api/bot/status
# in alternating order (ref, 3 bots, 1 bot; then 1 bot, 3 bots, ref). Prints per run
# the status route's and the whole mix's req/s and the status route's p99, then
# the medians over <rounds> (default 3) and, for 3 bots / ref and 3 bots / 1 bot,
# the ratio of the status route's median req/s and the median of the per-round
# ratios. Rate limits are raised so that every
# request passes through the limiter and is admitted.
set -euo pipefail

secs=${1:-10}
rounds=${2:-3}
users=${3:-1000}
reference=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/blitz
work=$(mktemp -d)
trap 'kill $(cat "$work/server.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

if [ -n "$reference" ] && [ ! -x "$reference" ]; then
  echo "reference binary $reference is not an executable" >&2; exit 1
fi
cargo build --release --quiet --manifest-path "$root/Cargo.toml"

export RATE_LIMITS_START=100000/second RATE_LIMITS_STOP=100000/second
export RATE_LIMITS_RECOVER=100000/second RATE_LIMITS_STATUS=100000/second
export RATE_LIMITS_GLOBAL=100000/second

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# measure NAME BINARY BOTS: a fresh instance of BINARY, its loadtest with BOTS bots
# per user (1: the binary's own mix, without the option an older release lacks);
# writes "status_rps total_rps status_p99_ms" to $work/last.
measure() {
  local name=$1 binary=$2 bots=$3 dir port route extra=()
  dir=$work/$name-$RANDOM; mkdir -p "$dir"
  port=$(free_port)
  "$binary" serve --workers 2 --bind "127.0.0.1:$port" --database "$dir/database.db" \
    --error-logfile "$dir/blitz.log" >/dev/null 2>&1 &
  local server=$!
  echo "$server" >"$work/server.pid"
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  route="GET /api/bot/status"
  if [ "$bots" -gt 1 ]; then
    route="GET /api/bots/<id>/status"; extra=(--bots-per-user "$bots")
  fi
  "$binary" loadtest --url "http://127.0.0.1:$port" --users "$users" --connections 50 \
    --duration "$secs" --database "$dir/database.db" --json "${extra[@]}" >"$dir/result.json" || true
  kill "$server"; wait "$server" 2>/dev/null || true; rm -f "$work/server.pid"
  python3 - "$dir/result.json" "$route" >"$work/last" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = next(e for e in r["endpoints"] if e["endpoint"] == sys.argv[2])
t = r["total"]
if t["errors"]:
    print(f"warning: {t['errors']} failed requests: {t['statuses']}", file=sys.stderr)
print(f"{e['per_second']:.0f} {t['per_second']:.0f} {e['p99_ms']:.2f}")
PY
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

names=(three one)
labels=("3 bots" "1 bot")
binaries=("$bin" "$bin")
bots=(3 1)
if [ -n "$reference" ]; then
  names=(ref "${names[@]}"); labels=(ref "${labels[@]}")
  binaries=("$reference" "${binaries[@]}"); bots=(1 "${bots[@]}")
fi

echo "== bot status, $users users, 50 connections, ${secs}s per run, $rounds rounds, $(nproc) cores"
declare -A rps # [name,round] = the status route's req/s
for round in $(seq "$rounds"); do
  order=$(seq 0 $((${#names[@]} - 1)))
  [ $((round % 2)) -eq 0 ] && order=$(echo "$order" | tac)
  for i in $order; do
    measure "${names[$i]}" "${binaries[$i]}" "${bots[$i]}"
    read -r status total p99 <"$work/last"
    rps[${names[$i]},$round]=$status
    printf 'round %d  %-7s status %8s req/s  p99 %6s ms  | mix %8s req/s\n' \
      "$round" "${labels[$i]}" "$status" "$p99" "$total"
  done
done

echo
declare -A med
for i in "${!names[@]}"; do
  med[${names[$i]}]=$(for r in $(seq "$rounds"); do echo "${rps[${names[$i]},$r]}"; done | median)
  printf 'median  %-7s status %8s req/s\n' "${labels[$i]}" "${med[${names[$i]}]}"
done

# compare A B LABEL: the ratio of A's and B's medians, and the median of the
# per-round ratios (each round's runs met the same background load).
compare() {
  local per=() r
  for r in $(seq "$rounds"); do per+=("$(echo "${rps[$1,$r]} / ${rps[$2,$r]}" | bc -l)"); done
  printf '%s: ratio of medians %.3f, median of per-round ratios %.3f (rounds: %s)\n' "$3" \
    "$(echo "${med[$1]} / ${med[$2]}" | bc -l)" "$(printf '%s\n' "${per[@]}" | median)" \
    "$(printf '%.2f ' "${per[@]}")"
}
if [ -n "$reference" ]; then
  compare three ref "3 bots GET /api/bots/<id>/status / ref GET /api/bot/status"
fi
compare three one "3 bots GET /api/bots/<id>/status / 1 bot GET /api/bot/status"
