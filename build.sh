#!/usr/bin/env bash
# orchestrix developer entry point.
#
#   ./build.sh example    build and run the main example, the bank-account application of
#                         examples/08-bank; its events stay in build/orchestrix-bank.db, so each run
#                         continues from the last (extra arguments go to it: ./build.sh example balance demo)
#   ./build.sh test       build and run every test, with g++ and with clang++ (warnings are errors)
#   ./build.sh sanitize   build and run the tests under ASan+UBSan, then the multi-threaded ones under TSan
#                         (clang++)
#   ./build.sh deps       only install the Debian packages the project needs
#
# On Debian or Ubuntu, missing packages are installed with apt-get (as root, or through sudo). Elsewhere,
# CMake finds installed packages or, on a machine with internet, downloads them (FetchContent).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Debian packages: toolchain, libraries, and the PostgreSQL server the durable-store tests start themselves.
packages=(cmake ninja-build g++ clang catch2 nlohmann-json3-dev libfmt-dev libbenchmark-dev libsqlite3-dev
          libpq-dev postgresql gnuplot-nox python3 libclang-rt-14-dev clang-tidy clang-format gcovr)

install_deps() {
    command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 || return 0
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            echo "build.sh: missing Debian packages: ${missing[*]}" >&2
            echo "build.sh: install them with: sudo apt-get install -y ${missing[*]}" >&2
            echo "build.sh: continuing; CMake will try to download what it cannot find" >&2
            return 0
        fi
    fi
    echo "build.sh: installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

jobs=$(nproc 2>/dev/null || echo 2)

case "${1:-}" in
deps)
    install_deps
    ;;
example)
    install_deps
    cmake --preset dev >/dev/null
    cmake --build --preset dev --target example-08-bank -j "$jobs" >/dev/null
    ./build/dev/examples/example-08-bank --db build/orchestrix-bank.db "${@:2}"
    ;;
test)
    install_deps
    for preset in gcc clang; do
        echo "== $preset: configure, build, test"
        cmake --preset "$preset"
        cmake --build --preset "$preset" -j "$jobs"
        ctest --preset "$preset"
    done
    ;;
sanitize)
    install_deps
    for preset in asan tsan; do
        echo "== $preset: configure, build, test"
        cmake --preset "$preset" -DORCHESTRIX_BUILD_EXAMPLES=OFF
        cmake --build --preset "$preset" -j "$jobs"
        ctest --preset "$preset"
    done
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
