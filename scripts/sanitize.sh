#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (CPU build; CUDA off).
# Not part of CI's run (it roughly doubles CI time on 2 cores): run it by hand before a release.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYOLOC_SANITIZE=ON -DYOLOC_WITH_CUDA=OFF >/dev/null
ninja -C build-asan ${YOLOC_JOBS:+-j$YOLOC_JOBS}
cd build-asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j2 --output-on-failure
