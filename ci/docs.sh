#!/usr/bin/env bash
# The workspace's API docs build without a warning: a broken or private
# intra-doc link fails here rather than in a reader's browser. Runs after
# the test step, whose build scripts it reuses (the dependencies are
# checked again, in check mode: about a minute from cold).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every feature, so the integrations' docs (axum, reqwest, hyper-rustls...)
# are checked too: once, where clippy's step used to build the crates'
# docs a second time.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --all-features --quiet
echo "docs: the workspace's documentation builds without warnings, with every feature"
