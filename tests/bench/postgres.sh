#!/usr/bin/env bash
# One instance on SQLite against one on PostgreSQL, same machine, same run.
#
#   tests/bench/postgres.sh [seconds] [rounds] [users]
#
# Per round, a fresh instance of 2 workers on each engine (the instance is stopped
# before the next one starts), both with the same private Redis (PostgreSQL requires
# it; the SQLite instance uses it too, so only the storage differs), and `blitz
# loadtest` against it: <users> users (default 1,000), 50 connections, <seconds>
# (default 10), the loadtest's own mix (bot status and config reads, starts and
# stops, bot lists, trades). Alternating order (SQLite first in odd rounds). Prints
# each run's req/s and p99, the medians over <rounds> (default 3), and
# PostgreSQL/SQLite as the ratio of the medians and the median of per-round ratios.
#
# PostgreSQL runs on this machine: Debian's `postgresql` package, a private cluster
# in a temporary directory as the `postgres` user, durable (fsync on) with its
# default settings except max_connections=200. Needs redis-server and postgresql.
set -euo pipefail

secs=${1:-10}
rounds=${2:-3}
users=${3:-1000}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/blitz
work=$(mktemp -d)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
cleanup() {
  kill $(cat "$work/server.pid" 2>/dev/null) 2>/dev/null || true
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_port=$(free_port)
mkdir "$work/pg" && chown postgres "$work/pg"
su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pg -U blitz -A trust --no-instructions" >/dev/null
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -l $work/pg/log -w \
  -o '-p $pg_port -k $work/pg -h 127.0.0.1 -c max_connections=200' start" >/dev/null
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --dir "$work" >/dev/null

export RATE_LIMITS_START=100000/second RATE_LIMITS_STOP=100000/second
export RATE_LIMITS_RECOVER=100000/second RATE_LIMITS_STATUS=100000/second
export RATE_LIMITS_GLOBAL=100000/second REDIS_URL=redis://127.0.0.1:$redis_port/0

# measure ENGINE: a fresh instance on ENGINE (sqlite or postgres), its loadtest;
# writes "total_rps p99_ms errors" to $work/last.
measure() {
  local engine=$1 dir port database
  dir=$work/$engine-$RANDOM; mkdir -p "$dir/instance"
  port=$(free_port)
  if [ "$engine" = postgres ]; then
    database=postgres://blitz@127.0.0.1:$pg_port/bench_$RANDOM
    psql -q -h 127.0.0.1 -p "$pg_port" -U blitz -d postgres -c "CREATE DATABASE ${database##*/}"
  else
    database=$dir/instance/database.db
  fi
  redis-cli -p "$redis_port" flushall >/dev/null
  (cd "$dir" && "$bin" serve --workers 2 --bind "127.0.0.1:$port" --database "$database" \
    --error-logfile "$dir/blitz.log" >/dev/null 2>&1) &
  local server=$!
  echo "$server" >"$work/server.pid"
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$bin" loadtest --url "http://127.0.0.1:$port" --users "$users" --connections 50 \
    --duration "$secs" --database "$database" --json >"$dir/result.json" || true
  pkill -TERM -P "$server" 2>/dev/null || true
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -f "$work/server.pid"
  python3 - "$dir/result.json" >"$work/last" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["total"]
print(f"{t['per_second']:.0f} {t['p99_ms']:.2f} {t['errors']}")
PY
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "== loadtest mix, $users users, 50 connections, ${secs}s per run, $rounds rounds, $(nproc) cores"
declare -A rps
for round in $(seq "$rounds"); do
  order="sqlite postgres"
  [ $((round % 2)) -eq 0 ] && order="postgres sqlite"
  for engine in $order; do
    measure "$engine"
    read -r total p99 errors <"$work/last"
    rps[$engine,$round]=$total
    printf 'round %d  %-8s %8s req/s  p99 %7s ms  failed %s\n' "$round" "$engine" "$total" "$p99" "$errors"
  done
done

echo
declare -A med
for engine in sqlite postgres; do
  med[$engine]=$(for r in $(seq "$rounds"); do echo "${rps[$engine,$r]}"; done | median)
  printf 'median  %-8s %8s req/s\n' "$engine" "${med[$engine]}"
done
per=()
for r in $(seq "$rounds"); do per+=("$(echo "${rps[postgres,$r]} / ${rps[sqlite,$r]}" | bc -l)"); done
printf 'PostgreSQL / SQLite: ratio of medians %.3f, median of per-round ratios %.3f (rounds: %s)\n' \
  "$(echo "${med[postgres]} / ${med[sqlite]}" | bc -l)" "$(printf '%s\n' "${per[@]}" | median)" \
  "$(printf '%.2f ' "${per[@]}")"
