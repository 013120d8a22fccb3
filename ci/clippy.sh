#!/usr/bin/env bash
set -euo pipefail
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo clippy -p rustls-tls-flags --no-default-features -- -D warnings
(cd xtask && cargo clippy -- -D warnings)
