//! vipd: a VRRP virtual-IP failover agent.
//!
//! Layout (sans-IO core, thin I/O shell):
//! - [`wire`]: pure packet codecs (VRRPv2/v3, IPv4/IPv6 headers, gratuitous ARP, unsolicited NA).
//! - [`proto`]: the pure RFC 9568/5798/3768 state machine; takes events and `now`, returns actions.
//! - [`sim`]: a deterministic multi-node simulator over [`proto`] (virtual clock, lossy LAN).
//! - [`config`]: TOML configuration, validation with file:line:column diagnostics.
//! - [`import`]: keepalived.conf → vipd TOML converter (behind `vipctl import-keepalived`).
//! - [`net`]: Linux I/O: raw VRRP sockets, AF_PACKET frames, netlink (behind one trait).
//! - [`track`]: health trackers (scripts, HTTP, TCP, files, processes, interfaces) → priority/fault.
//! - [`notify`]: keepalived-style notify programs and the JSON-lines events socket.
//! - [`daemon`]: the tokio runtime that wires the above together.
//! - [`lab`]: throw-away LANs of network namespaces (the drill, network tests, benchmarks).

pub mod config;
pub mod ctl;
pub mod daemon;
pub mod import;
pub mod lab;
pub mod net;
pub mod notify;
pub mod proto;
pub mod sim;
pub mod sys;
pub mod track;
pub mod wire;
