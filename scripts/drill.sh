#!/usr/bin/env bash
# The local failover drill on vipd's embedded default configuration: builds vipd, starts
# three agents in network namespaces (a bridge namespace as the switch, one namespace per
# load balancer, one client), crashes the master, stops the next one cleanly, and prints the
# timeline of each takeover next to its protocol bound. Needs root (network namespaces).
# Options are passed through: scripts/drill.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "drill.sh: the drill builds network namespaces: run it as root" >&2
    exit 1
fi
if ! command -v ip >/dev/null 2>&1; then
    echo "drill.sh: installing iproute2" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi
cargo build --release --locked -p vipd -p vipd-lab --bins
exec ./target/release/vipd-drill "$@"
