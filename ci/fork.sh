#!/usr/bin/env bash
# The patched rustls as rustls's maintainers would check it: every file the
# series touches is formatted with rustls's own settings (fork/rustfmt.toml),
# and its docs build with no warning the pristine crate does not have too
# (the pinned release itself has one without the `fips` feature: a link to
# `default_fips_provider`). A `cargo doc` that fails fails this check.
set -euo pipefail
cd fork/rustls
git diff --name-only pristine -- '*.rs' | while read -r file; do
    # rustfmt reads fork/rustfmt.toml; --edition is the crate's.
    rustfmt --edition 2021 --check "$file"
done
doc_warnings() {
    local out
    out=$(cd "$1" && cargo doc --no-deps --features ring,aws_lc_rs 2>&1) || {
        echo "cargo doc failed in $1:" >&2
        echo "$out" | tail -20 >&2
        exit 1
    }
    echo "$out" | grep -E '^warning' | grep -v 'generated [0-9]* warning' | sort -u
}
vanilla_warnings=$(doc_warnings ../vanilla)
fork_warnings=$(doc_warnings .)
new=$(comm -13 <(echo "$vanilla_warnings") <(echo "$fork_warnings"))
if [ -n "$new" ]; then
    echo "cargo doc on the patched rustls warns where the pinned rustls does not:"
    echo "$new"
    exit 1
fi
echo "fork: formatted as rustls; docs add no warnings"
