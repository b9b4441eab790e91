#!/usr/bin/env bash
# Set-up command 2: install what is missing, build, run the whole test suite —
# once as a normal build and once with ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
jobs=$(nproc)

echo "== build + test (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVANE_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 300)

# Every build type a user may choose must compile (GCC's -O3 warnings differ).
echo "== build (Release, default options)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$jobs"

if [ "${VANE_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build + test (ASan+UBSan)"
  cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DVANE_SANITIZE=ON -DVANE_TESTS=ON >/dev/null
  cmake --build build-sanitize -j"$jobs"
  (cd build-sanitize && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" --timeout 600)
fi
