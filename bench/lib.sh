# Shared by the bench scripts (sourced): CPU accounting from /proc, the bench zone, waiting for a server.

# thread_ticks PID PATTERN: utime+stime of the threads whose name matches
thread_ticks() {
  local t=0
  for d in /proc/"$1"/task/*; do
    grep -q "$2" "$d/comm" 2>/dev/null || continue
    t=$((t + $(sed 's/.*) //' "$d/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

# idle_cpu PID: % of a core the process used over the next 5 s.
idle_cpu() {
  local t0 t1
  t0=$(awk '{print $14 + $15}' "/proc/$1/stat")
  sleep 5
  t1=$(awk '{print $14 + $15}' "/proc/$1/stat")
  echo $(((t1 - t0) * 100 / $(getconf CLK_TCK) / 5))
}

# The bench zone and its queries: N names hN.ORIGIN with an A record each.
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

# The processes of a server (NSD forks), depth first.
pid_tree() { echo "$1"; for c in $(pgrep -P "$1" || true); do pid_tree "$c"; done; }

# Needs $PORT: the server answers NAME over TCP with an address in 10/8.
wait_answer() {  # wait_answer NAME TIMEOUT_S: until NAME has an A answer
  local deadline=$(( $(date +%s%N) + $2 * 1000000000 ))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    # Over TCP: a port not yet open is refused at once, whereas a UDP query
    # to it waits out kdig's whole (1 s) timeout and quantises the result.
    # Until the port is open, a connect from this shell is the probe: a
    # kdig process every 20 ms would take a good part of a core from a
    # server loading on every core.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then sleep 0.02; continue; fi
    if kdig @127.0.0.1 -p "$PORT" "$1" A +tcp +short +timeout=1 +retry=0 2>/dev/null | grep -q '^10\.'; then return 0; fi
    sleep 0.02
  done
  return 1
}

# Stops a server by PID, then anything else started from $WORK (but $KEEP_PID).
stop_server() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  # A server that dies of a signal other than ours (an abort, a segfault)
  # on the way out crashed: say so, or the bench's figures hide it.
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  if [ "$rc" -gt 128 ] && [ "$rc" != 143 ] && [ "$rc" != 137 ]; then
    echo "WARNING: server $1 died of signal $((rc - 128)) when stopped (a crash; see its log)" >&2
  fi
  # NSD's children and anything else left on the port
  for p in $(pgrep -f "$WORK" || true); do
    [ "$p" = "${KEEP_PID:-}" ] || kill -9 "$p" 2>/dev/null || true
  done
  sleep 0.3
}

# bench_work NAME: a scratch directory in $WORK and a list of PIDS to stop;
# on exit every PID, and anything else started from $WORK, is killed and
# $WORK removed.
bench_work() {
  WORK=$(mktemp -d "/tmp/vane-$1-XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  for p in $(pgrep -f "$WORK" || true); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
