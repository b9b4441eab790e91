#!/usr/bin/env bash
# Where a p99 comes from: vaned (defaults) and the no-op echo, both pinned to
# core 0, taking turns at each rate (ROUNDS runs of SECS each, the order
# reversed every other round); vane-latency on core 1 traces every answer
# (LAT_TRACE). A stall is a spell of answers slower than STALL_US, spells
# less than 2 ms apart being one. Per run: p99, the stalls, the queries they
# held, the longest, and core 0's steal time (the hypervisor's, from
# /proc/stat) over the run; then per rate and server the medians.
#
#   bench/stalls.sh                                   # 10k-120k, 10 rounds of 3 s
#   RATES=80000 ROUNDS=20 bench/stalls.sh
#
# If the echo — which does no DNS work — has as many stalls holding as many
# queries as vaned, the tail is the host's, not vaned's.
# Only 127.0.0.1 is used. Both servers are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" knot-dnsutils

RATES=${RATES:-"10000 40000 80000 120000"}
ROUNDS=${ROUNDS:-10}
SECS=${SECS:-3}
STALL_US=${STALL_US:-300}
PORT=${PORT:-15353}
taskset -cp 1 $$ >/dev/null

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF -UVANE_UDP_BATCH >/dev/null
cmake --build build-bench -j"$(nproc --all)" --target vaned vane-echo vane-latency >/dev/null
B=$PWD/build-bench
bench_work stalls

gen_zone bench.test 10000 "$WORK/bench.test"
gen_queries bench.test 10000 "$WORK/queries.txt"
cat >"$WORK/vane.yaml" <<EOC
listen: ["127.0.0.1:$PORT"]
threads: 1
state_dir: $WORK/state
zones: [{ name: bench.test, file: $WORK/bench.test }]
EOC
taskset -c 0 "$B/server/vaned" --config "$WORK/vane.yaml" 2>"$WORK/vane.log" &
PIDS+=($!)
# The echo as bench/run.sh starts it: 64 per call, a 4 MiB receive buffer.
taskset -c 0 "$B/bench/vane-echo" $((PORT + 1)) 64 $((4 << 20)) &
PIDS+=($!)
wait_answer h9999.bench.test 30 || { echo "vaned did not start"; exit 1; }

steal() { awk '/^cpu0 /{ print $9 }' /proc/stat; }
HZ=$(getconf CLK_TCK)
printf '%-5s %7s %5s %8s %7s %8s %10s %9s\n' server rate round p99_us stalls held_q longest_us steal_ms
for rate in $RATES; do
  for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="vane echo"; else order="echo vane"; fi
    for s in $order; do
      port=$PORT; [ "$s" = echo ] && port=$((PORT + 1))
      s0=$(steal)
      out=$(LAT_TRACE="$WORK/trace" taskset -c 1 "$B/bench/vane-latency" "$port" "$rate" "$SECS" "$WORK/queries.txt")
      s1=$(steal)
      read -r _ _ _ _ _ _ _ _ _ _ _ p99 _ <<<"$out"
      sort -n "$WORK/trace" | awk -v s="$s" -v rate="$rate" -v round="$round" -v t="$STALL_US" \
        -v st="$(((s1 - s0) * 1000 / HZ))" -v p99="$p99" '
        $2 > t { if (n == 0 || $1 - last > 2000) n++; held++; last = $1; if ($2 > longest) longest = $2 }
        END { printf "%-5s %7d %5d %8.0f %7d %8d %10d %9d\n", s, rate, round, p99, n, held, longest, st }'
    done
  done
done | tee "$WORK/rows"
echo
echo "medians over $ROUNDS rounds of ${SECS}s (stall: answers slower than ${STALL_US} µs, < 2 ms apart)"
printf '%-5s %7s %8s %7s %8s %10s %9s\n' server rate p99_us stalls held_q longest_us steal_ms
for rate in $RATES; do
  for s in vane echo; do
    awk -v s="$s" -v rate="$rate" '$1 == s && $2 == rate' "$WORK/rows" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split()[3:])) for l in sys.stdin]
print("%-5s %7s " % (sys.argv[1], sys.argv[2]) + " ".join(
    "%*.0f" % (w, statistics.median(c)) for w, c in zip((8, 7, 8, 10, 9), zip(*rows))))' "$s" "$rate"
  done
done
