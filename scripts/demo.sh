#!/usr/bin/env bash
# Set-up command 1: install what is missing, build, run vaned on the embedded demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages "${BUILD_PACKAGES[@]}" knot-dnsutils bind9-dnsutils
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVANE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target vaned vanectl
exec ./build/server/vaned --demo "$@"
