#!/usr/bin/env bash
# Health latency and worker memory while slow and never-finishing clients attack.
#
#   tests/bench/attack.sh [seconds] [slow clients] [body clients]
#
# Starts the release binary (2 workers, default settings) and measures /healthz with
# `wrk -t1 -c10 --latency` for <seconds> (default 10) in three phases:
#   baseline   nothing else happens
#   slow       <slow clients> (default 2500) connections each send a partial request
#              head, then one more byte every 5 s (tests/bench/attack.py slow)
#   body       <body clients> (default 1500) connections each send a head with
#              Content-Length: 1048576 and all of the body but its last KB, and
#              hold it unfinished (tests/bench/attack.py body)
# and prints a markdown table: requests answered, req/s, p50/p99/max latency, non-2xx
# and socket errors of wrk; one `curl /healthz` on a fresh connection at the end of
# the phase (status and time, 5 s at most); the largest worker RSS seen during the
# phase (VmRSS of the master's children titled `worker`); and the attacker's
# connections open and closed by the server.
# Targets: p99 under 50 ms during the slow attack, worker RSS under 150 MB during the
# body attack. A phase is cut short if a worker passes 4 GB.
# Needs wrk (apt-get install wrk) and python3.
set -euo pipefail

secs=${1:-10}
slow_n=${2:-2500}
body_n=${3:-1500}
rss_abort_kb=$((4 * 1024 * 1024))
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/blitz
work=$(mktemp -d)
attacker=
sampler=

cleanup() {
  set +e
  [ -n "$attacker" ] && kill "$attacker" 2>/dev/null
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  if [ -s "$work/blitz.pid" ]; then
    local master children
    master=$(cat "$work/blitz.pid")
    children=$(ps -o pid= --ppid "$master" 2>/dev/null || true)
    kill -TERM "$master" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL "$master" $children 2>/dev/null
  fi
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk)" >&2; exit 1; }
done
# Attackers, the workers' connections and wrk all need descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$(( (slow_n > body_n ? slow_n : body_n) + 256 ))
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need" ] ||
  { echo "open-files limit $(ulimit -n) < $need: raise ulimit -Hn" >&2; exit 1; }

cargo build --release --quiet --manifest-path "$root/Cargo.toml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
(cd "$work" && "$bin" serve --bind "127.0.0.1:$port" --workers 2 --pid blitz.pid \
   --database "$work/database.db" --error-logfile error.log >/dev/null 2>&1 &)
for _ in $(seq 200); do
  curl -fs "127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "127.0.0.1:$port/readyz" >/dev/null || { echo "blitz did not start" >&2; exit 1; }

workers() {
  local pid
  for pid in $(ps -o pid= --ppid "$(cat "$work/blitz.pid")"); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q worker && echo "$pid"
  done
}

# Writes the largest worker VmRSS (kB) seen so far to $work/rss every 0.2 s; kills
# the attacker (its pid is in a file: this runs in a subshell started before it) if
# a worker passes the abort threshold.
sample_rss() {
  local max=0 pid kb
  while :; do
    for pid in $(workers); do
      kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ "${kb:-0}" -gt "$max" ] && max=$kb
      if [ "${kb:-0}" -gt "$rss_abort_kb" ]; then
        echo "worker $pid RSS ${kb} kB > 4 GB: stopping the attack" >&2
        kill "$(cat "$work/attacker.pid" 2>/dev/null)" 2>/dev/null
      fi
    done
    echo "$max" >"$work/rss"
    sleep 0.2
  done
}

# start_attack MODE N: the attack driver in the background, until it says ready
# (every connection open and its bytes sent) or 120 s pass.
start_attack() {
  python3 "$root/tests/bench/attack.py" "$1" 127.0.0.1 "$port" "$2" >"$work/attack.log" 2>&1 &
  attacker=$!
  echo "$attacker" >"$work/attacker.pid"
  for _ in $(seq 1200); do
    grep -q '^ready' "$work/attack.log" && return 0
    kill -0 "$attacker" 2>/dev/null || { cat "$work/attack.log" >&2; return 1; }
    sleep 0.1
  done
  echo "  ($1 attack not ready after 120 s; measuring anyway)" >&2
}

stop_attack() {
  kill "$attacker" 2>/dev/null || true
  wait "$attacker" 2>/dev/null || true
  attacker=
  rm -f "$work/attacker.pid"
  sleep 2   # the server notices the closed connections
}

# phase NAME [MODE N]: one row of the table.
phase() {
  local name=$1 mode=${2:-} n=${3:-0} conns="-" probe
  echo 0 >"$work/rss"
  sample_rss & sampler=$!
  if [ -n "$mode" ]; then start_attack "$mode" "$n"; fi
  wrk -t1 -c10 -d"${secs}s" --latency "http://127.0.0.1:$port/healthz" >"$work/wrk.txt" 2>&1 || true
  # One fresh connection, as a load balancer's health check makes.
  probe=$(curl -s -o /dev/null -m 5 -w '%{http_code} in %{time_total}s' "http://127.0.0.1:$port/healthz" || true)
  if [ -n "$mode" ]; then
    conns=$(grep '^open=' "$work/attack.log" | tail -1 | sed 's/ sent_mb=.*//; s/open=//; s/closed_by_server=/closed by server /')
    stop_attack
  fi
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; sampler=
  cp "$work/wrk.txt" "$work/wrk-$name.txt"
  awk -v name="$name" -v rss="$(cat "$work/rss")" -v conns="$conns" -v probe="$probe" '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2}
    /^ +99%/ {p99=$2}
    /Latency/ && !lat {max=$4; lat=1}
    /Socket errors/ {sock=$0; sub(/.*Socket errors: /, "", sock)}
    /Non-2xx/ {non2xx=$NF}
    / requests in / {reqs=$1}
    END {printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s |\n",
         name, reqs ? reqs : 0, rps, p50 ? p50 : "-", p99 ? p99 : "-", max ? max : "-",
         non2xx ? non2xx : 0, sock ? sock : "none", probe, rss / 1024, conns}' "$work/wrk.txt"
}

echo "$("$bin" --version 2>/dev/null | head -1), 2 workers, $(nproc) cores; wrk -t1 -c10 -d${secs}s /healthz"
echo
echo "| phase | requests | req/s | p50 | p99 | max | non-2xx | socket errors | curl /healthz | worker RSS max (MB) | attack: open, closed by server |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
phase baseline
phase "slow ($slow_n)" slow "$slow_n"
phase "body ($body_n × 1 MB)" body "$body_n"
