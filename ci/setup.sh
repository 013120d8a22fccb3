#!/usr/bin/env bash
# Installs what CI needs beyond the Rust toolchain. Idempotent.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (about 2.5 minutes)"
    cargo install cargo-fuzz --locked --quiet
fi
# The fork (fork/rustls, fork/vanilla) must exist before cargo can load the workspace.
cargo xtask fork
