#!/usr/bin/env bash
# Formatting of this project's own code only: `cargo fmt --all` would also
# reformat path dependencies, such as the pristine rustls in fork/vanilla.
set -euo pipefail
members=$(cargo metadata --no-deps --format-version 1 \
    | python3 -c 'import json, sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))')
# shellcheck disable=SC2086
cargo fmt --check $members
(cd fuzz && cargo fmt --check)
(cd xtask && cargo fmt --check)
