#!/usr/bin/env bash
# Local failover drill on the embedded default configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins
exec ./target/release/vipd drill "$@"
