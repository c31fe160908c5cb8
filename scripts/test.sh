#!/usr/bin/env bash
# Quick start, command 2: install what is missing, build with AddressSanitizer
# and UndefinedBehaviorSanitizer, and run the whole test suite (unit,
# integration against the fake Mattermost server, fuzz corpus replay).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build-asan -DMM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug > /dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
ctest --output-on-failure -j2 "$@"
