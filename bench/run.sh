#!/usr/bin/env bash
# vane vs Knot DNS vs NSD vs gdnsd on the same zone, same machine.
# Each server is pinned to core 0 with one worker; dnsperf runs on core 1.
# Prints qps and server CPU µs per answered query (utime+stime from /proc,
# all threads and child processes of the server, over the run), each as a
# ratio to a plain recvmmsg/sendmmsg echo (bench/echo.cpp: the floor) and to
# the best peer, TCP qps, and time-to-ready + memory (PSS) for a 1M-record
# zone, every server unpinned, BIG_ROUNDS alternating rounds, medians.
#
#   bench/run.sh                 # everything (about 5 minutes)
#   DURATION=5 BIG=0 bench/run.sh  # quick: short runs, skip the 1M-record zone
#   WORKERS=2 SERVER_CPUS=0,1 BIG=0 bench/run.sh    # two workers per server
#   DNSPERF_LOAD="-c 8 -q 200" BIG=0 bench/run.sh   # fewer clients and queries in flight
#   BIG_RECORDS="1000000 5000000" BIG_ONLY=1 bench/run.sh  # zone loading only
#   SERVERS="vane knot" STATIC=0 STEER=0 METRICS=0 HEALTH=0 BIG=0 bench/run.sh  # DNSSEC only
#   LATENCY_ONLY=1 RATES="10000 40000 80000" bench/run.sh  # open-loop latency and CPU at fixed rates
#   GEO_ONLY=1 GEO_NETS=1000000 bench/run.sh       # geo answers vs static and vs gdnsd; a 1M-network database
#   DNSTAP_ONLY=1 bench/run.sh                       # every answer logged (dnstap) vs not, vane and Knot
#   HEALTH_ONLY=1 bench/run.sh                       # 10 000 checked endpoints: honest, then lying
#   VANE_BATCHES=64 SERVERS="vane vane64 gdnsd" LATENCY_ONLY=1 bench/run.sh  # vane built with 64 datagrams
#                                                    # per UDP call (-DVANE_UDP_BATCH) beside the default 16
#   SERVERS="vane echo16 echo16d" LATENCY_ONLY=1 bench/run.sh  # the echo with 16 per call, with 4 MiB
#                                                    # and with the default receive buffer, beside the echo
#   LAT_SLICES=15 LATENCY_ONLY=1 bench/run.sh        # latency interleaved: all servers up at once, 15 runs
#                                                    # of LAT_SLICE_SECS (2) each per rate, taking turns
#
# Only 127.0.0.1 is used. Every server started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}" knot-dnsutils fstrm-bin knot-module-dnstap

DURATION=${DURATION:-10}
BIG=${BIG:-1}
BIG_RECORDS=${BIG_RECORDS:-1000000}
SERVERS=${SERVERS:-"vane knot nsd gdnsd"}
WORKERS=${WORKERS:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
DNSPERF_LOAD=${DNSPERF_LOAD:-"-c 16 -q 512"}  # clients and queries in flight
BIG_ROUNDS=${BIG_ROUNDS:-3}
if [ "${BIG_ONLY:-0}" = 1 ]; then BIG=1 STEER=0 METRICS=0 HEALTH=0 STATIC=0 DNSSEC=0 LATENCY=0 GEO=0 DNSTAP=0; fi
if [ "${LATENCY_ONLY:-0}" = 1 ]; then BIG=0 STEER=0 METRICS=0 HEALTH=0 STATIC=0 DNSSEC=0 LATENCY=1 GEO=0 DNSTAP=0; fi
if [ "${GEO_ONLY:-0}" = 1 ]; then BIG=0 STEER=0 METRICS=0 HEALTH=0 STATIC=0 DNSSEC=0 LATENCY=0 GEO=1 DNSTAP=0; fi
if [ "${DNSTAP_ONLY:-0}" = 1 ]; then BIG=0 STEER=0 METRICS=0 HEALTH=0 STATIC=0 DNSSEC=0 LATENCY=0 GEO=0 DNSTAP=1; fi
if [ "${HEALTH_ONLY:-0}" = 1 ]; then BIG=0 STEER=0 METRICS=0 HEALTH=1 STATIC=0 DNSSEC=0 LATENCY=0 GEO=0 DNSTAP=0; fi
RATES=${RATES:-"10000 40000 80000 120000"}
LAT_ROUNDS=${LAT_ROUNDS:-1}
# Below the ephemeral range (32768-60999): a connect probe to a port in it
# that nothing listens on yet can pick that very port as its source and
# connect to itself (TCP simultaneous open), and the server then cannot bind.
PORT=${PORT:-15353}
HZ=$(getconf CLK_TCK)
# This script, dnsperf and every poll run on core 1; servers are started on core 0.
taskset -cp 1 $$ >/dev/null

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF -UVANE_UDP_BATCH >/dev/null  # the default width
cmake --build build-bench -j"$(nproc --all)" --target vaned vanectl vane-echo vane-latency >/dev/null
VANED=$PWD/build-bench/server/vaned
ECHO=$PWD/build-bench/bench/vane-echo
LATENCY_CLIENT=$PWD/build-bench/bench/vane-latency
VANECTL=$PWD/build-bench/admin/vanectl

WORK=$(mktemp -d /tmp/vane-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- zones
mkdir -p "$WORK/zones"
gen_zone bench.test 10000 "$WORK/zones/bench.test"
gen_queries bench.test 10000 "$WORK/queries.txt"

# ---------------------------------------------------------------- servers
# start_SERVER ZONEFILE ORIGIN: starts pinned to SERVER_CPUS with WORKERS
# workers, sets SERVER_PID.
start_vane() {  # optional $3: more YAML (records:); VANE_DIR: its files' directory (default $WORK)
  local dir=${VANE_DIR:-$WORK}
  cat > "$dir/vane.yaml" <<EOC
listen: ["127.0.0.1:$PORT"]
threads: $WORKERS
state_dir: $dir/vane-state
zones: [{ name: $2, file: $1${VANE_ZONE_OPTS:-} }]
${3:-}
EOC
  taskset -c "$SERVER_CPUS" "$VANED" --config "$dir/vane.yaml" 2>"$dir/vane.log" &
  SERVER_PID=$!
}
# vaneW: vane built with W datagrams per UDP receive/send call (VANE_BATCHES).
for w in ${VANE_BATCHES:-}; do
  cmake -S . -B "build-bench-b$w" -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF -DVANE_UDP_BATCH="$w" >/dev/null
  cmake --build "build-bench-b$w" -j"$(nproc --all)" --target vaned >/dev/null
  eval "start_vane$w() { VANED='$PWD/build-bench-b$w/server/vaned' start_vane \"\$@\"; }"
done
start_knot() {
  mkdir -p "$WORK/knot"
  cat > "$WORK/knot/knot.conf" <<EOC
server:
  rundir: "$WORK/knot"
  listen: 127.0.0.1@$PORT
  udp-workers: $WORKERS
  tcp-workers: $WORKERS
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: "$WORK/knot"
${KNOT_MODULES:-}
template:
  - id: default
    storage: "$WORK/knot"
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $2
    file: "$1"
${KNOT_ZONE_OPTS:-}
EOC
  taskset -c "$SERVER_CPUS" knotd -c "$WORK/knot/knot.conf" 2>"$WORK/knot.log" &
  SERVER_PID=$!
}
start_nsd() {
  mkdir -p "$WORK/nsd"
  cat > "$WORK/nsd/nsd.conf" <<EOC
server:
  ip-address: 127.0.0.1@$PORT
  server-count: $WORKERS
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
  taskset -c "$SERVER_CPUS" nsd -d -c "$WORK/nsd/nsd.conf" &
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
  udp_threads => $WORKERS
  tcp_threads => $WORKERS
  run_dir => $WORK/gdnsd/run
  state_dir => $WORK/gdnsd/state
}
${3:-}
EOC
  taskset -c "$SERVER_CPUS" gdnsd -c "$WORK/gdnsd" start 2>"$WORK/gdnsd.log" &
  SERVER_PID=$!
}
start_echo() { echo_at 64 $((4 << 20)); }
echo_at() {  # echo_at WIDTH RCVBUF: datagrams per call, receive buffer bytes (0: the kernel's default)
  taskset -c "$SERVER_CPUS" "$ECHO" "$PORT" "$1" "$2" &
  SERVER_PID=$!
  sleep 0.3
}
# echoW and echoWd in SERVERS: the echo with W datagrams per call, and with
# the kernel's default receive buffer (d) instead of vaned's 4 MiB. They are
# the kernel's part of a tail, never a peer.
for s in $SERVERS; do
  if [[ $s =~ ^echo([0-9]+)(d?)$ ]]; then
    buf=$((4 << 20)); [ -n "${BASH_REMATCH[2]}" ] && buf=0
    eval "start_$s() { echo_at ${BASH_REMATCH[1]} $buf; }"
  fi
done

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

# run_load SERVER MODE [QUERYFILE [DNSPERF ARGS...]] -> "qps cpu_us_per_query completed"
run_load() {
  local pid=$1 mode=$2 file=${3:-$WORK/queries.txt}
  shift 2; [ $# -gt 0 ] && shift
  local c0 c1 out completed qps
  c0=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086 # DNSPERF_LOAD is a list of options
  out=$(taskset -c 1 dnsperf -m "$mode" -s 127.0.0.1 -p "$PORT" -d "$file" -l "$DURATION" \
        $DNSPERF_LOAD -T 1 "$@" 2>&1)
  c1=$(cpu_ticks "$pid")
  completed=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  qps=$(echo "$out" | awk '/Queries per second:/ {printf "%d", $4}')
  awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$completed" -v q="$qps" \
    'BEGIN { printf "%d %.2f %d\n", q, (n > 0 ? c / hz * 1e6 / n : 0), n }'
}

declare -A UDP_QPS UDP_CPU TCP_QPS TCP_CPU READY PSS
if [ "${STATIC:-1}" = 1 ]; then
echo "== static answers, 10k-name zone, ${DURATION}s per run, $WORKERS worker(s) on core(s) $SERVER_CPUS, dnsperf on core 1"
for s in echo $SERVERS; do
  "start_$s" "$WORK/zones/bench.test" bench.test
  PIDS+=("$SERVER_PID")
  if [[ $s != echo* ]]; then wait_answer h9999.bench.test 60 || { echo "$s did not start"; continue; }; fi
  read -r q c n < <(run_load "$SERVER_PID" udp)
  UDP_QPS[$s]=$q UDP_CPU[$s]=$c
  if [ "$s" != echo ]; then
    read -r q c n < <(run_load "$SERVER_PID" tcp)
    TCP_QPS[$s]=$q TCP_CPU[$s]=$c
  fi
  stop_server "$SERVER_PID"
done
fi

# ---------------------------------------------------------------- latency
# Open loop: vane-latency sends at a fixed rate whatever the answers do and
# times each query; the server's CPU over the same seconds gives µs/query.
# Every server with its defaults, LAT_ROUNDS rounds alternating servers.
declare -A LAT LAT_MED
if [ "${LATENCY:-1}" = 1 ]; then
  echo "== open-loop latency at fixed rates (${RATES}), $([ "${LAT_SLICES:-0}" -gt 0 ] && echo "${LAT_SLICE_SECS:-2}s per slice" || echo "${DURATION}s per point"), $WORKERS worker(s) on core(s) $SERVER_CPUS"
  printf '%-6s %8s %10s %8s %8s %8s %8s %8s %9s\n' server rate cpu_us/q avg_us p50_us p99_us p999_us lost p99_sent
  # echo: the floor — recvmmsg and sendmmsg of the queries themselves, no
  # DNS work; what the kernel alone costs per query at each rate.
  turn_order() {  # turn_order N: the servers and the echo, reversed when N is even, so that a
    # drift of the host within a round or slice favours no server in particular
    if [ $(($1 % 2)) -eq 0 ]; then printf '%s\n' $SERVERS echo | tac | tr '\n' ' '; else echo "$SERVERS echo"; fi
  }
  lat_point() {  # lat_point SERVER PID RATE SECONDS: one open-loop run against $PORT, one row
    local c0 c1 out sent answered lost avg p50 p99 p999 p99s cpu
    c0=$(cpu_ticks "$2")
    out=$(taskset -c 1 "$LATENCY_CLIENT" "$PORT" "$3" "$4" "$WORK/queries.txt")
    c1=$(cpu_ticks "$2")
    read -r _ sent _ answered _ lost _ avg _ p50 _ p99 _ p999 _ _ _ p99s <<<"$out"
    cpu=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$answered" 'BEGIN { printf "%.2f", (n > 0 ? c / hz * 1e6 / n : 0) }')
    printf '%-6s %8s %10s %8s %8s %8s %8s %8s %9s\n' "$1" "$3" "$cpu" "$avg" "$p50" "$p99" "$p999" "$lost" "$p99s"
    LAT[$1/$3]="${LAT[$1/$3]:-} $cpu $avg $p50 $p99 $p999 $lost $p99s"
  }
  if [ "${LAT_SLICES:-0}" -gt 0 ]; then
    # Interleaved: every server up at once, each on its own port and pinned
    # to core 0 (all idle but the one measured), then for each rate
    # LAT_SLICES short runs per server, the servers taking turns (reversed
    # every other slice). A noisy spell of the host lands on every server
    # alike instead of on whichever ran then; the medians are over slices.
    declare -A LAT_PORT LAT_PID
    base=$PORT i=0
    for s in $SERVERS echo; do
      PORT=$((base + i)) i=$((i + 1))
      mkdir -p "$WORK/lat-$s"
      VANE_DIR="$WORK/lat-$s" "start_$s" "$WORK/zones/bench.test" bench.test
      PIDS+=("$SERVER_PID")
      LAT_PORT[$s]=$PORT LAT_PID[$s]=$SERVER_PID
      if [[ $s != echo* ]]; then wait_answer h9999.bench.test 60 || { echo "$s did not start"; exit 1; }; fi
    done
    for rate in $RATES; do
      for slice in $(seq "$LAT_SLICES"); do
        for s in $(turn_order "$slice"); do
          PORT=${LAT_PORT[$s]}
          lat_point "$s" "${LAT_PID[$s]}" "$rate" "${LAT_SLICE_SECS:-2}"
        done
      done
    done
    for s in $SERVERS echo; do stop_server "${LAT_PID[$s]}"; done
    PORT=$base
  else
    for round in $(seq "$LAT_ROUNDS"); do
      for s in $(turn_order "$round"); do
        "start_$s" "$WORK/zones/bench.test" bench.test
        PIDS+=("$SERVER_PID")
        if [[ $s != echo* ]]; then wait_answer h9999.bench.test 60 || { echo "$s did not start"; continue; }; fi
        for rate in $RATES; do lat_point "$s" "$SERVER_PID" "$rate" "$DURATION"; done
        stop_server "$SERVER_PID"
      done
    done
  fi
  # Medians over the rounds, and vane's ratio to the best peer at each rate.
  median_of() {  # median_of FIELD VALUES...: the FIELD-th of each group of 7
    local f=$1; shift
    local vals=() i=0
    for v in "$@"; do [ $((i % 7)) -eq $((f - 1)) ] && vals+=("$v"); i=$((i + 1)); done
    printf '%s\n' "${vals[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
  }
  if [ "${LAT_SLICES:-0}" -gt 0 ]; then echo "== latency medians over $LAT_SLICES interleaved slice(s) of ${LAT_SLICE_SECS:-2}s"
  else echo "== latency medians over $LAT_ROUNDS round(s)"; fi
  printf '%-6s %8s %10s %8s %8s %8s %8s %8s %9s\n' server rate cpu_us/q avg_us p50_us p99_us p999_us lost p99_sent
  for rate in $RATES; do
    for s in $SERVERS echo; do
      # shellcheck disable=SC2086 # a list of numbers
      set -- ${LAT[$s/$rate]:-}
      [ $# -gt 0 ] || continue
      m=()
      for f in 1 2 3 4 5 6 7; do m+=("$(median_of "$f" "$@")"); done
      printf '%-6s %8s %10s %8s %8s %8s %8s %8s %9s\n' "$s" "$rate" "${m[@]}"
      LAT_MED[$s/$rate]="${m[0]} ${m[2]} ${m[3]} ${m[6]}"  # CPU, p50, p99, p99 of all sent
    done
  done
  # The issue's targets, read off the medians: vane's CPU against the
  # cheapest peer's (≤ 0.85×) and the echo's; its p50 and p99 against the
  # best peer's (≤ 1.1× + 20 µs); and p99 once more over every query sent,
  # each lost one counted as a timeout, since a peer that drops its slowest
  # queries has them left out of its p99.
  if [ -n "${LAT_MED[vane/${RATES%% *}]:-}" ]; then
    echo "== vane against the peers (medians)"
    # The echo's p99 against the same limit: where even the no-op floor is
    # over it, the host's tail decides that column, not the server.
    printf '%8s %14s %10s %16s %16s %18s %18s\n' rate cpu/cheapest cpu/echo p50/limit p99/limit p99_sent/limit echo_p99/limit
    for rate in $RATES; do
      read -r vc v50 v99 v99s <<<"${LAT_MED[vane/$rate]:-0 0 0 0}"
      # The peers' best of each column (empty when no peer ran).
      read -r best_c best_50 best_99 best_99s < <(
        for s in $SERVERS; do [[ $s != vane* && $s != echo* ]] && [ -n "${LAT_MED[$s/$rate]:-}" ] && echo "${LAT_MED[$s/$rate]}"; done |
          awk '{ for (i = 1; i <= 4; i++) if (NR == 1 || $i + 0 < m[i] + 0) m[i] = $i } END { if (NR) print m[1], m[2], m[3], m[4] }'
      ) || true
      read -r ec _ e99 _ <<<"${LAT_MED[echo/$rate]:-0 0 0 0}"
      awk -v r="$rate" -v vc="$vc" -v bc="$best_c" -v ec="$ec" -v v50="$v50" -v b50="$best_50" -v v99="$v99" \
        -v b99="$best_99" -v v99s="$v99s" -v b99s="$best_99s" -v e99="$e99" '
        function ratio(a, b) { return (b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
        function lat(v, b) { return b == "" ? "-" : sprintf("%s/%.0f%s", v, 1.1 * b + 20, v <= 1.1 * b + 20 ? " ok" : " NO") }
        BEGIN { printf "%8s %14s %10s %16s %16s %18s %18s\n", r, ratio(vc, bc), ratio(vc, ec), lat(v50, b50), lat(v99, b99), lat(v99s, b99s), lat(e99, b99) }'
    done
  fi
fi

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

# ---------------------------------------------------------------- geo
# A geo record over a MaxMind database of GEO_NETS networks (random /24s
# across 8 places, written by tests/geo/write_mmdb.pl) against static names
# of the same zone, every query with the ECS of a client in the database,
# same run; gdnsd's geoip plugin on the same database and map. Also the
# time and memory to load the database, and (vane) a swap under load.
declare -A GEO_STATIC GEO_ANSWER GEO_READY GEO_PSS
if [ "${GEO:-1}" = 1 ]; then
  GEO_NETS=${GEO_NETS:-1000000}
  echo "== geo: a database of $GEO_NETS networks, ECS on, ${DURATION}s per run"
  awk -v n="$GEO_NETS" 'BEGIN {
    split("EU DE BY 48.1 11.6|EU FR - 48.9 2.3|AS JP 13 35.7 139.7|NA US CA 37.4 -122.1|NA US NY 40.7 -74.0|SA BR - -23.5 -46.6|OC AU - -33.9 151.2|AF ZA - -26.2 28.0", P, "|")
    for (i = 0; i < n; i++) {
      x = (i * 2654435761) % 16777216  # distinct /24s: an odd multiplier is a bijection mod 2^24
      split(P[i % 8 + 1], f, " "); if (f[3] == "-") f[3] = ""
      printf "%d.%d.%d.0/24\t%s\t%s\t%s\t%s\t%s\n", int(x / 65536), int(x / 256) % 256, x % 256, f[1], f[2], f[3], f[4], f[5]
    } }' > "$WORK/geo.tsv"
  t0=$(date +%s%N)
  perl tests/geo/write_mmdb.pl "$WORK/geo.tsv" "$WORK/geo.mmdb"
  echo "  database written in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(( $(stat -c %s "$WORK/geo.mmdb") / 1048576 )) MiB"
  awk 'BEGIN { srand(11); for (i = 0; i < 100000; i++) printf "h%d.bench.test A\n", int(rand() * 10000) }' \
    > "$WORK/geo-static.txt"
  awk 'BEGIN { for (i = 0; i < 100000; i++) print "geo.bench.test A" }' > "$WORK/geo-answer.txt"
  GEO_ECS=(-E 8:000118003779b1)  # 55.121.177.0/24: network 1 of the database (EU/FR)
  GEO_YAML="geo: { database: $WORK/geo.mmdb }
regions:
  - { geo: default, order: [us, eu] }
  - { geo: EU, order: [eu, us] }
  - { geo: AS, order: [ap, us] }
records:
  - { name: geo.bench.test, type: A, policy: geo, endpoints: [{ name: us1, address: 10.0.0.1, region: us },
      { name: eu1, address: 10.0.0.2, region: eu }, { name: ap1, address: 10.0.0.3, region: ap }] }"
  cp "$WORK/zones/bench.test" "$WORK/zones/bench-geo.test"
  echo "geo 60 DYNA geoip!geo" >> "$WORK/zones/bench-geo.test"
  GDNSD_GEO="plugins => { geoip => { maps => { m => { geoip2_db => $WORK/geo.mmdb, datacenters => [us, eu, ap],
    map => { default => [us, eu], EU => [eu, us], AS => [ap, us] } } },
  resources => { geo => { map => m, dcmap => { us => 10.0.0.1, eu => 10.0.0.2, ap => 10.0.0.3 } } } } }"
  for s in vane gdnsd; do
    case " $SERVERS " in *" $s "*) ;; *) continue ;; esac
    t0=$(date +%s%N)
    if [ "$s" = vane ]; then start_vane "$WORK/zones/bench.test" bench.test "$GEO_YAML"
    else start_gdnsd "$WORK/zones/bench-geo.test" bench.test "$GDNSD_GEO"; fi
    PIDS+=("$SERVER_PID")
    wait_answer geo.bench.test 120 || { echo "$s did not start"; stop_server "$SERVER_PID"; continue; }
    GEO_READY[$s]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    GEO_PSS[$s]=$(( $(pss_kib "$SERVER_PID") / 1024 ))
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/geo-static.txt" "${GEO_ECS[@]}")
    GEO_STATIC[$s]=$c
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/geo-answer.txt" "${GEO_ECS[@]}")
    GEO_ANSWER[$s]=$c
    echo "  $s: ready ${GEO_READY[$s]} s, PSS ${GEO_PSS[$s]} MiB; static ${GEO_STATIC[$s]} µs/query, geo ${GEO_ANSWER[$s]} µs/query"
    if [ "$s" = vane ]; then
      # A new database (a copy: a new inode) renamed in under load.
      taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/geo-answer.txt" -l 8 -Q 20000 -c 8 -T 1 "${GEO_ECS[@]}" \
        >"$WORK/geo-swap.txt" 2>&1 &
      perf_pid=$!
      sleep 2
      cp "$WORK/geo.mmdb" "$WORK/geo.mmdb.new" && mv "$WORK/geo.mmdb.new" "$WORK/geo.mmdb"
      wait "$perf_pid" || true
      GEO_SWAP=$(awk -v took="$(grep -o '[0-9]* address ranges for geo.*' "$WORK/vane.log" | tail -1)" \
        '/Queries sent:/ { s = $3 } /Queries lost:/ { l = $3 } END {
          printf "swap under load (20 000 q/s): %s sent, %s lost; the new tables: %s", s, l, took }' "$WORK/geo-swap.txt")
      GEO_SWAP="$GEO_SWAP; $(grep -c 'geo: .* changed' "$WORK/vane.log") swap(s)"
      echo "  $GEO_SWAP"
    fi
    stop_server "$SERVER_PID"
  done
fi

# ---------------------------------------------------------------- dnstap
# Static UDP load with every query and response logged (dnstap to an
# fstrm_capture reader writing /dev/null) against the same server without,
# alternating, twice each; Knot with mod-dnstap the same way. Open loop at a
# fixed rate (DNSTAP_RATE q/s) that the reader, sharing the client's core,
# keeps up with: "every answer logged" means none dropped (vane counts them).
DNSTAP_RATE=${DNSTAP_RATE:-40000}
declare -A DT
if [ "${DNSTAP:-1}" = 1 ]; then
  echo "== dnstap on/off, ${DURATION}s per run, twice each"
  for round in 1 2; do
    for s in vane knot; do
      case " $SERVERS " in *" $s "*) ;; *) continue ;; esac
      for mode in off on; do
        more="" KNOT_ZONE_OPTS="" KNOT_MODULES=""
        if [ "$mode" = on ]; then
          rm -f "$WORK/tap.sock"
          taskset -c 1 fstrm_capture -t protobuf:dnstap.Dnstap -u "$WORK/tap.sock" -w /dev/null 2>/dev/null &
          cap_pid=$!
          PIDS+=("$cap_pid")
          sleep 0.3
          more="dnstap: { socket: $WORK/tap.sock }"
          KNOT_ZONE_OPTS="    module: mod-dnstap/tap"
          KNOT_MODULES="mod-dnstap:
  - id: tap
    sink: unix:$WORK/tap.sock
    log-queries: on
    log-responses: on"
        fi
        if [ "$s" = vane ]; then start_vane "$WORK/zones/bench.test" bench.test "$more"
        else start_knot "$WORK/zones/bench.test" bench.test; fi
        PIDS+=("$SERVER_PID")
        wait_answer h1.bench.test 60 || { echo "$s did not start"; stop_server "$SERVER_PID"; continue; }
        # The open-loop client: CPU per answer and each answer's latency in one run.
        c0=$(cpu_ticks "$SERVER_PID")
        out=$(taskset -c 1 "$LATENCY_CLIENT" "$PORT" "$DNSTAP_RATE" "$DURATION" "$WORK/queries.txt")
        c1=$(cpu_ticks "$SERVER_PID")
        read -r _ sent _ answered _ lost _ avg _ p50 _ p99 _ p999 _ _ <<<"$out"
        c=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$answered" 'BEGIN { printf "%.2f", (n > 0 ? c / hz * 1e6 / n : 0) }')
        DT[$s:$mode]="${DT[$s:$mode]:-} $c"
        dropped=""
        if [ "$s" = vane ] && [ "$mode" = on ]; then
          dropped=", $("$VANECTL" --socket "$WORK/vane-state/admin.sock" status | grep -o '[0-9]* dropped' || echo '? dropped')"
        fi
        echo "  round $round: $s dnstap $mode: $c µs/query at $DNSTAP_RATE q/s, p50 $p50 p99 $p99 µs, $lost lost$dropped"
        KEEP_PID="${cap_pid:-}" stop_server "$SERVER_PID"
        if [ "$mode" = on ]; then kill -INT "$cap_pid" 2>/dev/null || true; wait "$cap_pid" 2>/dev/null || true; fi
      done
    done
  done
  KNOT_ZONE_OPTS="" KNOT_MODULES=""
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

# ---------------------------------------------------------------- dnssec
# One signed vaned (online, ECDSA P-256), queries without and with DO in the
# same run: static names, a steered name (weighted over 4 endpoints), and
# names that never repeat (nonexistent: each answer needs a fresh NSEC
# signature, so every query is a signature-cache miss). Knot with
# mod-onlinesign on the same zone, the same way.
declare -A SG
if [ "${DNSSEC:-1}" = 1 ]; then
  echo "== DNSSEC online signing: DO vs no DO, same server, ${DURATION}s per run"
  [ -f "$WORK/static.txt" ] ||
    awk 'BEGIN { srand(11); for (i = 0; i < 100000; i++) printf "h%d.bench.test A\n", int(rand() * 10000) }' \
      > "$WORK/static.txt"
  awk 'BEGIN { for (i = 0; i < 100000; i++) print "w4.bench.test A" }' > "$WORK/w4.txt"
  awk 'BEGIN { for (i = 0; i < 2000000; i++) printf "nx%d.bench.test A\n", i }' > "$WORK/cold.txt"
  W4_YAML='records:
  - name: w4.bench.test
    type: A
    policy: weighted
    endpoints:
      - { name: a, address: 10.0.0.1, weight: 10 }
      - { name: b, address: 10.0.0.2, weight: 10 }
      - { name: c, address: 10.0.0.3, weight: 10 }
      - { name: d, address: 10.0.0.4, weight: 10 }'
  for s in vane knot; do
    case " $SERVERS " in *" $s "*) ;; *) continue ;; esac
    if [ "$s" = vane ]; then
      VANE_ZONE_OPTS=", dnssec: { signing: online }" start_vane "$WORK/zones/bench.test" bench.test "$W4_YAML"
    else
      rm -rf "$WORK/knot"
      KNOT_ZONE_OPTS="    module: mod-onlinesign" start_knot "$WORK/zones/bench.test" bench.test
    fi
    PIDS+=("$SERVER_PID")
    wait_answer h9999.bench.test 60 || { echo "$s did not start"; continue; }
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/static.txt"); SG[$s:static]=$c
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/static.txt" -D); SG[$s:static_do]=$c
    if [ "$s" = vane ]; then
      read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/w4.txt"); SG[$s:steered]=$c
      read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/w4.txt" -D); SG[$s:steered_do]=$c
    fi
    read -r q c n < <(run_load "$SERVER_PID" udp "$WORK/cold.txt" -D); SG[$s:cold]=$c SG[$s:cold_n]=$n
    stop_server "$SERVER_PID"
  done
fi

# ---------------------------------------------------------------- health scale
# 10 000 endpoints, TCP checks every 10 s on the checker thread, against a
# second vaned on core 1 as the probed listener. DNS CPU per query counts the
# vane-dns-* and vane-udp-* threads only; the checker thread's CPU is reported on its own.
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
  # The lying kind (issue "Gray failures"): a third of the endpoints answer
  # 200 only every other time (HTTP, fall 3: never down), a third accept and
  # never answer (HTTP, 2 s timeout), a third stall the TLS handshake (HTTPS).
  FLAKY_PORT=$((PORT + 2)) PIT_PORT=$((PORT + 3))
  taskset -c 1 python3 bench/lying_endpoints.py "$FLAKY_PORT" "$PIT_PORT" &
  LIAR_PID=$!
  PIDS+=("$LIAR_PID")
  LYING_YAML=$(awk -v flaky="$FLAKY_PORT" -v pit="$PIT_PORT" 'BEGIN {
    print "checks:"
    print "  hang: { type: http, path: /health, interval: 10s, timeout: 2s, fall: 3, rise: 2 }"
    print "  tls: { type: https, path: /health, tls_verify: false, interval: 10s, timeout: 2s, fall: 3, rise: 2 }"
    for (i = 0; i < 10000; i += 3)
      printf "  f%d: { type: http, path: /f%d, expect_status: [200], interval: 10s, timeout: 2s, fall: 3, rise: 2 }\n", i, i
    print "records:"
    for (r = 0; r < 200; r++) {
      printf "  - name: hs%d.bench.test\n    type: A\n    endpoints:\n", r
      for (e = 0; e < 50; e++) {
        i = r * 50 + e
        if (i % 3 == 0) printf "      - { name: e%d, address: 10.9.%d.%d, host: 127.0.0.1, port: %d, check: f%d }\n", e, r, e, flaky, i
        else printf "      - { name: e%d, address: 10.9.%d.%d, host: 127.0.0.1, port: %d, check: %s }\n", e, r, e, pit, (i % 3 == 1 ? "hang" : "tls")
      }
    }
  }')
  for mode in off on lying; do
    case $mode in
      on) start_vane "$WORK/zones/bench.test" bench.test "$CHECKS_YAML" ;;
      lying) start_vane "$WORK/zones/bench.test" bench.test "$LYING_YAML" ;;
      *) start_vane "$WORK/zones/bench.test" bench.test ;;
    esac
    PIDS+=("$SERVER_PID")
    wait_answer h9999.bench.test 60 || { echo "vane did not start"; continue; }
    [ "$mode" = on ] && sleep 11  # one full round of probes, spread over the interval
    [ "$mode" = lying ] && sleep 33  # three rounds: fall 3
    d0=$(thread_ticks "$SERVER_PID" "vane-dns\|vane-udp"); h0=$(thread_ticks "$SERVER_PID" vane-health); t0=$(date +%s%N)
    out=$(taskset -c 1 dnsperf -m udp -s 127.0.0.1 -p "$PORT" -d "$WORK/static.txt" -l "$DURATION" -c 16 -q 512 -T 1 2>&1)
    d1=$(thread_ticks "$SERVER_PID" "vane-dns\|vane-udp"); h1=$(thread_ticks "$SERVER_PID" vane-health); t1=$(date +%s%N)
    n=$(echo "$out" | awk '/Queries completed:/ {print $3}')
    HS_DNS[$mode]=$(awk -v c="$((d1 - d0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.2f", c / hz * 1e6 / n }')
    if [ "$mode" = on ]; then
      HS_DOWN=$(grep -c 'health: .* is down' "$WORK/vane.log" || true)
      HS_CHECKER=$(awk -v c="$((h1 - h0))" -v hz="$HZ" -v ns="$((t1 - t0))" 'BEGIN { printf "%.1f", 100 * c / hz / (ns / 1e9) }')
      HS_ENDPOINTS=$(grep -c 'check: t' <<<"$CHECKS_YAML")
    elif [ "$mode" = lying ]; then
      HS_LYING_CHECKER=$(awk -v c="$((h1 - h0))" -v hz="$HZ" -v ns="$((t1 - t0))" 'BEGIN { printf "%.1f", 100 * c / hz / (ns / 1e9) }')
      HS_LYING_DOWN=$(grep -c 'health: .* is down' "$WORK/vane.log" || true)
      HS_FLAKY_DOWN=$(grep 'health: .* is down' "$WORK/vane.log" | grep -c "'http 503'" || true)
      echo "  lying: checker ${HS_LYING_CHECKER}% of a core; ${HS_LYING_DOWN} endpoints down (6 666 hang or stall), ${HS_FLAKY_DOWN} of them the every-other-time ones (want 0)"
    fi
    stop_server "$SERVER_PID"
  done
  KEEP_PID=""
  stop_server "$TARGET_PID"
  kill "$LIAR_PID" 2>/dev/null || true
  wait "$LIAR_PID" 2>/dev/null || true
fi

# Time to ready: from exec to the first TCP answer for the zone's last
# name; every server unpinned (as at a user's start-up), alternating rounds.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
if [ "$BIG" = 1 ]; then
  all_cpus="0-$(( $(nproc --all) - 1 ))"
  for records in $BIG_RECORDS; do
    echo "== time to ready and memory, ${records}-record zone, unpinned, $BIG_ROUNDS rounds"
    gen_zone big.test "$records" "$WORK/zones/big.test"
    last="h$((records - 1)).big.test"
    declare -A RT=() PS=()
    for round in $(seq "$BIG_ROUNDS"); do
      for s in $SERVERS; do
        t0=$(date +%s%N)
        SERVER_CPUS=$all_cpus "start_$s" "$WORK/zones/big.test" big.test
        PIDS+=("$SERVER_PID")
        if wait_answer "$last" 600; then
          RT[$s]+=" $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')"
          sleep 1
          PS[$s]+=" $(( $(pss_kib "$SERVER_PID") / 1024 ))"
          [ "$s" = vane ] && grep -o 'serial [0-9]*, [0-9.]* ms' "$WORK/vane.log" | sed 's/^/    vane log: /' || true
        fi
        stop_server "$SERVER_PID"
      done
    done
    for s in $SERVERS; do
      READY[$s:$records]=$(echo "${RT[$s]:-}" | median)
      PSS[$s:$records]=$(echo "${PS[$s]:-}" | median)
      printf "  %-6s ready %s s (rounds:%s)  PSS %s MiB\n" "$s" "${READY[$s:$records]:--}" "${RT[$s]:-}" "${PSS[$s:$records]:--}"
    done
    rm -f "$WORK/zones/big.test"
  done
fi

# Reload of the large zone under a steady load: lost queries, and the RSS
# peak during the reload against the steady RSS before it (VmHWM is reset
# through /proc/PID/clear_refs just before the SIGHUP).
first_big=${BIG_RECORDS%% *}
if [ "${RELOAD:-1}" = 1 ] && [ "$BIG" = 1 ] && [[ " $SERVERS " == *" vane "* ]]; then
  echo "== reload of a ${first_big}-record zone under ${RELOAD_QPS:=20000} queries/s"
  gen_zone big.test "$first_big" "$WORK/zones/big.test"
  gen_queries big.test "$first_big" "$WORK/big-queries.txt"
  start_vane "$WORK/zones/big.test" big.test
  PIDS+=("$SERVER_PID")
  if wait_answer "h$((first_big - 1)).big.test" 600; then
    sleep 1
    steady=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
    reload_secs=$(( DURATION < 6 ? 6 : DURATION ))
    taskset -c 1 dnsperf -m udp -s 127.0.0.1 -p "$PORT" -d "$WORK/big-queries.txt" -l "$reload_secs" \
      -Q "$RELOAD_QPS" -c 8 -T 1 >"$WORK/reload-dnsperf.txt" 2>&1 &
    perf_pid=$!
    sleep 2
    echo 5 >"/proc/$SERVER_PID/clear_refs"
    kill -HUP "$SERVER_PID"
    wait "$perf_pid" || true
    peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
    sent=$(awk '/Queries sent:/ {print $3}' "$WORK/reload-dnsperf.txt")
    done_q=$(awk '/Queries completed:/ {print $3}' "$WORK/reload-dnsperf.txt")
    lost=$(awk '/Queries lost:/ {print $3}' "$WORK/reload-dnsperf.txt")
    took=$(grep -o 'reloaded .*' "$WORK/vane.log" | tail -1)
    RELOAD_LINE=$(awk -v s="$sent" -v c="$done_q" -v l="$lost" -v a="$steady" -v b="$peak" -v t="$took" 'BEGIN {
      printf "reload under load: %s sent, %s answered, %s lost; RSS steady %.0f MiB, peak %.0f MiB (%.2fx, target <= 2); %s",
             s, c, l, a / 1024, b / 1024, b / a, t }')
    echo "  $RELOAD_LINE"
  else
    echo "  vane did not start"
  fi
  stop_server "$SERVER_PID"
  rm -f "$WORK/zones/big.test"
fi

echo
best=""
for s in $SERVERS; do
  [ "$s" = vane ] || [ -z "${UDP_CPU[$s]:-}" ] && continue
  if [ -z "$best" ] || awk -v a="${UDP_CPU[$s]}" -v b="${UDP_CPU[$best]}" 'BEGIN { exit !(a < b) }'; then best=$s; fi
done
printf "%-7s %10s %12s %8s %9s %10s %12s %10s %10s\n" server "udp qps" "udp µs/query" "÷echo" "÷best" "tcp qps" "tcp µs/query" "ready s" "PSS MiB"
for s in echo $SERVERS; do
  ratio_echo=- ratio_best=-
  if [ -n "${UDP_CPU[$s]:-}" ] && [ -n "${UDP_CPU[echo]:-}" ]; then
    ratio_echo=$(awk -v a="${UDP_CPU[$s]}" -v b="${UDP_CPU[echo]}" 'BEGIN { printf "%.2f", a / b }')
  fi
  if [ -n "${UDP_CPU[$s]:-}" ] && [ -n "$best" ]; then
    ratio_best=$(awk -v a="${UDP_CPU[$s]}" -v b="${UDP_CPU[$best]}" 'BEGIN { printf "%.2f", a / b }')
  fi
  printf "%-7s %10s %12s %8s %9s %10s %12s %10s %10s\n" "$s" "${UDP_QPS[$s]:--}" "${UDP_CPU[$s]:--}" "$ratio_echo" \
    "$ratio_best" "${TCP_QPS[$s]:--}" "${TCP_CPU[$s]:--}" "${READY[$s:$first_big]:--}" "${PSS[$s:$first_big]:--}"
done
[ -n "$best" ] && echo "(÷best: against the best peer's UDP µs/query, $best; $WORKERS worker(s))"
if [ -n "${UDP_CPU[vane]:-}" ] && [ -n "${UDP_CPU[knot]:-}" ]; then
  awk -v v="${UDP_CPU[vane]}" -v k="${UDP_CPU[knot]}" 'BEGIN { printf "\nvane/Knot CPU per UDP query: %.2f (target <= 0.90)\n", v / k }'
fi
if [ -n "${UDP_CPU[vane]:-}" ] && [ -n "${UDP_CPU[gdnsd]:-}" ]; then
  awk -v v="${UDP_CPU[vane]}" -v k="${UDP_CPU[gdnsd]}" 'BEGIN { printf "vane/gdnsd CPU per UDP query: %.2f (target <= 0.95)\n", v / k }'
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
if [ -n "${HS_DNS[lying]:-}" ]; then
  awk -v a="${HS_DNS[off]}" -v b="${HS_DNS[lying]}" -v h="$HS_LYING_CHECKER" 'BEGIN {
    printf "health checks, 10000 lying endpoints: checker thread %s%% of a core (target < 100); DNS threads %.2f -> %.2f µs/query (%.3f)\n", h, a, b, b / a }'
  echo "  (down: ${HS_LYING_DOWN:-?}, want 6666 — the hanging and stalling ones; up every other time but down: ${HS_FLAKY_DOWN:-?}, want 0)"
fi
for s in vane knot; do
  [ -n "${SG[$s:static]:-}" ] || continue
  awk -v s="$s" -v a="${SG[$s:static]}" -v b="${SG[$s:static_do]}" -v c="${SG[$s:steered]:-}" \
      -v d="${SG[$s:steered_do]:-}" -v cold="${SG[$s:cold]}" -v n="${SG[$s:cold_n]}" 'BEGIN {
    printf "dnssec %-5s static %.2f -> %.2f µs/query with DO (%.2fx, target <= 1.3)", s, a, b, b / a
    if (c != "") printf "; steered (4 endpoints) %.2f -> %.2f (%.2fx)", c, d, d / c
    printf "; every answer a cache miss: %.1f µs/query = %.0f signed answers/s per core (%d answers)\n",
           cold, 1e6 / cold, n }'
done
for records in $BIG_RECORDS; do
  if [ -n "${READY[vane:$records]:-}" ] && [ -n "${READY[knot:$records]:-}" ]; then
    awk -v n="$records" -v v="${READY[vane:$records]}" -v k="${READY[knot:$records]}" -v p="${PSS[vane:$records]:-0}" \
        -v g="${PSS[gdnsd:$records]:-0}" 'BEGIN {
      printf "%d records: vane/Knot time to ready %.2f (target <= %s); vane/gdnsd PSS %s\n", n, v / k,
             (n >= 5000000 ? "1.00" : "0.80"), (g > 0 ? sprintf("%.2f", p / g) : "-") }'
  fi
done
[ -n "${RELOAD_LINE:-}" ] && echo "$RELOAD_LINE"
for s in vane knot; do
  [ -n "${DT[$s:on]:-}" ] || continue
  awk -v s="$s" -v a="${DT[$s:off]}" -v b="${DT[$s:on]}" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); sa = 0; sb = 0
    for (i = 1; i <= n; i++) { sa += x[i]; sb += y[i] }
    printf "dnstap %-5s off%s / on%s µs/query: on/off %.2f%s\n", s, a, b, sb / sa, (s == "vane" ? " (target <= 1.15)" : "") }'
done
for s in vane gdnsd; do
  [ -n "${GEO_ANSWER[$s]:-}" ] || continue
  awk -v s="$s" -v a="${GEO_STATIC[$s]}" -v b="${GEO_ANSWER[$s]}" -v r="${GEO_READY[$s]}" -v p="${GEO_PSS[$s]}"       -v n="${GEO_NETS:-}" -v g="${GEO_ANSWER[gdnsd]:-}" 'BEGIN {
    printf "geo %-6s %d networks: ready %.2f s, PSS %d MiB; static %.2f, geo %.2f µs/query: geo/static %.2f%s%s\n",
           s, n, r, p, a, b, b / a, (s == "vane" ? " (target <= 1.10)" : ""),
           (s == "vane" && g != "" ? sprintf("; geo vane/gdnsd %.2f (target <= 1.00)", b / g) : "") }'
done
[ -n "${GEO_SWAP:-}" ] && echo "geo $GEO_SWAP"
exit 0
