#!/usr/bin/env bash
# Line coverage of include/ by the test suite: builds the `coverage` preset (g++ --coverage), runs the tests
# and writes build/coverage/report.txt and build/coverage/html/index.html (gcovr, Debian package gcovr).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v gcovr >/dev/null || { echo "coverage.sh: gcovr is missing (apt-get install gcovr)" >&2; exit 1; }
cmake --preset coverage >/dev/null
find build/coverage -name '*.gcda' -delete 2>/dev/null || true
cmake --build --preset coverage -j "$(nproc)"
ctest --preset coverage
mkdir -p build/coverage/html
# Threads and forked test processes update the counters concurrently, which can leave a negative branch
# count in gcov's output: skip such lines (only branch data is affected; the report is of lines).
gcovr --root . --filter 'include/' --object-directory build/coverage -j "$(nproc)" \
      --exclude-unreachable-branches --exclude-throw-branches --gcov-ignore-parse-errors \
      --txt build/coverage/report.txt --html-details build/coverage/html/index.html --print-summary
echo "coverage.sh: per-file report in build/coverage/report.txt"
