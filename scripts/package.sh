#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed from crates.io when missing) and prints
# the path of the .deb on the last line of stdout.
#
#   bash scripts/package.sh            # -> target/debian/vipd_<version>-1_<arch>.deb
#   sudo dpkg -i target/debian/vipd_*.deb
#
# What goes where is [package.metadata.deb] in Cargo.toml: /usr/sbin/vipd, /usr/bin/vipctl,
# /lib/systemd/system/vipd.service (enabled; a no-op until /etc/vipd/vipd.toml exists),
# /usr/share/doc/vipd/ (README, docs, examples/). No active configuration is shipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: installing cargo-deb (cargo install cargo-deb --locked)" >&2
    cargo install cargo-deb --locked >&2
fi
# dpkg-shlibdeps (dpkg-dev) computes the shared-library dependencies ("$auto").
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
    echo "package.sh: dpkg-shlibdeps missing: apt-get install dpkg-dev" >&2
    exit 1
fi
cargo deb --locked --strip >&2
deb=$(ls -t target/debian/vipd_*.deb | head -n 1)
echo "$deb"
