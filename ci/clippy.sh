#!/usr/bin/env bash
set -euo pipefail
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo clippy -p rustls-tls-flags --no-default-features -- -D warnings
(cd xtask && cargo clippy -- -D warnings)
# Each integration feature on its own (in the workspace, dev-dependencies would
# otherwise lend it features it does not ask for).
for feature in tokio axum reqwest hyper-rustls serde; do
    cargo clippy -p rustls-req-client-auth --no-default-features --features "ring $feature" -- -D warnings
done
# The docs are checked once, with every feature, by ci/docs.sh.
