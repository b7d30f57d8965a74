#!/usr/bin/env bash
# Benchmarks blitz against nginx `return 200` on the same machine, in the same run.
#
#   tests/bench/run.sh [duration] [rounds]
#
# Starts nginx (2 worker processes, `return 200`) and blitz (2 workers), runs
# `wrk -t2 -c50 -d<duration>` against each, alternating, for <rounds> rounds, and
# prints the median req/s, the median p99 and the ratio blitz/nginx for: /healthz
# (keep-alive and `Connection: close`) and an authenticated GET /api/bot/status of a
# running paper bot (bearer token). Then, blitz against itself, one connection at a
# time: the added latency of a rate-limited request (a user's status against an
# exempt admin's), on the local backend and, when redis-server is installed, on a
# private Redis. Needs wrk and nginx (apt-get install wrk nginx-light; redis-server
# for the Redis row).
set -euo pipefail

duration=${1:-10s}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
blitz_pid= redis_blitz_pid= redis_pid=
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) $blitz_pid $redis_blitz_pid $redis_pid 2>/dev/null || true; rm -rf "$work"' EXIT

for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install wrk nginx-light" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nginx_port=$(free_port)
blitz_port=$(free_port)

cat >"$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { default_type application/json; return 200 '{"status":"ok"}'; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"

cargo build --release --quiet --manifest-path "$root/Cargo.toml"

# Limits far above what wrk sends, so every request passes through the limiter.
export RATE_LIMITS_STATUS=100000/second RATE_LIMITS_GLOBAL=100000/second

# start_blitz PORT DIR [REDIS_URL]: starts blitz, waits for /readyz, prints its pid.
start_blitz() {
  local port=$1 dir=$2 redis=${3:-}
  REDIS_URL=$redis "$root/target/release/blitz" serve --workers 2 --bind "127.0.0.1:$port" \
    --database "$dir/database.db" --error-logfile "$dir/blitz.log" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$pid"
}
mkdir -p "$work/db"
blitz_pid=$(start_blitz "$blitz_port" "$work/db")

# A user with a running paper bot and an admin, authenticated by API tokens.
make_token() { # DIR EMAIL [--admin]
  local db=$1/database.db email=$2; shift 2
  "$root/target/release/blitz" user create --email "$email" "$@" --database "$db" </dev/null >/dev/null 2>&1
  "$root/target/release/blitz" token create --email "$email" --database "$db"
}
token=$(make_token "$work/db" bench@example.com)
admin_token=$(make_token "$work/db" boss@example.com --admin)
curl -fs -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$blitz_port/api/bot/start" >/dev/null

# Prints "req_per_sec p99_ms p50_ms" for one wrk run (CONNS=50 connections).
measure() {
  local url=$1; shift
  wrk -t"${THREADS:-2}" -c"${CONNS:-50}" -d"$duration" --latency "$@" "$url" | awk '
    function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 }
                     if (v ~ /ms$/) { sub(/ms/, "", v); return v }
                     if (v ~ /s$/) { sub(/s/, "", v); return v * 1000 } return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx|Socket errors/ { print "warning: " $0 > "/dev/stderr" }
    END { printf "%s %s %s\n", rps, p99, p50 }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

run_case() {
  local label=$1 path=$2; shift 2
  local n_rps=() n_p99=() b_rps=() b_p99=()
  for _ in $(seq "$rounds"); do
    read -r r p _ < <(measure "http://127.0.0.1:$nginx_port$path" "$@"); n_rps+=("$r"); n_p99+=("$p")
    read -r r p _ < <(measure "http://127.0.0.1:$blitz_port$path" "$@"); b_rps+=("$r"); b_p99+=("$p")
  done
  local nr np br bp
  nr=$(printf '%s\n' "${n_rps[@]}" | median); np=$(printf '%s\n' "${n_p99[@]}" | median)
  br=$(printf '%s\n' "${b_rps[@]}" | median); bp=$(printf '%s\n' "${b_p99[@]}" | median)
  printf '%-28s nginx %9.0f req/s p99 %7.2f ms | blitz %9.0f req/s p99 %7.2f ms | ratio %.2f\n' \
    "$label" "$nr" "$np" "$br" "$bp" "$(echo "$br / $nr" | bc -l)"
  echo "    rounds nginx: ${n_rps[*]}  blitz: ${b_rps[*]}"
}

echo "wrk -t2 -c50 -d$duration, median of $rounds alternating rounds, $(nproc) cores"
run_case "/healthz keep-alive" /healthz
run_case "/healthz Connection: close" /healthz -H "Connection: close"
run_case "GET /api/bot/status (auth)" /api/bot/status -H "Authorization: Bearer $token"

# The limiter's cost: one connection, one request at a time, so p50 is the latency
# of a single request. Exempt admin vs limited user, on each backend.
latency_case() { # LABEL PORT TOKEN
  local label=$1 port=$2 tok=$3 p50s=()
  for _ in $(seq "$rounds"); do
    read -r _ _ p50 < <(THREADS=1 CONNS=1 measure "http://127.0.0.1:$port/api/bot/status" \
      -H "Authorization: Bearer $tok")
    p50s+=("$p50")
  done
  printf '%-44s p50 %6.3f ms   (rounds: %s)\n' "$label" "$(printf '%s\n' "${p50s[@]}" | median)" "${p50s[*]}"
}

echo
echo "Rate-limited request latency, wrk -t1 -c1 -d$duration, median of $rounds rounds"
latency_case "status, admin (exempt, no limiter)" "$blitz_port" "$admin_token"
latency_case "status, user (local shared-memory limiter)" "$blitz_port" "$token"
if command -v redis-server >/dev/null; then
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis_blitz_port=$(free_port)
  mkdir -p "$work/db-redis"
  redis_blitz_pid=$(start_blitz "$redis_blitz_port" "$work/db-redis" "redis://127.0.0.1:$redis_port/0")
  redis_token=$(make_token "$work/db-redis" bench@example.com)
  redis_admin=$(make_token "$work/db-redis" boss@example.com --admin)
  latency_case "status, admin (exempt), Redis instance" "$redis_blitz_port" "$redis_admin"
  latency_case "status, user (Redis limiter)" "$redis_blitz_port" "$redis_token"
else
  echo "redis-server not installed: no Redis row"
fi
