#!/usr/bin/env bash
# Runs every test of vipd (every crate of the workspace). Installs what the tests need from Debian's packages first
# (iproute2 for network namespaces, keepalived and FRR's vrrpd as interop peers, FRR and BIRD as BGP speakers, tshark/scapy as
# independent decoders). Must run as root: the integration tests build real networks
# out of network namespaces, veth pairs and a bridge.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v keepalived >/dev/null 2>&1 || need+=(keepalived)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
# Debian's python3 (a pyenv/venv python3 earlier on the PATH does not see python3-scapy).
/usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || need+=(python3-scapy)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)   # setpriv, chrt
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)   # cargo-deb's "$auto" depends
command -v man >/dev/null 2>&1 || need+=(man-db)   # the packaging test renders the man pages
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # the unit's verify and security score
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)   # LimitNOFILE in the local-adversary test
[ -x /usr/lib/frr/vrrpd ] || need+=(frr)   # FRR's vrrpd: the VMAC interop peer; bgpd/bfdd: the BGP tests
command -v bird >/dev/null 2>&1 || need+=(bird2)   # BIRD 2: the BGP tests' other speaker
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing ${need[*]}; run as root so they can be installed" >&2
        exit 1
    fi
    echo "test.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the network tests need root (network namespaces); run as root" >&2
    exit 1
fi

cargo build --workspace --all-targets --locked
# The Debian package for tests/packaging.rs, from the debug binaries just built (installs
# cargo-deb on first use, 1-2 min); set VIPD_DEB to test a release .deb instead.
if [ -z "${VIPD_DEB:-}" ]; then
    VIPD_DEB="$(bash scripts/package.sh --dev | tail -n 1)"
    VIPD_DEB="$(realpath "$VIPD_DEB")"
fi
# The same files as a later version, for the upgrade test (dpkg -i N+1 over N while it runs).
if [ -z "${VIPD_DEB_NEXT:-}" ]; then
    VIPD_DEB_NEXT="$(bash scripts/package.sh --dev-next | tail -n 1)"
    VIPD_DEB_NEXT="$(realpath "$VIPD_DEB_NEXT")"
fi
export VIPD_DEB VIPD_DEB_NEXT
cargo test --workspace --locked -- --include-ignored "$@"
