#!/usr/bin/env bash
# The cluster (DESIGN.md "Cluster"): a 3-member etcd and 3 vaned nodes on
# 127.0.0.1. Measures
#   1. propagation: from the acknowledgement of a change on node A to the new
#      answer on B and C, p50/p99 over FLIPS flips (default 500);
#   2. the DNS cost of cluster: on vs off: one vaned pinned to core 0 with
#      one worker, dnsperf and etcd on core 1, alternating (ROUNDS, default 3,
#      each round in the other order: off/on, on/off, ...);
#      CPU µs per answered query of the DNS threads and of the whole process.
#
#   bench/cluster.sh                 # about 2 minutes
#   FLIPS=100 DURATION=5 bench/cluster.sh
#
# Only 127.0.0.1 is used. Everything started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" dnsperf etcd-server

FLIPS=${FLIPS:-500}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-15363}  # below the ephemeral range, as in bench/run.sh
HZ=$(getconf CLK_TCK)
taskset -cp 1 $$ >/dev/null

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target vaned vane-propagation >/dev/null
VANED=$PWD/build-bench/server/vaned
PROBE=$PWD/build-bench/bench/vane-propagation

bench_work cluster-bench

# Ports below the ephemeral range, so a restarted member finds its own free.
EP=(23711 23712 23713) PP=(23721 23722 23723)
INITIAL="e0=http://127.0.0.1:${PP[0]},e1=http://127.0.0.1:${PP[1]},e2=http://127.0.0.1:${PP[2]}"
URLS="\"http://127.0.0.1:${EP[0]}\", \"http://127.0.0.1:${EP[1]}\", \"http://127.0.0.1:${EP[2]}\""
for i in 0 1 2; do
  taskset -c 1 etcd --name "e$i" --data-dir "$WORK/e$i" --listen-client-urls "http://127.0.0.1:${EP[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${EP[$i]}" --listen-peer-urls "http://127.0.0.1:${PP[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${PP[$i]}" --initial-cluster "$INITIAL" \
    --initial-cluster-state new --log-level warn >"$WORK/e$i.log" 2>&1 &
  PIDS+=($!)
  disown
done
for _ in $(seq 100); do
  curl -sf -X POST "http://127.0.0.1:${EP[0]}/v3/kv/put" -d '{"key":"YmVuY2g=","value":"MQ=="}' >/dev/null && break
  sleep 0.2
done

cat > "$WORK/example.com.zone" <<'EOZ'
$ORIGIN example.com.
$TTL 300
@ IN SOA ns hostmaster 1 3600 600 86400 60
@ IN NS ns
ns IN A 192.0.2.1
EOZ
RECORDS='records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20, priority: 1 }
      - { name: standby, address: 198.51.100.20, priority: 2 }'
node_yaml() {  # node_yaml NAME PORT [cluster]
  echo "listen: [\"127.0.0.1:$2\"]"
  echo "threads: 1"
  echo "state_dir: $WORK/state-$1"
  echo "zones: [{ name: example.com, file: $WORK/example.com.zone }]"
  [ "${3:-}" = cluster ] && echo "cluster: { etcd: [$URLS], prefix: /vane/bench, node: $1 }"
  echo "$RECORDS"
}
wait_answer() {  # wait_answer PORT
  for _ in $(seq 100); do
    kdig +short +timeout=1 +retry=0 @127.0.0.1 -p "$1" app.example.com A 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

echo "== propagation: $FLIPS flips on ns1, answers polled on ns2 and ns3"
for n in 1 2 3; do
  node_yaml "ns$n" $((PORT + n)) cluster > "$WORK/ns$n.yaml"
  "$VANED" --config "$WORK/ns$n.yaml" 2>"$WORK/ns$n.log" &
  PIDS+=($!)
  disown
done
for n in 1 2 3; do wait_answer $((PORT + n)); done
sleep 1
PROP=$("$PROBE" "$WORK/state-ns1/admin.sock" app.example.com primary 192.0.2.20 198.51.100.20 \
  $((PORT + 2)) $((PORT + 3)) --flips "$FLIPS")
echo "$PROP"
for p in $(pgrep -f "$WORK/ns" || true); do kill "$p" 2>/dev/null || true; done
sleep 1

echo "== DNS CPU per query, cluster: off vs on, ${DURATION}s each, $ROUNDS rounds"
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
awk 'BEGIN { for (i = 0; i < 100000; i++) print "app.example.com A" }' > "$WORK/q.txt"
declare -A DNS ALL
for round in $(seq "$ROUNDS"); do
  order="off on"; [ $((round % 2)) = 0 ] && order="on off"
  for mode in $order; do
    node_yaml bench "$PORT" "$([ $mode = on ] && echo cluster)" > "$WORK/bench.yaml"
    rm -rf "$WORK/state-bench"
    taskset -c 0 "$VANED" --config "$WORK/bench.yaml" 2>"$WORK/bench.log" &
    pid=$!
    PIDS+=($pid)
    wait_answer "$PORT"
    sleep 1
    d0=$(thread_ticks $pid "vane-dns\|vane-udp"); a0=$(proc_ticks $pid)
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/q.txt" -l "$DURATION" -c 16 -q 512 -T 1 2>&1)
    d1=$(thread_ticks $pid "vane-dns\|vane-udp"); a1=$(proc_ticks $pid)
    n=$(echo "$out" | awk '/Queries completed:/ {print $3}')
    DNS[$mode]="${DNS[$mode]:-} $(awk -v c=$((d1 - d0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.3f", c / hz * 1e6 / n }')"
    ALL[$mode]="${ALL[$mode]:-} $(awk -v c=$((a1 - a0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.3f", c / hz * 1e6 / n }')"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
echo
echo "$PROP"
for k in DNS ALL; do
  declare -n m=$k
  awk -v k="$k" -v a="${m[off]}" -v b="${m[on]}" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); sa = 0; sb = 0
    for (i = 1; i <= n; i++) { sa += x[i]; sb += y[i] }
    printf "%s µs/query: cluster off%s / on%s: on/off %.3f%s\n", (k == "DNS" ? "DNS threads" : "whole vaned"), a, b,
           sb / sa, (k == "DNS" ? " (target <= 1.02)" : "") }'
done
echo "kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(getconf _NPROCESSORS_ONLN) cores"
