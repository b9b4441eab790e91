#!/usr/bin/env bash
# Many steered records (issue: performance, item 5): one zone with N records
# of 2 endpoints each, without and with health checks (TCP every 10 s).
# For each N: seconds until "ready:", RSS once ready, bytes per endpoint
# beyond a vaned with no records, /metrics size and scrape time, and the
# CPU vaned uses while idle (nothing queried) over 5 s; then RSS again
# SETTLE seconds later (default 40: by then every checked endpoint has
# failed twice and gone down, each verdict journaled), per endpoint beyond
# no records and beyond a vaned serving the same names as static A records.
# Then, for each N, the CPU an idle vaned uses over 10 s with N failover
# records of `failback: manual`, again with a drill scheduled an hour
# ahead (both once cost a third of a core or more at 100 000: RESULTS.md),
# and again with a second drill whose lowered TTL is in force.
#
#   bench/many_records.sh                 # N = 20000 and 100000
#   COUNTS="1000 20000" bench/many_records.sh
#   IDLE_ONLY=1 bench/many_records.sh    # the failback and drill idle CPU alone
#
# Only 127.0.0.1 is used (the checks probe 127.0.0.1:9, closed); every
# vaned started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages "${BUILD_PACKAGES[@]}" curl bc

COUNTS=${COUNTS:-"20000 100000"}
HZ=$(getconf CLK_TCK)
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc --all)" --target vaned vanectl >/dev/null
VANED=$PWD/build-bench/server/vaned
VANECTL=$PWD/build-bench/admin/vanectl

WORK=$(mktemp -d /tmp/vane-many-XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
printf '$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\n' \
  >"$WORK/example.com.zone"

SETTLE=${SETTLE:-40}

config() {  # N CHECKED [ZONE FILE]
  local n=$1 checked=$2 chk=""
  printf 'listen: ["127.0.0.1:0"]\nthreads: 1\nhttp: { listen: "127.0.0.1:0" }\n'
  printf 'zones: [{ name: example.com, file: %s }]\n' "${3:-example.com.zone}"
  if [ "$checked" = 1 ]; then
    printf 'checks:\n  web: { type: tcp, interval: 10s, timeout: 1s, fall: 2, rise: 2 }\n'
    chk=", host: 127.0.0.1, port: 9, check: web"
  fi
  [ "$n" -gt 0 ] && echo "records:"
  awk -v n="$n" -v chk="$chk" 'BEGIN { for (i = 0; i < n; i++)
    printf "  - { name: r%d.example.com, type: A, policy: weighted, endpoints: [{ name: a, address: 192.0.2.%d, weight: 1%s }, { name: b, address: 198.51.100.%d, weight: 1%s }] }\n", i, i % 250 + 1, chk, i % 250 + 1, chk }'
}

idle_pct() {  # idle_pct SECONDS: vaned's CPU over that long, in % of a core
  local c0 c1
  c0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  sleep "$1"
  c1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  awk -v t="$((c1 - c0))" -v hz="$HZ" -v s="$1" 'BEGIN { printf "%.1f", t * 100 / hz / s }'
}
start_vaned() {  # vaned on $WORK/vane.yaml, a clean state dir; returns once it is ready
  rm -rf "$WORK/state"
  "$VANED" --config "$WORK/vane.yaml" >"$WORK/vaned.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 1200); do grep -q "ready:" "$WORK/vaned.log" && break; sleep 0.05; done
}

measure() {  # N CHECKED [ZONE FILE] -> "ready_s rss_kb metrics_bytes scrape_s idle_cpu_pct settled_rss_kb"
  config "$1" "$2" "${3:-}" >"$WORK/vane.yaml"
  local t0 t1 port
  t0=$(date +%s.%N)
  start_vaned
  t1=$(date +%s.%N)
  sleep 3
  port=$(grep -o 'http on [^ ]*' "$WORK/vaned.log" | grep -o '[0-9]*$')
  local s0 s1 bytes idle rss
  s0=$(date +%s.%N)
  bytes=$(curl -s "127.0.0.1:$port/metrics" | wc -c)
  s1=$(date +%s.%N)
  idle=$(idle_pct 5)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  local settled=$rss
  if [ "${4:-1}" = 1 ]; then
    sleep "$SETTLE"
    settled=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  fi
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  echo "$(echo "$t1 - $t0" | bc) $rss $bytes $(echo "$s1 - $s0" | bc) $idle $settled"
}

if [ "${IDLE_ONLY:-0}" != 1 ]; then
  read -r _ base_rss _ _ _ _ < <(measure 0 0 "" 0)
  echo "vaned with no records: RSS $base_rss kB"
  declare -A static_rss
  for n in $COUNTS; do  # the same names and addresses, as zone data
    { cat "$WORK/example.com.zone"
      awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "r%d IN A 192.0.2.%d\nr%d IN A 198.51.100.%d\n", i, i % 250 + 1, i, i % 250 + 1 }'
    } >"$WORK/static.zone"
    read -r _ static_rss[$n] _ _ _ _ < <(measure 0 0 static.zone 0)
    echo "vaned with the $n names as static A records: RSS ${static_rss[$n]} kB"
  done
  echo
  echo "| records (2 endpoints each) | checks | ready | RSS | per endpoint beyond no records | ${SETTLE} s later: RSS | beyond no records | beyond static data | /metrics | scrape | idle CPU |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in $COUNTS; do
    for checked in 0 1; do
      read -r ready rss bytes scrape idle settled < <(measure "$n" "$checked")
      per=$(( (rss - base_rss) * 1024 / (2 * n) ))
      per_settled=$(( (settled - base_rss) * 1024 / (2 * n) ))
      per_static=$(( (settled - static_rss[$n]) * 1024 / (2 * n) ))
      printf '| %d | %s | %.2f s | %d MB | %d B | %d MB | %d B | %d B | %d KB | %.3f s | %s %% |\n' "$n" \
        "$([ "$checked" = 1 ] && echo "TCP, 10 s" || echo none)" "$ready" $((rss / 1024)) "$per" $((settled / 1024)) \
        "$per_settled" "$per_static" $((bytes / 1024)) "$scrape" "$idle"
    done
  done
fi

echo
echo "| failover records (failback: manual) | idle CPU | with a drill scheduled 1 h ahead | and one lowering a TTL now |"
echo "|---:|---:|---:|---:|"
for n in $COUNTS; do
  { printf 'listen: ["127.0.0.1:0"]\nthreads: 1\nstate_dir: %s/state\n' "$WORK"
    printf 'zones: [{ name: example.com, file: example.com.zone }]\nrecords:\n'
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
      printf "  - { name: r%d.example.com, type: A, policy: failover, failback: manual, endpoints: [{ name: a, address: 192.0.2.%d, priority: 1 }, { name: b, address: 198.51.100.%d, priority: 2 }] }\n", i, i % 250 + 1, i % 250 + 1 }'
  } >"$WORK/vane.yaml"
  start_vaned
  sleep 2
  quiet=$(idle_pct 10)
  "$VANECTL" -s "$WORK/state/admin.sock" drill r5.example.com a --at "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
    --for 5m --lower-ttl 5 >/dev/null
  sleep 1
  drill=$(idle_pct 10)
  # Starts in 40 s: its TTL (60) is lowered from now until it ends.
  "$VANECTL" -s "$WORK/state/admin.sock" drill r7.example.com a --at +40s --for 5m --lower-ttl 5 >/dev/null
  sleep 1
  lowered=$(idle_pct 10)
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  printf '| %d | %s %% | %s %% | %s %% |\n' "$n" "$quiet" "$drill" "$lowered"
done
