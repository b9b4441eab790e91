#!/usr/bin/env bash
# Failover as clients see it (issue: client-seen failover): vaned with a
# failover record, a real Unbound (Debian `unbound`) in front of it, and a
# client asking through Unbound every 100 ms. For each TTL (TTLS, default
# "60 30 5"):
#   unplanned: the client's resolver has just cached the primary; the
#     primary's health endpoint dies; seconds until the client gets the
#     standby (checks every 1 s, fall 2);
#   planned: a drill scheduled TTL + 10 s ahead with --lower-ttl 2 (the
#     resolver cached the record's full TTL before it was scheduled);
#     seconds from the drill's start until the client gets the standby, and
#     from its end until it gets the primary back.
#
#   bench/client_failover.sh             # about 5 minutes
#   TTLS="30" bench/client_failover.sh
#
# Only 127.0.0.1 is used. Everything started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages "${BUILD_PACKAGES[@]}" unbound knot-dnsutils python3

TTLS=${TTLS:-"60 30 5"}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target vaned vanectl >/dev/null
VANED=$PWD/build-bench/server/vaned
VANECTL=$PWD/build-bench/admin/vanectl

work=$(mktemp -d /tmp/vane-client-failover.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / 1000 }'; }

dns_port=$(free_port)
health_port=$(free_port)
resolver_port=$(free_port)
mkdir -p "$work/www"
echo ok >"$work/www/health"

start_health() {
  python3 -m http.server "$health_port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
  health_pid=$!
  pids+=("$health_pid")
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$health_port/health" >/dev/null 2>&1 && return; sleep 0.1; done
}

start_vaned() {  # TTL
  cat >"$work/example.com.zone" <<EOF
\$ORIGIN example.com.
@ 300 IN SOA ns hostmaster 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A 192.0.2.1
EOF
  cat >"$work/vane.yaml" <<EOF
listen: ["127.0.0.1:$dns_port"]
threads: 1
state_dir: $work/state-$1
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, body_contains: ok, interval: 1s, timeout: 500ms, fall: 2, rise: 2 }
records:
  - name: app.example.com
    type: A
    policy: failover
    ttl: $1
    endpoints:
      - { name: primary, address: 192.0.2.20, priority: 1, host: 127.0.0.1, port: $health_port, check: web }
      - { name: standby, address: 198.51.100.20, priority: 2 }
EOF
  "$VANED" --config "$work/vane.yaml" >"$work/vaned-$1.log" 2>&1 &
  vaned_pid=$!
  pids+=("$vaned_pid")
  for _ in $(seq 50); do [ -S "$work/state-$1/admin.sock" ] && return; sleep 0.1; done
}

start_unbound() {
  cat >"$work/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: $resolver_port
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  prefetch: no
  serve-expired: no
  cache-min-ttl: 0
  domain-insecure: "example.com"
remote-control:
  control-enable: no
stub-zone:
  name: "example.com"
  stub-addr: 127.0.0.1@$dns_port
EOF
  /usr/sbin/unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 &
  unbound_pid=$!
  pids+=("$unbound_pid")
  sleep 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
answer() { kdig +short +timeout=1 @127.0.0.1 -p "$resolver_port" app.example.com A 2>/dev/null | head -1; }
# Milliseconds (wall clock) when the client first sees $1, polling every 100 ms.
seen_at() {
  while true; do
    [ "$(answer)" = "$1" ] && { now_ms; return; }
    sleep 0.1
  done
}

printf '%-5s %-22s %s\n' "TTL" "case" "seconds"
for ttl in $TTLS; do
  # Unplanned: the resolver caches the primary, then the endpoint dies.
  start_health
  start_vaned "$ttl"
  start_unbound
  until [ "$(answer)" = 192.0.2.20 ]; do sleep 0.2; done
  stop "$unbound_pid"; start_unbound            # an empty cache...
  answer >/dev/null                             # ...that has just cached the primary, full TTL
  died=$(now_ms)
  stop "$health_pid"
  moved=$(seen_at 198.51.100.20)
  printf '%-5s %-22s %s\n' "$ttl" "unplanned" "$(secs "$moved" "$died")"
  start_health
  until "$VANECTL" -s "$work/state-$ttl/admin.sock" status --json |
    python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["records"][0]["endpoints"][0]["health"] != "up")'; do
    sleep 0.2
  done
  until [ "$(answer)" = 192.0.2.20 ]; do sleep 0.2; done

  # Planned: the resolver holds a full-TTL copy, then the drill is scheduled.
  stop "$unbound_pid"; start_unbound
  answer >/dev/null
  lead=$((ttl + 10))
  drill=$("$VANECTL" -s "$work/state-$ttl/admin.sock" drill app.example.com primary --at "+${lead}s" --for 20s \
    --lower-ttl 2 --reason bench --json)
  start=$(echo "$drill" | python3 -c 'import json,sys; print(json.load(sys.stdin)["start_ms"])')
  end=$(echo "$drill" | python3 -c 'import json,sys; print(json.load(sys.stdin)["end_ms"])')
  moved=$(seen_at 198.51.100.20)
  back=$(seen_at 192.0.2.20)
  printf '%-5s %-22s %s\n' "$ttl" "planned: at start" "$(secs "$moved" "$start")"
  printf '%-5s %-22s %s\n' "$ttl" "planned: back at end" "$(secs "$back" "$end")"
  stop "$unbound_pid"; stop "$vaned_pid"; stop "$health_pid"
done
