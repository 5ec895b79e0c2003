//! The lab: what the local failover drill, the network tests and the benchmarks share —
//! throw-away LANs of network namespaces, processes inside them, and observers of the wire.
//!
//! - [`lan`] / [`ns`]: build a bridged LAN of namespaces, run commands and code inside them.
//! - [`capture`]: tshark captures (independent decoder).
//! - [`sniff`]: a timestamping AF_PACKET observer of adverts, GARPs and NAs.
//! - [`watch`]: timestamped netlink address events of a namespace.
//! - [`drill`]: `vipd drill`, the local failover drill.
//! - [`keepalived`]: keepalived as an interop peer / benchmark baseline, and configs for both.

pub mod capture;
pub mod drill;
pub mod keepalived;
pub mod lan;
pub mod netns;
pub mod ns;
pub mod sniff;
pub mod watch;
