#!/usr/bin/env bash
# orchestrix developer entry point.
#
#   ./build.sh example    build and run the main example, the bank-account application of
#                         examples/08-bank; its events stay in build/orchestrix-bank.db, so each run
#                         continues from the last (extra arguments go to it: ./build.sh example balance demo)
#   ./build.sh test       build and run every test with g++, then with clang++ under ASan+UBSan, then the
#                         multi-threaded ones with clang++ under TSan (warnings are errors)
#   ./build.sh sanitize   only the two clang++ runs of test: ASan+UBSan, then TSan
#   ./build.sh deps       only install the Debian packages the project needs
#
# On Debian or Ubuntu, the missing packages a command needs are installed with apt-get (as root, or through
# sudo): example installs only the toolchain, SQLite, nlohmann_json and fmt; test, sanitize and deps every
# package. If they cannot be installed, the command stops (exit 1) naming them and the apt-get command.
# Elsewhere, CMake finds installed packages or downloads nlohmann_json, fmt and Catch2 (FetchContent); the test
# presets fail naming any other missing one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Debian packages: toolchain, libraries, and the PostgreSQL and NATS servers the durable-store tests start
# themselves.
packages=(cmake ninja-build g++ clang catch2 nlohmann-json3-dev libfmt-dev libbenchmark-dev libsqlite3-dev
          libpq-dev postgresql gnuplot-nox python3 libclang-rt-14-dev clang-tidy clang-format gcovr
          libcpp-httplib-dev pkgconf libcli11-dev libsodium-dev libzstd-dev libnats-dev nats-server
          doxygen libasio-dev)

# What each command cannot do without. test, sanitize and deps (what CI runs) need every package above; the
# example needs the toolchain, SQLite, nlohmann_json and fmt.
example_packages=(cmake ninja-build g++ libsqlite3-dev nlohmann-json3-dev libfmt-dev)

# The packages among "$@" that are not installed, one a line.
missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

# install_deps CMD [NEEDED...]: installs the packages CMD needs (NEEDED, by default every package) that are
# missing, and only those, with apt-get (as root, or through sudo). When they cannot be installed it names them
# and the apt-get command, and stops (exit 1).
install_deps() {
    local cmd=$1
    shift
    local needed=("$@")
    [ ${#needed[@]} -gt 0 ] || needed=("${packages[@]}")
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        if [ "$cmd" = deps ]; then
            echo "build.sh deps: installs Debian packages, and this system has no dpkg-query/apt-get" >&2
            exit 1
        fi
        echo "build.sh: not Debian or Ubuntu: packages not checked; CMake names any it cannot find" >&2
        return 0
    fi
    local missing
    mapfile -t missing < <(missing_packages "${needed[@]}")
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=() reason=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            reason="not root, and sudo is missing or needs a password"
        fi
    fi
    if [ -z "$reason" ]; then
        echo "build.sh: installing ${missing[*]}"
        if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
               "${missing[@]}"; then
            return 0
        fi
        reason="apt-get failed"
    fi
    echo "build.sh: missing Debian packages: ${missing[*]}" >&2
    echo "build.sh: cannot install them ($reason); run:" >&2
    echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    local lacking
    mapfile -t lacking < <(missing_packages "${needed[@]}")
    echo "build.sh $cmd: stopping: it needs ${lacking[*]}" >&2
    exit 1
}

jobs=$(nproc 2>/dev/null || echo 2)

case "${1:-}" in
deps)
    install_deps deps
    ;;
example)
    install_deps example "${example_packages[@]}"
    # The example needs neither the tests nor Catch2: build/dev is configured without them (ctest --preset dev
    # then runs the examples; configure it with -DORCHESTRIX_BUILD_TESTS=ON to have the tests there again).
    echo "== dev: configure (without the tests), build example-08-bank"
    cmake --preset dev -DORCHESTRIX_BUILD_TESTS=OFF
    cmake --build --preset dev --target example-08-bank -j "$jobs"
    echo "== example-08-bank"
    ./build/dev/examples/example-08-bank --db build/orchestrix-bank.db "${@:2}"
    ;;
test | sanitize)
    install_deps "$1"
    # clang++ builds the tests once, under the sanitizers (the plain clang preset stays for development:
    # cmake --preset clang); g++ builds everything else too: examples, header checks, packaging.
    presets=(asan tsan)
    [ "$1" = test ] && presets=(gcc asan tsan)
    for preset in "${presets[@]}"; do
        echo "== $preset: configure, build, test"
        cmake --preset "$preset"
        cmake --build --preset "$preset" -j "$jobs"
        ctest --preset "$preset"
    done
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
