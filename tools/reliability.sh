#!/usr/bin/env bash
# Reliability checks beyond the unit tests (see docs/reliability.md):
#
#   tools/reliability.sh fuzz     build the libFuzzer targets (clang++, -fsanitize=fuzzer,address,undefined)
#                                 and run each for FUZZ_SECONDS seconds (default 60) on its seed corpus
#   tools/reliability.sh faults   build the fault-injection tests in the asan preset and run them
#                                 (ASan + UBSan + LeakSanitizer), printing the fault points survived
#   tools/reliability.sh lint     clang-tidy (checked-in .clang-tidy) over test translation units that
#                                 cover every header (LINT_ALL=1: all of them); fails on findings in include/
#   tools/reliability.sh format   fails if clang-format (checked-in .clang-format) would change a tracked
#                                 .hpp or .cpp file
#   tools/reliability.sh all      the four above (what CI runs)
#
# Build directories: build/fuzz, build/asan (the preset's), build/lint; override with FUZZ_BUILD_DIR,
# ASAN_BUILD_DIR, LINT_BUILD_DIR. A crash found by a fuzzer is saved under <fuzz build dir>/crashes/;
# fix the bug and add the input to fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=$(nproc 2>/dev/null || echo 2)
fuzz_targets=(event_json snapshot_state store_differential)

run_fuzz() {
    local seconds=${FUZZ_SECONDS:-60}
    local dir=${FUZZ_BUILD_DIR:-build/fuzz}
    echo "== fuzz: build (clang++) into $dir"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DORCHESTRIX_BUILD_FUZZERS=ON -DORCHESTRIX_BUILD_TESTS=OFF -DORCHESTRIX_BUILD_EXAMPLES=OFF \
          -DORCHESTRIX_INSTALL=OFF >/dev/null
    cmake --build "$dir" -j "$jobs"
    mkdir -p "$dir/crashes"
    local failed=0 summary=()
    for target in "${fuzz_targets[@]}"; do
        local exe="$dir/fuzz/orchestrix_fuzz_$target" work="$dir/corpus/$target" log="$dir/$target.log"
        mkdir -p "$work"
        echo "== fuzz: $target for ${seconds} s"
        # New inputs go to the work corpus (first directory); the checked-in seeds are only read.
        if ! "$exe" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
                    -artifact_prefix="$dir/crashes/$target-" "$work" "fuzz/corpus/$target" >"$log" 2>&1; then
            failed=1
            echo "fuzz: $target FAILED; the input is in $dir/crashes/; the end of its log:" >&2
            grep -v -e '^#' -e 'NEW_FUNC' "$log" | tail -40 >&2
        fi
        local runs
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        summary+=("$(printf '%-20s %12s executions' "$target" "${runs:-?}")")
    done
    echo "== fuzz: summary"
    printf '  %s\n' "${summary[@]}"
    return $failed
}

run_faults() {
    local dir=${ASAN_BUILD_DIR:-build/asan}
    echo "== faults: build orchestrix_sqlite_fault_tests (ASan + UBSan) into $dir"
    if [ "$dir" = build/asan ]; then
        cmake --preset asan -DORCHESTRIX_BUILD_EXAMPLES=OFF >/dev/null
    else
        cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
              -DORCHESTRIX_SANITIZE=address,undefined -DORCHESTRIX_BUILD_EXAMPLES=OFF >/dev/null
    fi
    cmake --build "$dir" --target orchestrix_sqlite_fault_tests -j "$jobs"
    echo "== faults: run"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$dir/tests/orchestrix_sqlite_fault_tests"
}

run_lint() {
    local dir=${LINT_BUILD_DIR:-build/lint}
    local tidy
    tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
    [ -n "$tidy" ] || { echo "lint: clang-tidy is missing (apt-get install clang-tidy)" >&2; return 1; }
    echo "== lint: configure $dir (compile_commands.json)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
          -DORCHESTRIX_BUILD_EXAMPLES=OFF >/dev/null
    # By default a set of translation units that together include every header and instantiate its
    # templates (about a minute on 2 cores); LINT_ALL=1 lints every test translation unit (several minutes).
    local units
    if [ "${LINT_ALL:-0}" = 1 ]; then
        units=$(python3 - "$dir/compile_commands.json" <<'PY'
import json, os, sys
seen = set()
for entry in json.load(open(sys.argv[1])):
    f = os.path.relpath(os.path.join(entry["directory"], entry["file"]))
    if f.startswith("tests/") and "/packaging/" not in f and "/compile_fail/" not in f and f not in seen:
        seen.add(f)
        print(f)
PY
)
    else
        units="$dir/tests/headers/odr_a.cpp"
        for f in tests/json/codec.cpp tests/json/repository_snapshots.cpp tests/memory/application.cpp \
                 tests/async/bus.cpp tests/sqlite/event_store.cpp \
                 tests/postgres/event_store.cpp tests/testing/aggregate_fixture.cpp \
                 tests/projection/projection.cpp tests/sqlite/checkpoint_store.cpp \
                 tests/json/cloudevents.cpp tests/prometheus/end_to_end.cpp tests/memory/personal.cpp \
                 tests/sqlite/lifecycle.cpp tests/postgres/lifecycle.cpp tests/crypto/codec.cpp \
                 tests/compression/codec.cpp tests/jetstream/event_store.cpp; do
            [ -f "$f" ] && units+=$'\n'"$f"
        done
    fi
    echo "== lint: clang-tidy over $(echo "$units" | wc -l) test translation units"
    local log="$dir/clang-tidy.log"
    # -quiet: only findings; the header filter (.clang-tidy) keeps findings to include/orchestrix.
    echo "$units" | xargs -P "$jobs" -n 1 "$tidy" -p "$dir" -quiet >"$log" 2>/dev/null || true
    local findings
    findings=$(grep -E '^/.*/include/orchestrix/.*(warning|error):' "$log" | sort -u || true)
    if [ -n "$findings" ]; then
        echo "lint: clang-tidy findings in include/:" >&2
        echo "$findings" >&2
        return 1
    fi
    echo "lint: no clang-tidy findings in include/"
}

run_format() {
    local format
    format=$(command -v clang-format-14 || command -v clang-format || true)
    [ -n "$format" ] || { echo "format: clang-format is missing (apt-get install clang-format)" >&2; return 1; }
    local files
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        files=$(git ls-files '*.hpp' '*.cpp')
    else
        files=$(find include tests examples bench fuzz -name '*.hpp' -o -name '*.cpp' 2>/dev/null)
    fi
    local bad=()
    for f in $files; do
        [ -f "$f" ] || continue
        "$format" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if [ ${#bad[@]} -gt 0 ]; then
        echo "format: clang-format would change ${#bad[@]} file(s) (run: clang-format -i <file>):" >&2
        printf '  %s\n' "${bad[@]}" >&2
        return 1
    fi
    echo "format: all $(echo "$files" | wc -w) files are formatted"
}

case "${1:-}" in
fuzz) run_fuzz ;;
faults) run_faults ;;
lint) run_lint ;;
format) run_format ;;
all)
    status=0
    run_fuzz || status=1
    run_faults || status=1
    run_lint || status=1
    run_format || status=1
    exit $status
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
