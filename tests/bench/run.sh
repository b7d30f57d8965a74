#!/usr/bin/env bash
# Benchmarks blitz against nginx `return 200` on the same machine, in the same run.
#
#   tests/bench/run.sh [duration] [rounds]
#
# 1. nginx (2 worker processes, `return 200`) and blitz (2 workers): `wrk -t2 -c50`
#    against each, alternating, <rounds> rounds of <duration>; the median req/s and
#    p99 of each and the ratio blitz/nginx for /healthz (keep-alive and
#    `Connection: close`), /api/status, an authenticated GET /api/bot/status of a
#    running paper bot (bearer token) and /metrics.
# 2. /api/status with the access log on (blitz against blitz).
# 3. What a rate limit adds: one request at a time (`wrk -t1 -c1`), exempt admin vs
#    limited user, on the local backend and, with redis-server, on a private Redis.
# 4. Idle RSS (and PSS) of every process of a fresh instance.
# 5. `blitz loadtest` with 5,000 users at 50 connections.
# 6. 5,000 running paper bots: the runner's CPU and RSS (tests/bots_scale.rs).
#
# Needs wrk and nginx (apt-get install wrk nginx-light; redis-server for the Redis
# rows). Rate limits are raised for the run so that every request is admitted (and
# still passes through the limiter).
set -euo pipefail

duration=${1:-10s}
rounds=${2:-3}
secs=${duration%s}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/blitz
work=$(mktemp -d)
pids=()
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install wrk nginx-light" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nginx_port=$(free_port)

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

export RATE_LIMITS_START=100000/second RATE_LIMITS_STOP=100000/second
export RATE_LIMITS_RECOVER=100000/second RATE_LIMITS_STATUS=100000/second
export RATE_LIMITS_GLOBAL=100000/second ENABLE_METRICS=true

# start_blitz NAME [serve args...]: starts blitz in $work/NAME on a free port,
# waits for /readyz; sets port_NAME.
start_blitz() {
  local name=$1; shift
  local port; port=$(free_port)
  mkdir -p "$work/$name"
  "$bin" serve --workers 2 --bind "127.0.0.1:$port" --database "$work/$name/database.db" \
    --error-logfile "$work/$name/blitz.log" "$@" >/dev/null 2>&1 &
  pids+=($!)
  printf -v "pid_$name" '%s' "$!"
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  printf -v "port_$name" '%s' "$port"
}

# make_token NAME EMAIL [--admin]: a user and an API token in instance NAME.
make_token() {
  local db=$work/$1/database.db email=$2; shift 2
  "$bin" user create --email "$email" "$@" --database "$db" </dev/null >/dev/null 2>&1
  "$bin" token create --email "$email" --database "$db"
}

start_blitz main
token=$(make_token main bench@example.com)
admin_token=$(make_token main boss@example.com --admin)
curl -fs -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$port_main/api/bot/start" >/dev/null

# Prints "req_per_sec p99_ms p50_ms" for one wrk run (THREADS/CONNS override).
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

# compare LABEL URL_A URL_B NAME_A NAME_B [wrk args]: alternating rounds, medians, B/A.
compare() {
  local label=$1 ua=$2 ub=$3 na=$4 nb=$5; shift 5
  local a_rps=() a_p99=() b_rps=() b_p99=() r p
  for _ in $(seq "$rounds"); do
    read -r r p _ < <(measure "$ua" "$@"); a_rps+=("$r"); a_p99+=("$p")
    read -r r p _ < <(measure "$ub" "$@"); b_rps+=("$r"); b_p99+=("$p")
  done
  local ar ap br bp
  ar=$(printf '%s\n' "${a_rps[@]}" | median); ap=$(printf '%s\n' "${a_p99[@]}" | median)
  br=$(printf '%s\n' "${b_rps[@]}" | median); bp=$(printf '%s\n' "${b_p99[@]}" | median)
  printf '%-30s %-6s %9.0f req/s p99 %6.2f ms | %-6s %9.0f req/s p99 %6.2f ms | ratio %.2f\n' \
    "$label" "$na" "$ar" "$ap" "$nb" "$br" "$bp" "$(echo "$br / $ar" | bc -l)"
}

nginx_url=http://127.0.0.1:$nginx_port
main_url=http://127.0.0.1:$port_main
auth=(-H "Authorization: Bearer $token")
echo "== 1. blitz against nginx return 200: wrk -t2 -c50 -d$duration, median of $rounds alternating rounds, $(nproc) cores"
compare "/healthz keep-alive" "$nginx_url/healthz" "$main_url/healthz" nginx blitz
compare "/healthz Connection: close" "$nginx_url/healthz" "$main_url/healthz" nginx blitz -H "Connection: close"
compare "/api/status" "$nginx_url/api/status" "$main_url/api/status" nginx blitz
compare "GET /api/bot/status (auth)" "$nginx_url/api/bot/status" "$main_url/api/bot/status" nginx blitz "${auth[@]}"
compare "/metrics" "$nginx_url/metrics" "$main_url/metrics" nginx blitz

echo
echo "== 2. access log cost: /api/status, access log off vs on (to a file)"
start_blitz logged --access-logfile "$work/logged/access.log"
compare "/api/status, log off / on" "$main_url/api/status" "http://127.0.0.1:$port_logged/api/status" off on

echo
echo "== 3. rate-limited request latency: wrk -t1 -c1 -d$duration, median p50 of $rounds rounds"
latency() { # LABEL URL TOKEN
  local p50s=() p
  for _ in $(seq "$rounds"); do
    read -r _ _ p < <(THREADS=1 CONNS=1 measure "$2/api/bot/status" -H "Authorization: Bearer $3")
    p50s+=("$p")
  done
  printf '%-44s p50 %6.3f ms   (rounds: %s)\n' "$1" "$(printf '%s\n' "${p50s[@]}" | median)" "${p50s[*]}"
}
latency "admin (exempt, no limiter)" "$main_url" "$admin_token"
latency "user (local shared-memory limiter)" "$main_url" "$token"
if command -v redis-server >/dev/null; then
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  REDIS_URL="redis://127.0.0.1:$redis_port/0" start_blitz redis
  latency "admin (exempt), Redis instance" "http://127.0.0.1:$port_redis" "$(make_token redis boss@example.com --admin)"
  latency "user (Redis limiter)" "http://127.0.0.1:$port_redis" "$(make_token redis bench@example.com)"
else
  echo "redis-server not installed: no Redis rows"
fi

echo
echo "== 4. idle memory of a fresh instance (master, 2 workers, bot runner, mailer)"
start_blitz idle
curl -fs "http://127.0.0.1:$port_idle/api/status" >/dev/null
sleep 2
total=0; core=0
for pid in "$pid_idle" $(pgrep -P "$pid_idle"); do
  title=$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-24)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
  printf '   %-24s RSS %6d kB  PSS %6d kB\n' "$title" "$rss" "$pss"
  total=$((total + rss))
  case "$title" in *mailer*) ;; *) core=$((core + rss)) ;; esac
done
printf '   master + 2 workers + bot runner: RSS %.1f MB (with the mailer %.1f MB)\n' \
  "$(echo "$core / 1024" | bc -l)" "$(echo "$total / 1024" | bc -l)"

echo
echo "== 5. blitz loadtest, 5,000 users, 50 keep-alive connections, ${secs}s"
start_blitz load
"$bin" loadtest --url "http://127.0.0.1:$port_load" --users 5000 --connections 50 \
  --duration "$secs" --database "$work/load/database.db" || true

echo
echo "== 6. 5,000 running paper bots (tests/bots_scale.rs)"
(cd "$root" && cargo test --release --quiet --test bots_scale -- --ignored --nocapture 2>&1 |
  grep -E "ready|runner|core|RSS" | sed 's/^/   /') || echo "   bots_scale failed"
