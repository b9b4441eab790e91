#!/usr/bin/env bash
# Zone transfers, measured (issue: zone transfers):
#   1. a drain on vane -> the new answer on a Knot secondary (NOTIFY, IXFR),
#      p50/p99 over FLIPS flips (vane-propagation polls Knot every 1 ms);
#   2. AXFR out of a BIG-record zone: time and the server's peak RSS, vane
#      beside Knot serving the same zone;
#   3. UDP answer cost with transfers configured and a secondary pulling
#      (SOA refresh 1 s, a flip every second) against the same vaned
#      without transfer:, ROUNDS alternating runs of DURATION s.
#
#   bench/transfer.sh              # everything (about 3 minutes)
#   FLIPS=50 BIG=200000 DURATION=5 bench/transfer.sh
#
# Only 127.0.0.1 is used; every server started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}" knot-dnsutils

FLIPS=${FLIPS:-200}
BIG=${BIG:-1000000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
HZ=$(getconf CLK_TCK)
taskset -cp 1 $$ >/dev/null

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc --all)" --target vaned vanectl vane-propagation >/dev/null
VANED=$PWD/build-bench/server/vaned
VANECTL=$PWD/build-bench/admin/vanectl
PROBE=$PWD/build-bench/bench/vane-propagation

bench_work xfr-bench
VPORT=15360 KPORT=15361
SECRET=$(head -c 32 /dev/urandom | base64)
echo "$SECRET" > "$WORK/xfr.secret"

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
wait_soa() {  # wait_soa PORT ZONE SERIAL_REGEX
  for _ in $(seq 600); do
    kdig @127.0.0.1 -p "$1" "$2" SOA +short +timeout=1 +retry=0 2>/dev/null | grep -Eq " $3 " && return 0
    sleep 0.1
  done
  return 1
}
knot_conf() {  # knot_conf DIR ROLE(secondary|primary) ZONE FILE
  mkdir -p "$1"
  {
    printf 'server:\n  rundir: "%s"\n  listen: 127.0.0.1@%s\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n' "$1" "$KPORT"
    printf 'log:\n  - target: stderr\n    any: warning\ndatabase:\n  storage: "%s"\n' "$1"
    printf 'key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: %s\n' "$SECRET"
    printf 'remote:\n  - id: vane\n    address: 127.0.0.1@%s\n    key: xfr\n' "$VPORT"
    printf 'acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n  - id: any\n    address: 127.0.0.1\n    action: transfer\n'
    printf 'template:\n  - id: default\n    storage: "%s"\n    zonefile-sync: -1\n    journal-content: none\n    semantic-checks: off\n' "$1"
    if [ "$2" = secondary ]; then
      printf 'zone:\n  - domain: %s\n    master: vane\n    acl: notify\n' "$3"
    else
      printf 'zone:\n  - domain: %s\n    file: "%s"\n    acl: any\n' "$3" "$4"
    fi
  } > "$1/knot.conf"
}

# ------------------------------------------------------------- 1. propagation
cat > "$WORK/example.com.zone" <<'EOZ'
$ORIGIN example.com.
$TTL 300
@ IN SOA ns hostmaster 1 1 1 86400 60
@ IN NS ns
ns IN A 192.0.2.1
EOZ
for i in $(seq 1000); do echo "h$i IN A 10.0.$((i / 256)).$((i % 256))" >> "$WORK/example.com.zone"; done
start_vane() {  # start_vane TRANSFER_YAML
  cat > "$WORK/vane.yaml" <<EOC
listen: ["127.0.0.1:$VPORT"]
threads: 1
state_dir: $WORK/state
tsig: { xfr: { secret_file: $WORK/xfr.secret } }
zones:
  - { name: example.com, file: $WORK/example.com.zone${1:+, $1} }
records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20, priority: 1 }
      - { name: standby, address: 198.51.100.20, priority: 2 }
EOC
  taskset -c 0 "$VANED" --config "$WORK/vane.yaml" 2>"$WORK/vane.log" &
  VANE_PID=$!
  PIDS+=("$VANE_PID")
  wait_soa "$VPORT" example.com '[0-9]+' || { echo "vaned did not start"; cat "$WORK/vane.log"; exit 1; }
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "== a drain on vane -> the new answer on a Knot secondary ($FLIPS flips, NOTIFY + IXFR with TSIG)"
start_vane "transfer: { allow: [{ key: xfr }], notify: [\"127.0.0.1:$KPORT\"] }"
knot_conf "$WORK/knot-sec" secondary example.com
knotd -c "$WORK/knot-sec/knot.conf" 2>"$WORK/knot-sec.log" &
KNOT_PID=$!
PIDS+=("$KNOT_PID")
wait_soa "$KPORT" example.com '[0-9]+' || { echo "knot did not get the zone"; cat "$WORK/knot-sec.log"; exit 1; }
"$PROBE" "$WORK/state/admin.sock" app.example.com primary 192.0.2.20 198.51.100.20 "$KPORT" --flips "$FLIPS"
echo "IXFRs served: $(grep -c 'IXFR of example.com.* done' "$WORK/vane.log" || true), AXFRs: $(grep -c 'AXFR of example.com.* done' "$WORK/vane.log" || true)"

# ------------------------------------------------------- 3. cost of transfers
# (before 2: the same vaned and secondary.) The secondary checks the SOA
# every second (refresh 1) and a flip every second makes it transfer.
echo "== UDP answer cost: transfers configured and Knot pulling vs no transfer:, $ROUNDS x ${DURATION}s each"
awk 'BEGIN { srand(5); for (i = 0; i < 100000; i++) printf "h%d.example.com A\n", 1 + int(rand() * 1000) }' > "$WORK/q.txt"
load() {  # load -> cpu µs per answered query
  local c0 c1 out n
  c0=$(cpu_ticks "$VANE_PID")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$VPORT" -d "$WORK/q.txt" -l "$DURATION" -c 16 -q 512 -T 1 2>&1)
  c1=$(cpu_ticks "$VANE_PID")
  n=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.3f", (n > 0 ? c / hz * 1e6 / n : 0) }'
}
declare -a WITH WITHOUT
for round in $(seq "$ROUNDS"); do
  for mode in with without; do
    if [ "$mode" = without ]; then
      stop "$VANE_PID"
      start_vane ""
      WITHOUT+=("$(load)")
    else
      [ "$round" = 1 ] || { stop "$VANE_PID"; start_vane "transfer: { allow: [{ key: xfr }], notify: [\"127.0.0.1:$KPORT\"] }"; }
      (for _ in $(seq $((DURATION))); do
         "$VANECTL" -s "$WORK/state/admin.sock" force app.example.com primary down >/dev/null 2>&1 || true
         sleep 0.5
         "$VANECTL" -s "$WORK/state/admin.sock" force app.example.com primary auto >/dev/null 2>&1 || true
         sleep 0.5
       done) &
      FLIPPER=$!
      WITH+=("$(load)")
      wait "$FLIPPER" || true
    fi
  done
done
printf 'with transfers (and a flip a second): %s µs/query\n' "${WITH[*]}"
printf 'without transfer:                     %s µs/query\n' "${WITHOUT[*]}"
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
awk -v a="$(median "${WITH[@]}")" -v b="$(median "${WITHOUT[@]}")" 'BEGIN { printf "ratio (medians): %.3f\n", a / b }'
stop "$KNOT_PID"
stop "$VANE_PID"

# --------------------------------------------------------------- 2. big AXFR
echo "== AXFR of a $BIG-record zone: time and the server's peak RSS"
awk -v n="$BIG" 'BEGIN {
  print "$ORIGIN big.test."; print "$TTL 3600"
  print "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300"
  print "@ IN NS ns1"; print "ns1 IN A 192.0.2.1"
  for (i = 0; i < n; i++) printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
}' > "$WORK/big.zone"
axfr() {  # axfr PORT PID NAME
  local before after t0 t1 recs
  before=$(hwm_kib "$2")
  t0=$(date +%s%N)
  recs=$(kdig @127.0.0.1 -p "$1" big.test AXFR +noall +answer +timeout=60 2>/dev/null | wc -l)
  t1=$(date +%s%N)
  after=$(hwm_kib "$2")
  awk -v n="$3" -v r="$recs" -v t="$(((t1 - t0) / 1000000))" -v b="$before" -v a="$after" \
    'BEGIN { printf "%-5s %9d records in %6d ms; peak RSS %5.0f MiB before, %5.0f MiB after (+%.0f)\n", n, r, t, b / 1024, a / 1024, (a - b) / 1024 }'
}
cat > "$WORK/vane-big.yaml" <<EOC
listen: ["127.0.0.1:$VPORT"]
threads: 1
state_dir: $WORK/state-big
zones: [{ name: big.test, file: $WORK/big.zone, transfer: { allow: [{ cidr: 127.0.0.1/32 }] } }]
EOC
"$VANED" --config "$WORK/vane-big.yaml" 2>"$WORK/vane-big.log" &
VANE_PID=$!
PIDS+=("$VANE_PID")
wait_soa "$VPORT" big.test 1 || { echo "vaned did not load"; exit 1; }
axfr "$VPORT" "$VANE_PID" vane
stop "$VANE_PID"
knot_conf "$WORK/knot-big" primary big.test "$WORK/big.zone"
knotd -c "$WORK/knot-big/knot.conf" 2>"$WORK/knot-big.log" &
KNOT_PID=$!
PIDS+=("$KNOT_PID")
wait_soa "$KPORT" big.test 1 || { echo "knot did not load"; cat "$WORK/knot-big.log"; exit 1; }
axfr "$KPORT" "$KNOT_PID" knot
stop "$KNOT_PID"
