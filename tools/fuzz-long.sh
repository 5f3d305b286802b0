#!/usr/bin/env bash
# Runs every fuzz target for longer than CI does: FUZZ_SECONDS per target (default 1800).
#   tools/fuzz-long.sh            30 minutes per target
#   FUZZ_SECONDS=7200 tools/fuzz-long.sh
# The corpus each run grows is kept in build/fuzz/corpus/<target>/ and reused by the next run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export FUZZ_SECONDS=${FUZZ_SECONDS:-1800}
exec tools/reliability.sh fuzz
