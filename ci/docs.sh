#!/usr/bin/env bash
# The workspace's API docs build without a warning: a broken or private
# intra-doc link fails here rather than in a reader's browser. Runs after
# the test step, whose build scripts it reuses (the dependencies are
# checked again, in check mode: about a minute from cold).
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
echo "docs: the workspace's documentation builds without warnings"
