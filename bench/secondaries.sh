#!/usr/bin/env bash
# Many secondary zones (issue: performance; gray failures): N zones of
# RECORDS records on a vane primary, pulled by a vane secondary and by a
# Knot secondary, with the primary alone and with a primary that accepts
# connections and never answers listed first (a hung primary of two).
# Each figure: seconds from the secondary's start until every zone answers
# its SOA, and until 99 % do (bench/all_served.py), the secondary's RSS
# then, and its CPU (% of a core) over 5 s of idling after. The primary's
# line: when its last zone could be transferred, and its idle CPU.
#
#   bench/secondaries.sh               # N = 2000
#   N=20000 LIMIT=600 bench/secondaries.sh
#   SERVERS=vane bench/secondaries.sh   # vane alone
#   VANED=/tmp/old/server/vaned bench/secondaries.sh   # another build of vaned
#
# Only 127.0.0.1 is used; every server started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. bench/lib.sh
ensure_packages "${BUILD_PACKAGES[@]}" knot knot-dnsutils python3

N=${N:-2000}
RECORDS=${RECORDS:-20}
LIMIT=${LIMIT:-300}
if [ -z "${VANED:-}" ]; then  # VANED=path: another build's (an earlier commit's, to compare)
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVANE_TESTS=OFF >/dev/null
  cmake --build build-bench -j"$(nproc --all)" --target vaned >/dev/null
  VANED=$PWD/build-bench/server/vaned
fi
SERVED=$PWD/bench/all_served.py
bench_work secondaries
cd "$WORK"

PRIMARY=15501 SILENT=15502 PORT=15503
mkdir -p p
{
  printf 'listen: ["127.0.0.1:%d"]\nthreads: 1\nstate_dir: %s/p/state\nzones:\n' $PRIMARY "$WORK"
  for i in $(seq 0 $((N - 1))); do
    printf '  - { name: z%d.test, file: z%d.zone, transfer: { allow: [{ cidr: 127.0.0.0/8 }] } }\n' "$i" "$i"
  done
} > p/vane.yaml
for i in $(seq 0 $((N - 1))); do
  awk -v z="z$i.test" -v n="$RECORDS" 'BEGIN {
    print "$ORIGIN " z "."; print "$TTL 300"; print "@ IN SOA ns1 h 1 3600 600 86400 60"; print "@ IN NS ns1"
    for (j = 0; j < n - 2; j++) printf "h%d IN A 192.0.2.%d\n", j, j % 250 + 1
  }' > "p/z$i.zone"
done
T0=$(date +%s.%N)
"$VANED" -c p/vane.yaml > p.log 2>&1 &
PIDS+=($!)
PRIMARY_PID=$!
# The silent primary: accepts every connection (and UDP query) and answers nothing.
python3 -c '
import socket, select, sys
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", int(sys.argv[1]))); t.listen(4096)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", int(sys.argv[1])))
held = []
while True:
    r, _, _ = select.select([t, u], [], [])
    if t in r: held.append(t.accept()[0])
    if u in r: u.recv(4096)
' $SILENT &
PIDS+=($!)
"$SERVED" $PRIMARY "$N" 60 > /dev/null
# The secondaries are timed against a primary that transfers every zone
# (its last zone's AXFR answered), not one still starting.
until kdig @127.0.0.1 -p $PRIMARY "z$((N - 1)).test" AXFR +timeout=2 +retry=0 2>/dev/null | grep -q "IN[[:space:]]*SOA"; do
  sleep 0.05
done
T1=$(date +%s.%N)
printf 'primary: every zone transferable %.1f s after its start; idle, %d %% of a core\n' \
  "$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')" "$(idle_cpu $PRIMARY_PID)"

run() {  # run SERVER PRIMARIES...: start the secondary, time it, stop it
  local server=$1
  shift
  rm -rf s && mkdir -p s
  if [ "$server" = vane ]; then
    local list
    list=$(printf '"127.0.0.1:%s", ' "$@")
    {
      printf 'listen: ["127.0.0.1:%d"]\nthreads: 1\nstate_dir: %s/s/state\nzones:\n' $PORT "$WORK"
      for i in $(seq 0 $((N - 1))); do printf '  - { name: z%d.test, primary: { servers: [%s] } }\n' "$i" "${list%, }"; done
    } > s/vane.yaml
    "$VANED" -c s/vane.yaml > s.log 2>&1 &
  else
    {
      printf 'server:\n  rundir: "%s/s"\n  listen: 127.0.0.1@%d\n' "$WORK" $PORT
      printf 'database:\n  storage: "%s/s"\nremote:\n' "$WORK"
      for p in "$@"; do printf '  - id: r%s\n    address: 127.0.0.1@%s\n' "$p" "$p"; done
      printf 'template:\n  - id: default\n    storage: "%s/s"\n    zonefile-sync: -1\n    master: [%s]\nzone:\n' \
        "$WORK" "$(printf 'r%s, ' "$@" | sed 's/, $//')"
      for i in $(seq 0 $((N - 1))); do printf '  - domain: z%d.test\n' "$i"; done
    } > s/knot.conf
    /usr/sbin/knotd -c s/knot.conf > s.log 2>&1 &
  fi
  local pid=$! secs most rss idle
  read -r most secs < <("$SERVED" $PORT "$N" "$LIMIT")
  rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")
  sleep 2  # then its CPU while idle: the work every zone costs per tick
  idle=$(idle_cpu "$pid")
  stop_server "$pid"
  printf '| %s | %s | %s s | %s s | %s MB | %d %% |\n' "$server" "$([ $# = 1 ] && echo "the primary alone" || echo "a silent primary first")" \
    "$secs" "$most" "$rss" "$idle"
}

echo "$N zones of $RECORDS records; seconds until every zone answers, RSS then"
echo "| secondary | primaries | all served | 99 % served | RSS | idle CPU |"
echo "|---|---|---|---|---|---|"
for server in ${SERVERS:-vane knot}; do
  run $server $PRIMARY
  run $server $SILENT $PRIMARY
done
