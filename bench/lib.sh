# Shared by bench/run.sh and bench/cluster.sh (sourced): CPU accounting from /proc.

# thread_ticks PID PATTERN: utime+stime of the threads whose name matches
thread_ticks() {
  local t=0
  for d in /proc/"$1"/task/*; do
    grep -q "$2" "$d/comm" 2>/dev/null || continue
    t=$((t + $(sed 's/.*) //' "$d/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
