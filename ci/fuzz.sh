#!/usr/bin/env bash
# A short run of every fuzz target; the long runs are described in fuzz/README.md.
set -euo pipefail
cargo xtask fuzz --seconds "${FUZZ_SECONDS:-60}"
