#!/usr/bin/env bash
# A short, deterministic run of every fuzz target: a fixed seed and number of
# executions explore the same inputs every time, so CI judges the change, not
# the luck of the draw. The long, randomized runs are in tests/README.md.
set -euo pipefail
cargo xtask fuzz --runs "${FUZZ_RUNS:-1500000}" --seed "${FUZZ_SEED:-1}"
