#!/usr/bin/env bash
# Many small zones (issue *Performance*, item 3): N zones (default 20 000) of
# 21 records, served by vane, Knot and NSD from the same files. For each,
# unpinned as at a user's start-up, ROUNDS (default 3) alternating rounds:
# time from exec to the first TCP answer for the last zone's last name, and
# memory once ready (PSS and RSS summed over the server's processes).
# Medians printed.
#
#   bench/many_zones.sh                 # about 2 minutes
#   N=100000 SERVERS=vane bench/many_zones.sh
#
# Only 127.0.0.1 is used. Everything started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" knot nsd knot-dnsutils

N=${N:-20000}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"vane knot nsd"}
PORT=${PORT:-15383}

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target vaned >/dev/null
VANED=$PWD/build-bench/server/vaned

bench_work zones-bench

/usr/bin/python3 - "$WORK" "$N" <<'EOP'
import os, sys
work, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{work}/zones")
with open(f"{work}/vane.yaml", "w") as v, open(f"{work}/knot.zones", "w") as k, open(f"{work}/nsd.zones", "w") as d:
    v.write(f'listen: ["127.0.0.1:{os.environ.get("PORT", "15383")}"]\nthreads: 1\nstate_dir: {work}/state\nzones:\n')
    for i in range(n):
        name = f"z{i}.test"
        path = f"{work}/zones/{name}.zone"
        v.write(f"  - {{ name: {name}, file: {path} }}\n")
        k.write(f'  - domain: {name}\n    file: "{path}"\n')
        d.write(f'zone:\n  name: {name}\n  zonefile: "{path}"\n')
        with open(path, "w") as z:
            z.write(f"$ORIGIN {name}.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n@ IN NS ns2\n"
                    "ns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n@ IN A 192.0.2.10\n@ IN MX 10 mail\nmail IN A 192.0.2.20\n"
                    "www IN A 192.0.2.11\nwww IN AAAA 2001:db8::11\napi IN A 192.0.2.12\nftp IN CNAME www\n"
                    "@ IN TXT \"v=spf1 mx -all\"\n")
            for h in range(7):
                z.write(f"h{h} IN A 10.0.0.{30 + h}\n")
EOP
mkdir -p "$WORK/knot" "$WORK/nsd"
cat > "$WORK/knot/knot.conf" <<EOC
server:
  rundir: "$WORK/knot"
  listen: 127.0.0.1@$PORT
  udp-workers: 1
  tcp-workers: 1
  background-workers: 2
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
$(cat "$WORK/knot.zones")
EOC
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
remote-control:
  control-enable: no
$(cat "$WORK/nsd.zones")
EOC

start_vane() { rm -rf "$WORK/state"; "$VANED" --config "$WORK/vane.yaml" 2>"$WORK/vane.log" & SERVER_PID=$!; }
start_knot() { rm -rf "$WORK/knot/"*.mdb "$WORK/knot/journal" "$WORK/knot/timers" "$WORK/knot/catalog"; knotd -c "$WORK/knot/knot.conf" 2>"$WORK/knot.log" & SERVER_PID=$!; }
start_nsd() { rm -f "$WORK/nsd/xfrd.state" "$WORK/nsd/zone.list"; nsd -d -c "$WORK/nsd/nsd.conf" & SERVER_PID=$!; }
mem_kib() {  # mem_kib PID Pss|Rss
  local t=0
  for p in $(pid_tree "$1"); do
    [ -r "/proc/$p/smaps_rollup" ] && t=$((t + $(awk -v k="$2:" '$1 == k {print $2}' "/proc/$p/smaps_rollup")))
  done
  echo "$t"
}
LAST="h6.z$((N - 1)).test"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

echo "== $N zones of 21 records: time to ready (exec to the last zone answering) and memory, $ROUNDS rounds"
declare -A RT=() PS=() RS=()
for round in $(seq "$ROUNDS"); do
  order=$SERVERS
  [ $((round % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
  for s in $order; do
    t0=$(date +%s%N)
    "start_$s"
    PIDS+=("$SERVER_PID")
    if wait_answer "$LAST" 600; then
      RT[$s]+=" $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')"
      sleep 1
      PS[$s]+=" $(( $(mem_kib "$SERVER_PID" Pss) / 1024 ))"
      RS[$s]+=" $(( $(mem_kib "$SERVER_PID" Rss) / 1024 ))"
    else
      echo "  $s: no answer for $LAST"
    fi
    stop_server "$SERVER_PID"
  done
done
for s in $SERVERS; do
  printf "  %-5s ready %s s (rounds:%s)  PSS %s MiB  RSS %s MiB (rounds:%s)\n" "$s" "$(echo "${RT[$s]:-}" | median)" \
    "${RT[$s]:-}" "$(echo "${PS[$s]:-}" | median)" "$(echo "${RS[$s]:-}" | median)" "${RS[$s]:-}"
done
