//! Shared helpers for the network integration tests: a thin, test-style layer over
//! [`vipd_lab`] (throw-away LANs made of network namespaces, veth pairs and a bridge,
//! running code and commands inside them, tshark captures), plus waiting helpers.
//!
//! Use from a test file with `mod common;` and e.g.
//! ```ignore
//! let lan = common::Lan::new("my_test", 2).unwrap();
//! let h0 = lan.host(0);
//! h0.run_async(|| async { /* tokio code inside h0's namespace */ }).unwrap();
//! ```
//! Everything is torn down when the [`Lan`] is dropped, also when the test panics.
//! Network tests need root: [`require_root`] panics with a clear message otherwise
//! (and [`Lan::new`] returns a `PermissionDenied` error).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub use vipd_lab::capture::{Capture, CapturedPacket, parse_pcap};
pub use vipd_lab::lan::{Host, Lan, netem_available, unique_stem};
pub use vipd_lab::ns::{AddrInfo, ChildGuard, LinkState, Netns, parse_mac};

use std::time::{Duration, Instant};

/// Panics unless running as root (network namespaces, veth, raw sockets need it).
pub fn require_root() {
    if let Err(e) = vipd_lab::lan::require_root() {
        panic!("{e}");
    }
}

/// Asserts that a vipd log reads like sentences: no Rust Debug output (`Some(..)`, `None`,
/// quoted lists) and no module paths.
#[allow(dead_code)] // not every test file reads logs
#[track_caller]
pub fn assert_readable_log(log: &str) {
    for line in log.lines() {
        for bad in [
            "Some(",
            "None",
            "[\"",
            "vipd::daemon",
            "vipd::track",
            "vipd_config",
        ] {
            assert!(!line.contains(bad), "log line with `{bad}`: {line}");
        }
    }
}

/// `vipctl --socket SOCK status --json` of the vipd `child`, parsed (panics with its log when
/// vipctl fails).
#[allow(dead_code)] // not every test file asks for status
#[track_caller]
pub fn vipctl_status(sock: &std::path::Path, child: &ChildGuard) -> vipd::ctl::Status {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(sock)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vipctl status: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        child.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `cond` every 10 ms until it is true or `timeout` elapses.
/// Returns how long it took, or `None` on timeout.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Async variant of [`wait_until`] (tokio sleep between polls).
pub async fn wait_until_async(
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A scratch directory removed on drop (for pcaps and logs).
pub struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let (stem, _) = unique_stem(tag);
        let path = std::env::temp_dir().join(format!("vipd-test-{stem}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Checks `config` with `vipd --check` (panics with its diagnostics) and starts vipd on it,
/// with debug logs, inside `host`'s namespace. The guard kills it on drop.
pub fn start_vipd(host: &Netns, config: &std::path::Path) -> ChildGuard {
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["--check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "config check failed: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    host.spawn(&[
        env!("CARGO_BIN_EXE_vipd"),
        "--config",
        config.to_str().unwrap(),
        "--log",
        "debug",
    ])
    .unwrap()
}

/// Starts vipd on `config` in `host`'s namespace at real-time round-robin priority 10, as
/// packaging/vipd.service runs it (`CPUSchedulingPolicy=rr`): on a loaded machine (CI shares
/// 2 cores) a normal-priority agent waits up to tens of ms for a CPU, which is the
/// scheduler's doing, not vipd's. For tests that time vipd on the wire.
pub fn start_vipd_realtime(host: &Netns, config: &std::path::Path) -> ChildGuard {
    host.spawn(&[
        "chrt",
        "-r",
        "10",
        env!("CARGO_BIN_EXE_vipd"),
        "--config",
        config.to_str().unwrap(),
    ])
    .unwrap()
}

/// Pings `ip` from the LAN's first client every 20 ms until `stop`: (sent, lost), a ping
/// without an answer within 500 ms counting as lost.
pub fn ping_loop(
    lan: &Lan,
    ip: std::net::IpAddr,
    stop: &std::sync::atomic::AtomicBool,
) -> (u32, u32) {
    let (mut sent, mut lost) = (0, 0);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        sent += 1;
        if !lan
            .client(0)
            .ping_timeout(ip, Duration::from_millis(500))
            .unwrap()
        {
            lost += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (sent, lost)
}

/// The MAC the LAN's first client has in its neighbour table for `vip` (`ip neigh`), if any.
pub fn client_mac(lan: &Lan, vip: std::net::IpAddr) -> Option<[u8; 6]> {
    let out = lan
        .client(0)
        .ip(&["neigh", "show", &vip.to_string()])
        .unwrap_or_default();
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .and_then(parse_mac)
}
