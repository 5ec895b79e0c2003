//! The lab: what the local failover drill, the network tests and the benchmarks share —
//! throw-away LANs of network namespaces, processes inside them, and observers of the wire.
//!
//! - [`lan`] / [`ns`]: build a bridged LAN of namespaces, run commands and code inside them.
//! - [`capture`]: tshark captures (independent decoder).
//! - [`sniff`]: a timestamping AF_PACKET observer of adverts, GARPs and NAs.
//! - [`watch`]: timestamped netlink address events of a namespace.
//! - [`drill`]: the local failover drill (the `vipd-drill` binary, run by `scripts/drill.sh`).
//! - [`toml_out`]: writing vipd.toml with the configuration's own key constants.
//! - [`keepalived`]: keepalived as an interop peer / benchmark baseline, and configs for both.

#![warn(unreachable_pub)]

pub mod bgp;
pub mod capture;
pub mod drill;
pub mod frr;
pub mod gendocs;
pub mod keepalived;
pub mod lan;
pub mod netns;
pub mod ns;
pub mod sniff;
pub mod toml_out;
pub mod watch;

use std::io;
use std::path::PathBuf;

/// The product binary `name` (`vipd`, `vipctl`) of the same build as the running lab binary:
/// cargo puts every binary of a profile in one directory (`target/<profile>/`), and examples
/// one level below it (`target/<profile>/examples/`).
pub fn sibling_binary(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        if d.file_name().is_some_and(|n| n == "target") {
            break;
        }
        dir = d.parent();
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "no `{name}` binary next to {} (build it: cargo build -p vipd --bins, or pass its path)",
            exe.display()
        ),
    ))
}
