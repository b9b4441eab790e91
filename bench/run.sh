#!/usr/bin/env bash
# vane vs Knot DNS vs NSD vs gdnsd on the same zone, same machine.
# Each server is pinned to core 0 with one worker; dnsperf runs on core 1.
# Prints qps and server CPU µs per answered query (utime+stime from /proc,
# all threads and child processes of the server, over the run), the ratio
# vane/Knot, TCP qps, and time-to-ready + memory (PSS) for a 1M-record zone.
#
#   bench/run.sh                 # everything (about 4 minutes)
#   DURATION=5 BIG=0 bench/run.sh  # quick: short runs, skip the 1M-record zone
#
# Only 127.0.0.1 is used. Every server started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}" knot-dnsutils

DURATION=${DURATION:-10}
BIG=${BIG:-1}
BIG_RECORDS=${BIG_RECORDS:-1000000}
SERVERS=${SERVERS:-"vane knot nsd gdnsd"}
PORT=${PORT:-53530}
HZ=$(getconf CLK_TCK)
# This script, dnsperf and every poll run on core 1; servers are started on core 0.
taskset -cp 1 $$ >/dev/null

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target vaned >/dev/null
VANED=$PWD/build-bench/server/vaned

WORK=$(mktemp -d /tmp/vane-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- zones
gen_zone() {  # gen_zone ORIGIN N FILE
  awk -v origin="$1" -v n="$2" 'BEGIN {
    print "$ORIGIN " origin "."; print "$TTL 3600"
    print "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300"
    print "@ IN NS ns1"; print "@ IN NS ns2"
    print "ns1 IN A 192.0.2.1"; print "ns2 IN A 192.0.2.2"
    for (i = 0; i < n; i++) printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
  }' > "$3"
}
gen_queries() {  # 90% existing names, 10% NXDOMAIN, a few NS/SOA
  awk -v origin="$1" -v n="$2" 'BEGIN {
    srand(7)
    for (i = 0; i < 100000; i++) {
      r = rand()
      if (r < 0.9) printf "h%d.%s A\n", int(rand() * n), origin
      else if (r < 0.99) printf "nx%d.%s A\n", i, origin
      else printf "%s NS\n", origin
    }
  }' > "$3"
}

mkdir -p "$WORK/zones"
gen_zone bench.test 10000 "$WORK/zones/bench.test"
gen_queries bench.test 10000 "$WORK/queries.txt"

# ---------------------------------------------------------------- servers
# start_SERVER ZONEFILE ORIGIN: starts pinned to core 0, sets SERVER_PID.
start_vane() {  # optional $3: more YAML (records:)
  cat > "$WORK/vane.yaml" <<EOC
listen: ["127.0.0.1:$PORT"]
threads: 1
state_dir: $WORK/vane-state
zones: [{ name: $2, file: $1 }]
${3:-}
EOC
  taskset -c 0 "$VANED" --config "$WORK/vane.yaml" 2>"$WORK/vane.log" &
  SERVER_PID=$!
}
start_knot() {
  mkdir -p "$WORK/knot"
  cat > "$WORK/knot/knot.conf" <<EOC
server:
  rundir: "$WORK/knot"
  listen: 127.0.0.1@$PORT
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: "$WORK/knot"
template:
  - id: default
    storage: "$WORK/knot"
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $2
    file: "$1"
EOC
  taskset -c 0 knotd -c "$WORK/knot/knot.conf" 2>"$WORK/knot.log" &
  SERVER_PID=$!
}
start_nsd() {
  mkdir -p "$WORK/nsd"
  cat > "$WORK/nsd/nsd.conf" <<EOC
server:
  ip-address: 127.0.0.1@$PORT
  server-count: 1
  username: ""
  database: ""
  zonesdir: "$WORK/nsd"
  pidfile: "$WORK/nsd/nsd.pid"
  xfrdfile: "$WORK/nsd/xfrd.state"
  zonelistfile: "$WORK/nsd/zone.list"
  xfrdir: "$WORK/nsd"
  logfile: "$WORK/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $2
  zonefile: "$1"
EOC
  taskset -c 0 nsd -d -c "$WORK/nsd/nsd.conf" &
  SERVER_PID=$!
}
start_gdnsd() {
  rm -rf "$WORK/gdnsd"
  mkdir -p "$WORK/gdnsd/zones" "$WORK/gdnsd/run" "$WORK/gdnsd/state"
  ln -s "$1" "$WORK/gdnsd/zones/$2"
  cat > "$WORK/gdnsd/config" <<EOC
options => {
  listen => [ 127.0.0.1 ]
  dns_port => $PORT
  udp_threads => 1
  tcp_threads => 1
  run_dir => $WORK/gdnsd/run
  state_dir => $WORK/gdnsd/state
}
${3:-}
EOC
  taskset -c 0 gdnsd -c "$WORK/gdnsd" start 2>"$WORK/gdnsd.log" &
  SERVER_PID=$!
}

pid_tree() { echo "$1"; for c in $(pgrep -P "$1" || true); do pid_tree "$c"; done; }
cpu_ticks() {  # utime+stime of a server's processes (all their threads)
  local t=0
  for p in $(pid_tree "$1"); do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
pss_kib() {
  local t=0
  for p in $(pid_tree "$1"); do
    [ -r "/proc/$p/smaps_rollup" ] || continue
    t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
  done
  echo "$t"
}
wait_answer() {  # wait_answer NAME TIMEOUT_S: until NAME has an A answer
  local deadline=$(( $(date +%s%N) + $2 * 1000000000 ))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    # Over TCP: a port not yet open is refused at once, whereas a UDP query
    # to it waits out kdig's whole (1 s) timeout and quantises the result.
    if kdig @127.0.0.1 -p "$PORT" "$1" A +tcp +short +timeout=1 +retry=0 2>/dev/null | grep -q '^10\.'; then return 0; fi
    sleep 0.02
  done
  return 1
}
stop_server() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  # NSD's children and anything else left on the port
  for p in $(pgrep -f "$WORK" || true); do
    [ "$p" = "${KEEP_PID:-}" ] || kill -9 "$p" 2>/dev/null || true
  done
  sleep 0.3
}

# run_load SERVER MODE [QUERYFILE [DNSPERF ARGS...]] -> "qps cpu_us_per_query completed"
run_load() {
  local pid=$1 mode=$2 file=${3:-$WORK/queries.txt}
  shift 2; [ $# -gt 0 ] && shift
  local c0 c1 out completed qps
  c0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 dnsperf -m "$mode" -s 127.0.0.1 -p "$PORT" -d "$file" -l "$DURATION" \
        -c 16 -q 512 -T 1 "$@" 2>&1)
  c1=$(cpu_ticks "$pid")
  completed=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  qps=$(echo "$out" | awk '/Queries per second:/ {printf "%d", $4}')
  awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$completed" -v q="$qps" \
    'BEGIN { printf "%d %.2f %d\n", q, (n > 0 ? c / hz * 1e6 / n : 0), n }'
}

declare -A UDP_QPS UDP_CPU TCP_QPS TCP_CPU READY PSS
echo "== static answers, 10k-name zone, ${DURATION}s per run, server on core 0, dnsperf on core 1"
for s in $SERVERS; do
  "start_$s" "$WORK/zones/bench.test" bench.test
  PIDS+=("$SERVER_PID")
  wait_answer h9999.bench.test 60 || { echo "$s did not start"; continue; }
  read -r q c n < <(run_load "$SERVER_PID" udp)
  UDP_QPS[$s]=$q UDP_CPU[$s]=$c
  read -r q c n < <(run_load "$SERVER_PID" tcp)
  TCP_QPS[$s]=$q TCP_CPU[$s]=$c
  stop_server "$SERVER_PID"
done

# ---------------------------------------------------------------- steering
# A steered name (failover over weighted, 4 endpoints) against static names
# of the same zone, every query carrying ECS 10.1.2.0/24, in the same run.
# gdnsd's weighted plugin is the nearest thing it has; measured the same way.
declare -A ST_STATIC ST_STEERED
if [ "${STEER:-1}" = 1 ]; then
  echo "== steered vs static answers, ECS on, ${DURATION}s per run"
  awk 'BEGIN { srand(11); for (i = 0; i < 100000; i++) printf "h%d.bench.test A\n", int(rand() * 10000) }' \
    > "$WORK/static.txt"
  awk 'BEGIN { for (i = 0; i < 100000; i++) print "st.bench.test A" }' > "$WORK/steered.txt"
  ECS_OPT=(-E 8:000118000a0102)
  STEER_YAML='records:
  - name: st.bench.test
    type: A
    policy: failover
    endpoints:
      - { name: a1, address: 10.0.0.1, priority: 1, weight: 80 }
      - { name: a2, address: 10.0.0.2, priority: 1, weight: 20 }
      - { name: b1, address: 10.0.0.3, priority: 2, weight: 50 }
      - { name: b2, address: 10.0.0.4, priority: 2, weight: 50 }'
  cp "$WORK/zones/bench.test" "$WORK/zones/bench-dyna.test"
  echo "st 60 DYNA weighted!st" >> "$WORK/zones/bench-dyna.test"
  GDNSD_WEIGHTED='plugins => { weighted => { st => { a1 => [ 10.0.0.1, 80 ], a2 => [ 10.0.0.2, 20 ] } } }'
  for s in vane gdnsd; do
    case " $SERVERS " in *" $s "*) ;; *) continue ;; esac
    if [ "$s" = vane ]; then start_vane "$WORK/zones/bench.test" bench.test "$STEER_YAML"
    else start_gdnsd "$WORK/zones/bench-dyna.test" bench.test "$GDNSD_WEIGHTED"; fi
    PIDS+=("$SERVER_PID")
    wait_answer st.bench.test 60 || { echo "$s did not start"; continue; }
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/static.txt" "${ECS_OPT[@]}")
    ST_STATIC[$s]=$c
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/steered.txt" "${ECS_OPT[@]}")
    ST_STEERED[$s]=$c
    stop_server "$SERVER_PID"
  done
fi

# ---------------------------------------------------------------- metrics cost
# The same vaned with and without its per-worker query counters
# (VANE_BENCH_NO_COUNTERS), alternating, static UDP load.
declare -A MC
if [ "${METRICS:-1}" = 1 ] && [[ " $SERVERS " == *" vane "* ]]; then
  echo "== metrics counters on/off, ${DURATION}s per run, twice each"
  for round in 1 2; do
    for mode in off on; do
      if [ "$mode" = off ]; then export VANE_BENCH_NO_COUNTERS=1; else unset VANE_BENCH_NO_COUNTERS; fi
      start_vane "$WORK/zones/bench.test" bench.test
      unset VANE_BENCH_NO_COUNTERS
      PIDS+=("$SERVER_PID")
      wait_answer h9999.bench.test 60 || { echo "vane did not start"; continue; }
      read -r q c n < <(run_load "$SERVER_PID" udp)
      MC[$mode]="${MC[$mode]:-} $c"
      stop_server "$SERVER_PID"
    done
  done
fi

# ---------------------------------------------------------------- health scale
# 10 000 endpoints, TCP checks every 10 s on the checker thread, against a
# second vaned on core 1 as the probed listener. DNS CPU per query counts the
# vane-dns-* threads only; the checker thread's CPU is reported on its own.
declare -A HS_DNS
HS_CHECKER=""
if [ "${HEALTH:-1}" = 1 ] && [[ " $SERVERS " == *" vane "* ]]; then
  echo "== health checker at scale: 10000 endpoints, tcp every 10s, ${DURATION}s DNS load"
  [ -f "$WORK/static.txt" ] ||
    awk 'BEGIN { srand(11); for (i = 0; i < 100000; i++) printf "h%d.bench.test A\n", int(rand() * 10000) }' \
      > "$WORK/static.txt"
  TARGET_PORT=$((PORT + 1))
  mkdir -p "$WORK/target"
  cat > "$WORK/target/vane.yaml" <<EOC
listen: ["127.0.0.1:$TARGET_PORT"]
threads: 1
state_dir: $WORK/target/state
zones: [{ name: bench.test, file: $WORK/zones/bench.test }]
EOC
  taskset -c 1 "$VANED" --config "$WORK/target/vane.yaml" 2>/dev/null &
  TARGET_PID=$!
  KEEP_PID=$TARGET_PID  # stop_server's sweep must leave the probed listener alone
  PIDS+=("$TARGET_PID")
  CHECKS_YAML=$(awk -v port="$TARGET_PORT" 'BEGIN {
    print "checks:\n  t: { type: tcp, interval: 10s, timeout: 2s, fall: 3, rise: 2 }\nrecords:"
    for (r = 0; r < 200; r++) {
      printf "  - name: hs%d.bench.test\n    type: A\n    endpoints:\n", r
      for (e = 0; e < 50; e++)
        printf "      - { name: e%d, address: 10.9.%d.%d, host: 127.0.0.1, port: %d, check: t }\n", e, r, e, port
    }
  }')
  for mode in off on; do
    if [ "$mode" = on ]; then start_vane "$WORK/zones/bench.test" bench.test "$CHECKS_YAML"
    else start_vane "$WORK/zones/bench.test" bench.test; fi
    PIDS+=("$SERVER_PID")
    wait_answer h9999.bench.test 60 || { echo "vane did not start"; continue; }
    [ "$mode" = on ] && sleep 11  # one full round of probes, spread over the interval
    d0=$(thread_ticks "$SERVER_PID" vane-dns); h0=$(thread_ticks "$SERVER_PID" vane-health); t0=$(date +%s%N)
    out=$(taskset -c 1 dnsperf -m udp -s 127.0.0.1 -p "$PORT" -d "$WORK/static.txt" -l "$DURATION" -c 16 -q 512 -T 1 2>&1)
    d1=$(thread_ticks "$SERVER_PID" vane-dns); h1=$(thread_ticks "$SERVER_PID" vane-health); t1=$(date +%s%N)
    n=$(echo "$out" | awk '/Queries completed:/ {print $3}')
    HS_DNS[$mode]=$(awk -v c="$((d1 - d0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.2f", c / hz * 1e6 / n }')
    if [ "$mode" = on ]; then
      HS_DOWN=$(grep -c 'health: .* is down' "$WORK/vane.log" || true)
      HS_CHECKER=$(awk -v c="$((h1 - h0))" -v hz="$HZ" -v ns="$((t1 - t0))" 'BEGIN { printf "%.1f", 100 * c / hz / (ns / 1e9) }')
      HS_ENDPOINTS=$(grep -c 'check: t' <<<"$CHECKS_YAML")
    fi
    stop_server "$SERVER_PID"
  done
  KEEP_PID=""
  stop_server "$TARGET_PID"
fi

if [ "$BIG" = 1 ]; then
  echo "== time to ready and memory, ${BIG_RECORDS}-record zone"
  gen_zone big.test "$BIG_RECORDS" "$WORK/zones/big.test"
  last="h$((BIG_RECORDS - 1)).big.test"
  for s in $SERVERS; do
    t0=$(date +%s%N)
    "start_$s" "$WORK/zones/big.test" big.test
    PIDS+=("$SERVER_PID")
    if wait_answer "$last" 600; then
      READY[$s]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
      sleep 1
      PSS[$s]=$(( $(pss_kib "$SERVER_PID") / 1024 ))
    fi
    stop_server "$SERVER_PID"
  done
fi

echo
printf "%-7s %12s %14s %12s %14s %10s %10s\n" server "udp qps" "udp µs/query" "tcp qps" "tcp µs/query" "ready s" "PSS MiB"
for s in $SERVERS; do
  printf "%-7s %12s %14s %12s %14s %10s %10s\n" "$s" "${UDP_QPS[$s]:--}" "${UDP_CPU[$s]:--}" "${TCP_QPS[$s]:--}" \
    "${TCP_CPU[$s]:--}" "${READY[$s]:--}" "${PSS[$s]:--}"
done
if [ -n "${UDP_CPU[vane]:-}" ] && [ -n "${UDP_CPU[knot]:-}" ]; then
  awk -v v="${UDP_CPU[vane]}" -v k="${UDP_CPU[knot]}" 'BEGIN { printf "\nvane/Knot CPU per UDP query: %.2f (target <= 0.90)\n", v / k }'
fi
for s in vane gdnsd; do
  if [ -n "${ST_STATIC[$s]:-}" ] && [ -n "${ST_STEERED[$s]:-}" ]; then
    awk -v s="$s" -v a="${ST_STATIC[$s]}" -v b="${ST_STEERED[$s]}" 'BEGIN {
      printf "%-6s static %.2f µs/query, steered %.2f µs/query: steered/static %.2f%s\n", s, a, b, b / a,
             (s == "vane" ? " (target <= 1.05)" : " (weighted plugin, 2 addresses)") }'
  fi
done
if [ -n "${MC[off]:-}" ] && [ -n "${MC[on]:-}" ]; then
  awk -v a="${MC[off]}" -v b="${MC[on]}" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); sa = 0; sb = 0
    for (i = 1; i <= n; i++) { sa += x[i]; sb += y[i] }
    printf "metrics counters: off%s / on%s µs/query: on/off %.3f (target <= 1.02)\n", a, b, sb / sa }'
fi
if [ -n "${HS_DNS[off]:-}" ] && [ -n "${HS_DNS[on]:-}" ]; then
  awk -v a="${HS_DNS[off]}" -v b="${HS_DNS[on]}" -v h="$HS_CHECKER" -v n="${HS_ENDPOINTS:-?}" 'BEGIN {
    printf "health checks: %s endpoints every 10s: checker thread %s%% of a core; DNS threads %.2f -> %.2f µs/query (%.3f, target <= 1.03)\n", n, h, a, b, b / a }'
  echo "  (endpoints that went down during the run: ${HS_DOWN:-?}; 0 means every probe connected)"
fi
if [ -n "${READY[vane]:-}" ] && [ -n "${READY[knot]:-}" ]; then
  awk -v v="${READY[vane]}" -v k="${READY[knot]}" 'BEGIN { printf "vane/Knot time to ready:     %.2f (target <= 0.80)\n", v / k }'
fi
