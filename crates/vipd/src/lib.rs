//! vipd: a VRRP virtual-IP failover agent — the daemon crate (the I/O shell).
//!
//! The pure layers are their own crates, so the compiler keeps I/O out of them:
//! `vipd-wire` (packet codecs), `vipd-proto` (the state machine, the receive policy and
//! advert building) and `vipd-config` (typed configuration and the keepalived importer).
//! This crate is the shell around them:
//! - [`net`]: Linux I/O: raw VRRP sockets, AF_PACKET frames, netlink (behind one trait), and
//!   the bounded wire observer of `vipctl drill failover`.
//! - [`track`]: health trackers (scripts, HTTP, TCP, files, processes, interfaces) → priority/fault.
//! - [`notify`]: keepalived-style notify programs and the JSON-lines events socket.
//! - [`ctl`]: the control protocol (`vipctl`), status and metrics.
//! - [`daemon`]: the tokio runtime that wires the above together.
//!
//! The test lab (network namespaces, keepalived driver, captures, the drill) and the
//! simulator are dev-only crates (`vipd-lab`, `vipd-sim`) and never reach these binaries.

#![warn(unreachable_pub)]

pub mod cli;
pub mod ctl;
pub mod daemon;
pub mod logfmt;
pub mod net;
pub mod notify;
pub mod ratelimit;
pub mod sys;
pub mod track;
