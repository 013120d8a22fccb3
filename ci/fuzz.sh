#!/usr/bin/env bash
# A short run of every fuzz target: a fixed number of executions from a fixed
# seed (libFuzzer does not promise the very same inputs every run, but the
# budget no longer depends on the machine's speed). The long runs are in
# tests/README.md.
set -euo pipefail
# Missing alerts on rustls's own paths (outside TLS Flags and the fork's hooks)
# are reported, not failed, here; see fuzz/README.md, "Alerts".
FUZZ_STRICT_ALERTS="${FUZZ_STRICT_ALERTS:-0}" cargo xtask fuzz --runs "${FUZZ_RUNS:-1500000}" --seed "${FUZZ_SEED:-1}"
