#!/usr/bin/env bash
# Benchmarks blitz against nginx `return 200` on the same machine, in the same run.
#
#   tests/bench/run.sh [duration] [rounds]
#
# Starts nginx (2 worker processes, `return 200`) and blitz (2 workers), runs
# `wrk -t2 -c50 -d<duration>` against each, alternating, for <rounds> rounds, and
# prints the median req/s, the median p99 and the ratio blitz/nginx for: /healthz
# (keep-alive and `Connection: close`) and an authenticated GET /api/bot/status of a
# running paper bot (bearer token). Needs wrk and nginx (apt-get install wrk
# nginx-light).
set -euo pipefail

duration=${1:-10s}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) $blitz_pid 2>/dev/null || true; rm -rf "$work"' EXIT

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
"$root/target/release/blitz" serve --workers 2 --bind "127.0.0.1:$blitz_port" \
  --database "$work/db/database.db" --error-logfile "$work/blitz.log" &
blitz_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$blitz_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

# A user with a running paper bot, authenticated by an API token.
cli() { "$root/target/release/blitz" "$@" --database "$work/db/database.db"; }
cli user create --email bench@example.com </dev/null >/dev/null 2>&1
token=$(cli token create --email bench@example.com)
curl -fs -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$blitz_port/api/bot/start" >/dev/null

# Prints "req_per_sec p99_ms" for one wrk run.
measure() {
  local url=$1; shift
  wrk -t2 -c50 -d"$duration" --latency "$@" "$url" | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
               else if (v ~ /ms$/) { sub(/ms/, "", v) }
               else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
               p99 = v }
    /Non-2xx|Socket errors/ { print "warning: " $0 > "/dev/stderr" }
    END { printf "%s %s\n", rps, p99 }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

run_case() {
  local label=$1 path=$2; shift 2
  local n_rps=() n_p99=() b_rps=() b_p99=()
  for _ in $(seq "$rounds"); do
    read -r r p < <(measure "http://127.0.0.1:$nginx_port$path" "$@"); n_rps+=("$r"); n_p99+=("$p")
    read -r r p < <(measure "http://127.0.0.1:$blitz_port$path" "$@"); b_rps+=("$r"); b_p99+=("$p")
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
