#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed from crates.io when missing) and prints
# the path of the .deb on the last line of stdout.
#
#   bash scripts/package.sh          # release build -> target/debian/vipd_<version>-1_<arch>.deb
#   bash scripts/package.sh --dev    # CI: packages the debug binaries `cargo build` already made
#                                    #     (same files, unit and scripts; seconds instead of a
#                                    #     release build) -> target/debian/vipd-dev_<arch>.deb
#   bash scripts/package.sh --dev-next  # the same files as a later version (revision 1+next),
#                                    #     for the package upgrade test -> vipd-dev-next_<arch>.deb
#   sudo dpkg -i target/debian/vipd_*.deb
#
# What goes where is [package.metadata.deb] in crates/vipd/Cargo.toml: /usr/sbin/vipd, /usr/bin/vipctl,
# /usr/lib/systemd/system/vipd.service (enabled; a no-op until /etc/vipd/vipd.toml exists),
# /usr/share/doc/vipd/ (README, docs, examples/). No active configuration is shipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the --dev mode relies on cargo-deb accepting the dev profile (a warning in 3.x).
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: installing cargo-deb $CARGO_DEB_VERSION (cargo install cargo-deb --locked)" >&2
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" >&2
fi
# dpkg-shlibdeps (dpkg-dev) computes the shared-library dependencies ("$auto").
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
    echo "package.sh: dpkg-shlibdeps missing: apt-get install dpkg-dev" >&2
    exit 1
fi
mkdir -p target/debian
# Man pages and completions, generated from the clap definitions and the configuration's types
# (vipd-lab's vipd-gen-docs; the package's assets name target/gen).
rm -rf target/gen
cargo run --locked -q -p vipd-lab --bin vipd-gen-docs -- target/gen >&2
gzip -9n target/gen/man/*
# The docs as installed: README.md and CHANGELOG.md at the top, docs/*.md below, examples/ for
# the repository's config/ (links rewritten to match).
mkdir -p target/gen/doc/docs
cp README.md CHANGELOG.md CONTRIBUTING.md target/gen/doc/
cp docs/*.md target/gen/doc/docs/
sed -i -e 's#](config/#](examples/#g' target/gen/doc/*.md
sed -i -e 's#](\.\./config/#](../examples/#g' target/gen/doc/docs/*.md
if [ "${1:-}" = "--dev" ] || [ "${1:-}" = "--dev-next" ]; then
    arch=$(dpkg --print-architecture)
    out="target/debian/vipd-dev_${arch}.deb"
    revision=1
    if [ "$1" = "--dev-next" ]; then
        out="target/debian/vipd-dev-next_${arch}.deb"
        revision="1+next"
    fi
    cargo build --locked -p vipd --bins >&2
    cargo deb -p vipd --locked --strip --profile dev --no-build --deb-revision "$revision" -o "$out" >&2 2> >(grep -v "dev profile is not supported\|To enable debug symbols\|Only source paths starting with" >&2)
    echo "$out"
else
    cargo deb -p vipd --locked --strip >&2 2> >(grep -v "Only source paths starting with" >&2)
    ls -t target/debian/vipd_*.deb | head -n 1
fi
