#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, bans (duplicate versions, wildcards) and sources,
# with cargo-deny (installed from crates.io when missing, ~5 min on 2 cores the first time).
# The advisory database is a git repository this workplace cannot reach, so `advisories` is
# checked only where it can be: `cargo deny check advisories` on a machine with network access.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version >/dev/null 2>&1; then
    echo "deny.sh: installing cargo-deny $CARGO_DENY_VERSION (cargo install cargo-deny --locked)" >&2
    cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" >&2
fi
cargo deny --locked --workspace check licenses bans sources
