//! Shared harness for the network integration tests: throw-away LANs made of network
//! namespaces, veth pairs and a bridge, plus helpers to run code and commands inside
//! them, capture traffic (tshark) and wait for conditions.
//!
//! Use from a test file with `mod common;` and e.g.
//! ```ignore
//! let lan = common::Lan::new("my_test", 2);
//! let h0 = lan.host(0);
//! h0.run_async(|| async { /* tokio code inside h0's namespace */ });
//! ```
//! Everything is torn down when the [`Lan`] is dropped, also when the test panics.
//! Network tests need root: [`require_root`] panics with a clear message otherwise.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod capture;
pub mod lan;
pub mod ns;

pub use capture::{Capture, CapturedPacket};
pub use lan::{Host, Lan, netem_available};
pub use ns::{AddrInfo, ChildGuard, LinkState, Netns};

use std::time::{Duration, Instant};

/// Panics unless running as root (network namespaces, veth, raw sockets need it).
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("network tests need root: run scripts/test.sh as root");
    }
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

/// A process-unique, test-unique name stem: `vt` + hash(tag) + pid + counter.
pub(crate) fn unique_stem(tag: &str) -> (String, u32) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // FNV-1a, 16 bits are plenty next to pid + counter.
    let mut h: u32 = 0x811c_9dc5;
    for b in tag.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let pid = std::process::id();
    (format!("vt{:04x}-{pid}-{n}", h & 0xffff), n)
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
        std::fs::create_dir_all(&path).expect("create temp dir");
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
