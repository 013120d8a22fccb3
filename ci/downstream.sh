#!/usr/bin/env bash
# The crates as a user depends on them: a scratch project outside the workspace,
# on the exported fork, built offline; and the one clear error without the patch.
set -euo pipefail
cargo xtask downstream
