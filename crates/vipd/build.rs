//! Sets `cfg(vipd_root)` when the tests are built as root. The integration tests that build
//! network namespaces carry `#[cfg_attr(not(vipd_root), ignore = "...")]`, so `cargo test` as a
//! non-root user runs every pure test and lists each root-only test as ignored with its
//! reason, instead of failing or passing silently. Nothing in the product binaries reads it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vipd_root)");
    // Re-run when the identity changes the usual ways (sudo sets SUDO_USER, su sets USER).
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_USER");
    if is_root() {
        println!("cargo::rustc-cfg=vipd_root");
    }
}

/// Whether this build runs as root, from /proc (no libc call needed in a build script).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
