#!/usr/bin/env bash
set -euo pipefail
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
(cd xtask && cargo fmt --check)
