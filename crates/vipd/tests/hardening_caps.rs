//! Least privilege: vipd runs as `nobody` with only CAP_NET_RAW and CAP_NET_ADMIN (ambient
//! capabilities through util-linux `setpriv`, as systemd's AmbientCapabilities= gives them)
//! and still elects, claims the VIP, fails over and releases the VIP on SIGTERM. One agent
//! gets a control socket in a directory it cannot write (it must run anyway, without the
//! socket); the other a directory it owns (vipctl as root works). Needs root
//! (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ChildGuard, Lan, TempDir};

const NOBODY: u32 = 65534;
/// CAP_NET_ADMIN (12) | CAP_NET_RAW (13).
const NET_CAPS: u64 = (1 << 12) | (1 << 13);

fn config(dir: &Path, sock: &Path, priority: u8, vip: IpAddr) -> PathBuf {
    let path = dir.join(format!("p{priority}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[global]
control_socket = "{}"
garp_master_delay = "0s"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 61
priority = {priority}
advert_interval = "100ms"
vips = ["{vip}/24"]
"#,
            sock.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn spawn_unprivileged(lan: &Lan, i: usize, vipd: &Path, cfg: &Path) -> ChildGuard {
    lan.host(i)
        .spawn(&[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all,+net_raw,+net_admin",
            "--ambient-caps=-all,+net_raw,+net_admin",
            "--bounding-set=-all,+net_raw,+net_admin",
            vipd.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .unwrap()
}

/// (uid, effective caps, bounding set) of a running process.
fn creds(pid: u32) -> (u32, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .to_owned()
    };
    let uid = field("Uid:")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hex = |s: String| u64::from_str_radix(&s, 16).unwrap();
    (uid, hex(field("CapEff:")), hex(field("CapBnd:")))
}

fn holders(lan: &Lan, vip: IpAddr) -> Vec<usize> {
    (0..2)
        .filter(|&i| lan.host(i).has_addr("eth0", vip).unwrap())
        .collect()
}

fn vipctl_state(sock: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(sock)
        .args(["status", "--json"])
        .output()
        .unwrap();
    if !out.status.success() {
        return format!("vipctl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let s: vipd::ctl::Status = serde_json::from_slice(&out.stdout).unwrap();
    s.instances[0].state.clone()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn runs_as_nobody_with_net_raw_and_net_admin_only() {
    let mut lan = Lan::new("caps", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("caps");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // nobody may not be able to reach target/ (home directories, 0700 parents): run a copy.
    let vipd = dir.path().join("vipd");
    std::fs::copy(env!("CARGO_BIN_EXE_vipd"), &vipd).unwrap();
    std::fs::set_permissions(&vipd, std::fs::Permissions::from_mode(0o755)).unwrap();
    // h0: socket in a root-owned directory nobody cannot write.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock0 = locked.join("vipd.sock");
    // h1: socket in a directory owned by nobody, as systemd's RuntimeDirectory= makes it.
    let run1 = dir.path().join("run1");
    std::fs::create_dir(&run1).unwrap();
    std::fs::set_permissions(&run1, std::fs::Permissions::from_mode(0o750)).unwrap();
    nix::unistd::chown(
        &run1,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    let sock1 = run1.join("vipd.sock");
    let vip = lan.vip(false);
    let cfg0 = config(dir.path(), &sock0, 150, vip);
    let cfg1 = config(dir.path(), &sock1, 100, vip);

    let mut c1 = spawn_unprivileged(&lan, 1, &vipd, &cfg1);
    common::wait_until(Duration::from_secs(3), || sock1.exists())
        .unwrap_or_else(|| panic!("h1: no control socket\n{}", c1.log()));
    let mut c0 = spawn_unprivileged(&lan, 0, &vipd, &cfg0);
    let logs = |c0: &ChildGuard, c1: &ChildGuard| format!("h0:\n{}\nh1:\n{}", c0.log(), c1.log());

    // Election: h0 (150) claims the VIP through netlink, the client reaches it.
    common::wait_until(Duration::from_secs(5), || holders(&lan, vip) == vec![0])
        .unwrap_or_else(|| panic!("h0 never took the VIP alone\n{}", logs(&c0, &c1)));
    assert!(
        lan.client(0)
            .ping_timeout(vip, Duration::from_secs(2))
            .unwrap(),
        "client cannot reach the VIP"
    );
    // Both really run as nobody with exactly the two capabilities.
    for c in [&c0, &c1] {
        let (uid, eff, bnd) = creds(c.pid());
        assert_eq!(uid, NOBODY, "{}", c.description());
        assert_eq!(eff, NET_CAPS, "effective capabilities {eff:#x}");
        assert_eq!(bnd, NET_CAPS, "bounding set {bnd:#x}");
    }

    // h0 had no place for its control socket: it said so and runs anyway.
    assert!(!sock0.exists());
    assert!(
        c0.log().contains("no control socket"),
        "h0 did not report the missing control socket\n{}",
        c0.log()
    );
    // h1's socket: owned by nobody, mode 0600, and root's vipctl talks to it.
    let meta = std::fs::metadata(&sock1).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), NOBODY);
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(vipctl_state(&sock1), "BACKUP");

    // Failover: SIGTERM h0 -> priority 0, VIP released (netlink as nobody), h1 takes over.
    c0.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = c0.wait_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "h0 did not exit 0 on SIGTERM: {st:?}\n{}",
        c0.log()
    );
    common::wait_until(Duration::from_secs(3), || holders(&lan, vip) == vec![1])
        .unwrap_or_else(|| panic!("h1 did not take over alone\n{}", logs(&c0, &c1)));
    assert_eq!(vipctl_state(&sock1), "MASTER");

    // A crash of the unprivileged master is covered too: restart h0 (preempts back), then
    // SIGKILL it and h1 takes over again after Master_Down_Interval.
    let mut c0 = spawn_unprivileged(&lan, 0, &vipd, &cfg0);
    common::wait_until(Duration::from_secs(5), || holders(&lan, vip) == vec![0])
        .unwrap_or_else(|| panic!("h0 did not preempt back\n{}", logs(&c0, &c1)));
    c0.kill().unwrap();
    common::wait_until(Duration::from_secs(3), || {
        lan.host(1).has_addr("eth0", vip).unwrap()
    })
    .unwrap_or_else(|| panic!("h1 did not take over after the crash\n{}", logs(&c0, &c1)));
    // Tidy the VIP the SIGKILL left on h0.
    let _ = lan
        .host(0)
        .exec(&["ip", "addr", "del", &format!("{vip}/24"), "dev", "eth0"]);

    // Clean stop of the last one releases the VIP; the socket file goes away.
    c1.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = c1.wait_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "h1 did not exit 0 on SIGTERM: {st:?}\n{}",
        c1.log()
    );
    assert!(holders(&lan, vip).is_empty(), "VIP left behind on SIGTERM");
    assert!(!sock1.exists(), "control socket left behind");
    let log = c1.log();
    for bad in ["Operation not permitted", "Permission denied", "ERROR"] {
        assert!(!log.contains(bad), "h1 logged {bad:?}:\n{log}");
    }
}

/// An unprivileged vipd with ambient CAP_NET_RAW/CAP_NET_ADMIN (the systemd unit) must not
/// hand them to the scripts it runs.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn scripts_do_not_inherit_vipds_capabilities() {
    let lan = Lan::new("capscript", 1).unwrap();
    let dir = TempDir::new("capscript");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let vipd = dir.path().join("vipd");
    std::fs::copy(env!("CARGO_BIN_EXE_vipd"), &vipd).unwrap();
    std::fs::set_permissions(&vipd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    nix::unistd::chown(
        &run,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    let out = run.join("caps");
    let vip = lan.vip(false);
    let cfg = config(dir.path(), &run.join("vipd.sock"), 150, vip);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = text.replace(
        "[[instance]]",
        &format!(
            "[[track_script]]\nname = \"caps\"\nshell = \"grep -E '^Cap(Eff|Amb|Prm)' /proc/self/status > {}\"\ninterval = \"200ms\"\n\n[[instance]]",
            out.display()
        ),
    );
    text.push_str("track_scripts = [\"caps\"]\n");
    std::fs::write(&cfg, text).unwrap();
    let c = spawn_unprivileged(&lan, 0, &vipd, &cfg);
    common::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.lines().count() == 3)
    })
    .unwrap_or_else(|| panic!("the script never ran\n{}", c.log()));
    let caps = std::fs::read_to_string(&out).unwrap();
    for line in caps.lines() {
        let v = line.split_whitespace().nth(1).unwrap();
        assert_eq!(
            u64::from_str_radix(v, 16).unwrap(),
            0,
            "a script inherited capabilities: {caps}"
        );
    }
    // vipd itself still has them.
    let (uid, eff, _) = creds(c.pid());
    assert_eq!(uid, NOBODY);
    assert_eq!(eff, NET_CAPS);
}
