#!/usr/bin/env bash
# The status page and `vanectl status` on a large server: one zone with N
# failover records (endpoint e in us-east-1, w in us-west-2), before and
# after draining every us-east-1 endpoint. Each figure: the fastest and
# slowest of 5 curl requests (3 vanectl calls), and the size.
#
#   bench/status_at_scale.sh            # N = 20000
#   N=100000 bench/status_at_scale.sh
#
# Only 127.0.0.1 is used; the vaned started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" curl knot-dnsutils

N=${N:-20000}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc --all)" --target vaned vanectl >/dev/null
VANED=$PWD/build-bench/server/vaned
VANECTL=$PWD/build-bench/admin/vanectl
bench_work status
cd "$WORK"
printf '$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n' > big.test.zone
{
  printf 'listen: ["127.0.0.1:15399"]\nthreads: 1\nhttp: { listen: "127.0.0.1:18080" }\n'
  printf 'state_dir: %s/st\nadmin: { socket: %s/st/admin.sock }\n' "$WORK" "$WORK"
  printf 'zones: [{ name: big.test, file: big.test.zone }]\nrecords:\n'
  for i in $(seq 0 $((N - 1))); do
    printf '  - { name: r%d.big.test, type: A, policy: failover, endpoints: [{ name: e, address: 192.0.2.10, priority: 1, region: us-east-1 }, { name: w, address: 198.51.100.10, priority: 2, region: us-west-2 }] }\n' "$i"
  done
} > vane.yaml
mkdir st
taskset -c 0 "$VANED" -c vane.yaml > log 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ -S st/admin.sock ] && kdig +short @127.0.0.1 -p 15399 r0.big.test A > /dev/null 2>&1 && break
  sleep 0.2
done
page() {
  for _ in 1 2 3 4 5; do curl -s -o /dev/null -w "%{time_total} %{size_download}\n" "http://127.0.0.1:18080/api/status$1"; done |
    sort -n | awk '{t[NR]=$1; s=$2} END {printf "%.3f-%.3f s, %d bytes\n", t[1], t[NR], s}'
}
ctl() {
  for _ in 1 2 3; do
    a=$(date +%s%N); "$VANECTL" -s st/admin.sock status $1 > /dev/null; b=$(date +%s%N)
    echo $(((b - a) / 1000000))
  done | sort -n | tr '\n' ' '
  echo ms
}
echo "$N records"
echo "/api/status: $(page '')"
echo "/api/status?filter=r$((N - 1)).big.test: $(page "?filter=r$((N - 1)).big.test")"
echo "vanectl status: $(ctl '')"
echo "vanectl status r3.big.test: $(ctl r3.big.test)"
"$VANECTL" -s st/admin.sock drain --region us-east-1 > /dev/null
echo "$N endpoints drained"
echo "/api/status: $(page '')"
echo "vanectl status: $(ctl '')"
echo "vanectl status r3.big.test: $(ctl r3.big.test)"
