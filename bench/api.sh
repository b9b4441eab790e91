#!/usr/bin/env bash
# The HTTP API (DESIGN.md "HTTP API"): what a request costs, and what it
# costs DNS. One vaned (Release build, one worker) pinned to core 0, the
# clients on core 1.
#   1. latency of GET /v1/status?filter= (one record) and of a POST
#      /v1/weight flip, p50/p99 over N (default 1000) sequential requests on
#      one keep-alive connection: standalone (RocksDB, fsync per change) and
#      in a cluster (one etcd member on core 1; acknowledged after quorum);
#   2. DNS while the API is hammered: vane-latency at RATE q/s (default
#      20000) for DURATION s (default 15) on core 1, quiet and then with 4
#      connections sending GET /v1/status back to back (the hammering client
#      on core 0 beside vaned, at nice 19: it stands for other machines, the
#      API's own work is what is measured); CPU µs per answered query of
#      the DNS threads, and p50/p99 of the answers. ROUNDS (default 3)
#      alternating quiet/hammered/limited, limited/hammered/quiet, ... where
#      "hammered" is a token with rate 100000 (every request served: status
#      JSON built on the main loop) and "limited" one at the default rate
#      (10/s: the rest are 429s, answered by the API threads alone); and
#      "busy", the control: no API traffic, a nice-19 busy loop on core 0
#      (what sharing the core costs the DNS thread, whoever shares it).
#
#   bench/api.sh
#
# Only 127.0.0.1 is used. Everything started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" etcd-server

N=${N:-1000}
RATE=${RATE:-20000}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-15373}
APIPORT=${APIPORT:-15374}
HZ=$(getconf CLK_TCK)
taskset -cp 1 $$ >/dev/null

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target vaned vane-latency >/dev/null
VANED=$PWD/build-bench/server/vaned
PROBE=$PWD/build-bench/bench/vane-latency

bench_work api-bench

cat > "$WORK/example.com.zone" <<'EOZ'
$ORIGIN example.com.
$TTL 300
@ IN SOA ns hostmaster 1 3600 600 86400 60
@ IN NS ns
ns IN A 192.0.2.1
EOZ
echo "bench-token-0123456789abcdef" > "$WORK/bench.token"
echo "limited-token-0123456789abcdef" > "$WORK/limited.token"
TOKEN=$(cat "$WORK/bench.token")
printf 'www.example.com A\nns.example.com A\nexample.com SOA\n' > "$WORK/q.txt"
config() {  # config [cluster]
  cat <<EOC
listen: ["127.0.0.1:$PORT"]
threads: 1
state_dir: $WORK/state-${1:-alone}
zones: [{ name: example.com, file: example.com.zone }]
api: { listen: "127.0.0.1:$APIPORT", tokens: [{ name: bench, token_file: bench.token, scope: admin, rate: 100000 },
                                            { name: limited, token_file: limited.token, scope: read }] }
records:
  - name: www.example.com
    type: A
    policy: weighted
    endpoints:
      - { name: use1, address: 192.0.2.10, weight: 255 }
      - { name: use2, address: 198.51.100.10, weight: 0 }
EOC
  [ "${1:-}" = cluster ] && echo "cluster: { etcd: [\"http://127.0.0.1:23731\"], prefix: /vane/apibench, node: n1 }"
  true
}
start_vaned() {  # start_vaned [cluster]
  config "${1:-}" > "$WORK/bench.yaml"
  taskset -c 0 "$VANED" --config "$WORK/bench.yaml" 2>"$WORK/vaned.log" &
  VPID=$!
  PIDS+=($VPID)
  for _ in $(seq 100); do grep -q "api on" "$WORK/vaned.log" && break; sleep 0.1; done
}
stop_vaned() { kill "$VPID"; wait "$VPID" 2>/dev/null || true; }

echo "== API latency (N=$N sequential requests each, one connection)"
start_vaned
echo "standalone: $(taskset -c 1 /usr/bin/python3 bench/api_client.py latency $APIPORT "$TOKEN" "$N")"
stop_vaned
taskset -c 1 etcd --name e0 --data-dir "$WORK/e0" --listen-client-urls http://127.0.0.1:23731 \
  --advertise-client-urls http://127.0.0.1:23731 --listen-peer-urls http://127.0.0.1:23732 \
  --initial-advertise-peer-urls http://127.0.0.1:23732 --initial-cluster e0=http://127.0.0.1:23732 \
  --log-level warn >"$WORK/e0.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:23731/health >/dev/null && break; sleep 0.2; done
start_vaned cluster
for _ in $(seq 100); do grep -q "cluster: connected\|connected to etcd\|watching" "$WORK/vaned.log" && break; sleep 0.1; done
sleep 1
echo "cluster (1 etcd member): $(taskset -c 1 /usr/bin/python3 bench/api_client.py latency $APIPORT "$TOKEN" "$N")"
stop_vaned

echo "== DNS at $RATE q/s for ${DURATION}s, quiet and with the API hammered (4 connections, GET /v1/status)"
start_vaned
measure() {  # measure quiet|busy|hammered|limited
  local t0 t1 out hammer="" token=$TOKEN
  [ "$1" = limited ] && token=$(cat "$WORK/limited.token")
  if [ "$1" = busy ]; then
    taskset -c 0 nice -n 19 timeout "$DURATION" sh -c 'while :; do :; done' &
    HPID=$!
    PIDS+=($HPID)
  elif [ "$1" != quiet ]; then
    taskset -c 0 nice -n 19 /usr/bin/python3 bench/api_client.py hammer $APIPORT "$token" "$DURATION" 4 > "$WORK/hammer.out" &
    HPID=$!
    PIDS+=($HPID)
    sleep 0.3
  fi
  t0=$(thread_ticks "$VPID" 'vane-udp\|vane-dns')
  out=$(taskset -c 1 "$PROBE" "$PORT" "$RATE" "$DURATION" "$WORK/q.txt")
  t1=$(thread_ticks "$VPID" 'vane-udp\|vane-dns')
  if [ "$1" = busy ]; then wait "$HPID" || true; fi
  if [ "$1" = hammered ] || [ "$1" = limited ]; then wait "$HPID"; hammer=$(cat "$WORK/hammer.out"); fi
  local answered p50 p99
  answered=$(echo "$out" | awk '{print $4}')
  p50=$(echo "$out" | sed 's/.*p50_us \([0-9.]*\).*/\1/')
  p99=$(echo "$out" | sed 's/.*p99_us \([0-9.]*\).*/\1/')
  awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$answered" -v m="$1" -v p50="$p50" -v p99="$p99" -v h="$hammer" \
    'BEGIN { printf "%-9s DNS threads %.2f us/answer, p50 %s us, p99 %s us, answered %d %s\n", m, t * 1e6 / hz / n, p50, p99, n, h }'
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then measure quiet; measure busy; measure hammered; measure limited
  else measure limited; measure hammered; measure busy; measure quiet; fi
done
stop_vaned
