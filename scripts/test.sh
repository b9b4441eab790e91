#!/usr/bin/env bash
# Set-up command 2: install what is missing, build, run the whole test suite —
# once as a normal build and once with ASan+UBSan — plus a Release build and
# a bounded run of every fuzz harness.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
# An OpenAPI validator, which Debian lacks, from the npm registry (tests/api).
command -v npm >/dev/null || ensure_packages nodejs npm
[ -d tests/api/node_modules/@apidevtools/swagger-parser ] || npm ci --prefix tests/api --no-audit --no-fund
jobs=$(nproc)

echo "== build + test (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVANE_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 300)

# Every build type a user may choose must compile (GCC's -O3 warnings differ).
echo "== build (Release, default options)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$jobs"

# Every parser that takes outside input, fuzzed for a bounded time under
# ASan+UBSan from the seed corpora in tests/fuzz/corpus (copied: what a run
# finds stays out of the tree unless someone adds it). Long runs: bench/RESULTS.md.
if [ "${VANE_SKIP_FUZZ:-0}" != 1 ]; then
  secs=${FUZZ_SECONDS:-15}
  echo "== fuzz (libFuzzer, ${secs}s per harness)"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVANE_FUZZ=ON -DVANE_TESTS=OFF >/dev/null
  harnesses="query zone config report admin xfr xfr_in api"
  cmake --build build-fuzz -j"$jobs" --target $(for h in $harnesses; do printf 'fuzz_%s ' "$h"; done)
  root=$PWD
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  for h in $harnesses; do
    mkdir -p "$work/$h"
    cp tests/fuzz/corpus/"$h"/* "$work/$h/"
    (cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$root/build-fuzz/tests/fuzz/fuzz_$h" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
      "$work/$h" >"$work/$h.log" 2>&1) || { tail -50 "$work/$h.log"; echo "fuzz_$h FAILED"; exit 1; }
    echo "fuzz_$h: $(grep -E '^stat::number_of_executed_units' "$work/$h.log" | awk '{print $2}') runs, no crash"
  done
fi

if [ "${VANE_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build + test (ASan+UBSan)"
  cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DVANE_SANITIZE=ON -DVANE_TESTS=ON >/dev/null
  cmake --build build-sanitize -j"$jobs"
  (cd build-sanitize && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" --timeout 600)
fi
